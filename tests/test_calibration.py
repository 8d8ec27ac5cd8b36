"""BatchNorm recalibration: what each norm sees, one pass or norm by norm, and the memory budget."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

import avalanche_rnf.calibration as calibration
import avalanche_rnf.glue as glue
import avalanche_rnf.keeping as keeping
from avalanche_rnf import Retraining
from avalanche_rnf.calibration import CALIBRATION_BUDGET, calibrated_norms
from helpers import MultiHeadConvBN, tolerant_rnf


def _counting_call(counter: list[int]):
    def call(m, tensors, batch):
        counter.append(len(batch[0]))
        return torch.func.functional_call(m, tensors, (batch[0],))
    return call


def test_calibration_in_one_pass_and_norm_by_norm_agree_on_wide_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 40, 3), nn.BatchNorm2d(40), nn.ReLU(), nn.Conv2d(40, 20, 3), nn.BatchNorm2d(20),
                          nn.ReLU(), nn.Flatten(), nn.Linear(20 * 4 * 4, 24), nn.BatchNorm1d(24)).eval()
    batches = [(torch.randn(7, 3, 8, 8), torch.zeros(7)) for _ in range(3)]
    norms = [("1", torch.rand(40) < 0.7), ("4", torch.ones(20, dtype=torch.bool)), ("8", torch.rand(24) < 0.5)]

    call = _counting_call([])

    weights = {"3.weight": model[3].weight * 1.5}
    one = calibrated_norms(model, weights, norms, batches, call)
    chunked = calibrated_norms(model, weights, norms, batches, call, budget=1)
    assert one.keys() == chunked.keys()
    for key in one:
        assert torch.allclose(one[key], chunked[key], rtol=1e-5, atol=1e-6), key
    changed = one["1.running_mean"] != model[1].running_mean
    assert torch.equal(changed, norms[0][1])  # the chosen channels, and only they


def test_large_feature_maps_are_copied_a_few_channels_at_a_time_with_the_same_statistics(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(16, 12, 8, 8) * 3 + 1
    channels = torch.rand(12) < 0.8
    whole = [(block, rows) for block, rows in calibration._rows(x, channels)]
    assert len(whole) == 1 and whole[0][1].shape == (int(channels.sum()), 16 * 64)
    per_channel = 8 * 16 * 64
    monkeypatch.setattr(calibration, "_BLOCK_BYTES", 3 * per_channel)
    blocks = list(calibration._rows(x, channels))
    assert all(rows.numel() * rows.element_size() <= 3 * per_channel for _, rows in blocks)
    assert torch.equal(torch.cat([b for b, _ in blocks]), whole[0][0])
    assert torch.equal(torch.cat([r for _, r in blocks]), whole[0][1])  # the same values, row by row
    monkeypatch.setattr(calibration, "_BLOCK_BYTES", 1)  # one channel at a time, however large
    assert [len(b) for b, _ in calibration._rows(x, channels)] == [1] * int(channels.sum())


@pytest.mark.parametrize("budget", [CALIBRATION_BUDGET, 1], ids=["one-pass", "norm-by-norm-in-chunks"])
def test_calibration_measures_what_each_norm_sees_and_touches_nothing_else(budget):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 1, 8, 8)
    weights = {"3.weight": model[3].weight * 2}
    norms = [("1", torch.tensor([True, False, True])), ("4", torch.tensor([True, True]))]

    call = _counting_call([])

    batches = [(x[:2], torch.zeros(2)), (x[2:], torch.zeros(3))]
    out = calibrated_norms(model, weights, norms, batches, call, budget=budget)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    first = model[0](x).transpose(0, 1).flatten(1)
    assert torch.allclose(out["1.running_mean"][[0, 2]], first.mean(1)[[0, 2]], atol=1e-6)
    assert out["1.running_mean"][1] == model[1].running_mean[1]
    model.eval()
    h = torch.nn.functional.batch_norm(
        model[0](x), out["1.running_mean"], out["1.running_var"], model[1].weight, model[1].bias, eps=model[1].eps
    ).relu()
    second = torch.nn.functional.conv2d(h, weights["3.weight"], model[3].bias).transpose(0, 1).flatten(1)
    assert torch.allclose(out["4.running_mean"], second.mean(1), atol=1e-5)
    assert torch.allclose(out["4.running_var"], second.var(1), atol=1e-5)


@pytest.mark.parametrize("train_batch, eval_batch, passes",
                         [(17, 0, [2, 10]), (16, 0, [2, 5, 5, 5, 5]), (2, 10, [2, 10]), (2, 9, [2, 5, 5, 5, 5])],
                         ids=["training-one-pass", "training-norm-by-norm", "evaluation-one-pass",
                              "evaluation-norm-by-norm"])
def test_the_training_or_evaluation_batch_sets_the_budget(monkeypatch, train_batch, eval_batch, passes):
    """Norm inputs per sample: 4x6x6 and 2x4x4 floats (576 + 128 bytes). Ten samples take the one pass
    (5760 bytes of the largest input) once half the norm inputs of a training batch hold them:
    704 x 17 / 2 = 5984; at 16 (5632 bytes) it is norm by norm, in chunks of the fixed budget (5 samples).
    An evaluation batch holds them from ten samples on (576 x 10), not at nine."""
    monkeypatch.setattr(calibration, "CALIBRATION_BUDGET", 576 * 5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2)).eval()
    norms = [("1", torch.ones(4, dtype=torch.bool)), ("4", torch.ones(2, dtype=torch.bool))]
    batches = [(torch.randn(4, 1, 8, 8), torch.zeros(4)), (torch.randn(6, 1, 8, 8), torch.zeros(6))]
    calls: list[int] = []
    out = calibrated_norms(model, {}, norms, batches, _counting_call(calls), train_batch=train_batch,
                           eval_batch=eval_batch)
    assert calls == passes  # a probe of two samples first
    reference = calibrated_norms(model, {}, norms, batches, _counting_call([]), budget=2**40)
    for key in out:
        assert torch.allclose(out[key], reference[key], rtol=1e-5, atol=1e-6), key


def test_norms_without_new_channels_count_toward_the_budget_only(monkeypatch):
    monkeypatch.setattr(calibration, "CALIBRATION_BUDGET", 1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2)).eval()
    norms = [("1", torch.zeros(4, dtype=torch.bool)), ("4", torch.ones(2, dtype=torch.bool))]
    calls: list[int] = []
    out = calibrated_norms(model, {}, norms, [(torch.randn(10, 1, 8, 8),)], _counting_call(calls), train_batch=4)
    assert calls == [2, 10]  # 128 x 10 <= 704 x 4 / 2 (the target norm alone: 128 x 4 / 2): one pass
    assert "1.running_mean" not in out and "4.running_mean" in out


def test_without_a_training_batch_the_fixed_budget_holds(monkeypatch):
    monkeypatch.setattr(calibration, "CALIBRATION_BUDGET", 576 * 5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)).eval()
    calls: list[int] = []
    calibrated_norms(model, {}, [("1", torch.ones(4, dtype=torch.bool))], [(torch.randn(10, 1, 8, 8),)],
                     _counting_call(calls))
    assert calls == [2, 5, 5]


def _calibrations(monkeypatch) -> list[tuple[int, int]]:
    """Records the training and evaluation batch of every BatchNorm measurement the plugin makes."""
    calls: list[tuple[int, int]] = []

    def spy(*args, **kwargs):
        calls.append((kwargs["train_batch"], kwargs["eval_batch"]))
        return calibrated_norms(*args, **kwargs)

    monkeypatch.setattr(keeping, "calibrated_norms", spy)
    return calls


def test_the_plugin_calibrates_within_the_strategy_s_mini_batches(digits_til_images, monkeypatch):
    seen = _calibrations(monkeypatch)
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadConvBN(hidden=16), train_mb_size=24, eval_mb_size=40, train_epochs=1)
    strategy.train(digits_til_images.train_stream[0])
    assert seen and set(seen) == {(24, 40)}


def _retrained(stream, monkeypatch, evaluates: bool) -> tuple[dict[str, torch.Tensor], int]:
    """Two experiences with retraining; the final state and how many times norms were measured."""
    calls = _calibrations(monkeypatch)
    monkeypatch.setattr(glue, "evaluates_while_training", lambda strategy: evaluates)
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadConvBN(hidden=16), train_mb_size=32, train_epochs=2, tolerance=None,
                            retraining=Retraining(1))
    for experience in stream[:2]:
        strategy.train(experience)
    return {k: v.clone() for k, v in strategy.model.state_dict().items()}, len(calls)


def test_norms_are_measured_at_the_freeze_only_and_the_model_is_the_same(digits_til_images, monkeypatch):
    # training mode normalises by batch statistics, and freezing measures the kept units' anew, so
    # measuring them before retraining too changes nothing that is kept
    kept, measured = _retrained(digits_til_images.train_stream, monkeypatch, evaluates=False)
    both, measured_both = _retrained(digits_til_images.train_stream, monkeypatch, evaluates=True)
    assert (measured, measured_both) == (2, 4)
    assert kept.keys() == both.keys()
    for key in kept:
        assert torch.equal(kept[key], both[key]), key


def test_norms_are_measured_before_retraining_when_the_strategy_evaluates_meanwhile(digits_til_images, monkeypatch):
    calls = _calibrations(monkeypatch)
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadConvBN(hidden=16), train_mb_size=32, train_epochs=2, tolerance=None,
                            retraining=Retraining(1), eval_every=1)
    assert glue.evaluates_while_training(strategy)
    strategy.train(digits_til_images.train_stream[0], eval_streams=[digits_til_images.test_stream[0]])
    assert len(calls) == 2


def test_norms_kept_in_eval_mode_while_training_are_measured_before_retraining(digits_til_images, monkeypatch):
    calls = _calibrations(monkeypatch)

    class FrozenNorms(SupervisedPlugin):  # a pipeline that trains with its BatchNorm statistics fixed
        def before_training_iteration(self, strategy, **kwargs):
            for module in strategy.model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()

    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadConvBN(hidden=16), train_mb_size=32, train_epochs=2, tolerance=None,
                            retraining=Retraining(1), plugins=[FrozenNorms()])
    strategy.train(digits_til_images.train_stream[0])
    assert len(calls) == 2
