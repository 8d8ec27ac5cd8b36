"""Retraining the kept sub-network after choosing it (``retraining=Retraining(epochs, lr_scale)``)."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf import Retraining, TaskInference, Tolerance
from avalanche_rnf.freezing import tensor_by_name
from helpers import MultiHeadConvBN, MultiHeadMLP, experience_logits, tolerant_rnf


def _rnf(model, **kwargs):
    return tolerant_rnf(model, **{"retraining": Retraining(2), **kwargs})


class _Watch:
    """Wraps the plugin's callbacks: records when units are chosen, checks cut entries after every update."""

    def __init__(self, plugin):
        self.plugin, self.chosen_at, self.updates_checked = plugin, [], 0
        self.at_choice: dict[str, torch.Tensor] = {}
        for name in ("after_training_epoch", "after_update"):
            setattr(plugin, name, self._wrap(name, getattr(plugin, name)))

    def _wrap(self, name, original):
        def call(strategy, **kwargs):
            had = self.plugin._pending is not None
            original(strategy, **kwargs)
            if name == "after_training_epoch" and not had and self.plugin._pending is not None:
                self.chosen_at.append(self.plugin.retraining._epochs_done)
                self.at_choice = {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}
            if name == "after_update" and self.plugin.cuts.masks:
                for tensor_name, cut in self.plugin.cuts.masks.items():
                    tensor = tensor_by_name(strategy.model, tensor_name)
                    assert not tensor[cut.expand_as(tensor)].any(), tensor_name
                self.updates_checked += 1

        return call


@pytest.mark.parametrize("make", [MultiHeadMLP, MultiHeadConvBN], ids=["mlp", "conv-bn"])
def test_kept_units_retrain_cut_off_from_free_ones_and_tasks_stay_exact(make, digits_til, digits_til_images):
    bench = digits_til if make is MultiHeadMLP else digits_til_images
    torch.manual_seed(0)
    strategy = _rnf(make())
    watch = _Watch(strategy.rnf)
    after_own = []
    for k, exp in enumerate(bench.train_stream[:3]):
        strategy.train(exp)
        assert watch.chosen_at[-1] == 2  # chosen after train_epochs - retraining epochs
        result = strategy.rnf.searches[-1]
        assert result.retrained_accuracy is not None and result.retrained_accuracy > 0.8
        after_own.append(experience_logits(strategy.model, bench.test_stream[k]))
        for j in range(k + 1):
            assert torch.equal(experience_logits(strategy.model, bench.test_stream[j]), after_own[j])
    assert watch.updates_checked > 0 and strategy.rnf.cuts.masks == {} and strategy.rnf._pending is None

    # the units chosen last were trained on after the choice, and are frozen at their retrained values
    model, freeze = strategy.model, strategy.rnf.freeze
    moved = False
    for name, values in freeze.values.items():
        tensor = tensor_by_name(model, name)
        rows = freeze.frozen_rows(name, tensor)
        assert torch.equal(tensor[rows].reshape(-1), values)
        moved |= not torch.equal(tensor[rows], watch.at_choice[name][rows])
    assert moved


def test_without_retraining_units_are_chosen_at_the_end(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(), retraining=None, train_epochs=2)
    watch = _Watch(strategy.rnf)
    strategy.train(digits_til.train_stream[0])
    assert watch.chosen_at == [] and watch.updates_checked == 0
    assert strategy.rnf.searches[-1].retrained_accuracy is None and strategy.rnf.frozen_fractions


class _StopAfterFirstEpoch(SupervisedPlugin):
    def after_training_iteration(self, strategy, **kwargs):
        strategy.stop_training()


def test_early_stop_before_the_choice_still_freezes_at_the_end(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(), plugins=[_StopAfterFirstEpoch()])
    strategy.train(digits_til.train_stream[0])
    assert strategy.rnf.frozen_fractions and strategy.rnf.searches[-1].retrained_accuracy is None
    assert any(mask.any() for mask in strategy.rnf.freeze.unit_masks.values())


def test_retraining_epochs_are_checked(digits_til):
    for bad in (0, -1, -0.5, True, "1"):
        with pytest.raises(ValueError, match="retraining epochs must be a positive number"):
            _rnf(MultiHeadMLP(), retraining=Retraining(bad))
    strategy = _rnf(MultiHeadMLP(), retraining=Retraining(2), train_epochs=2)
    with pytest.raises(ValueError, match="retrain_epochs=2 leaves none of the strategy's 2 training epochs"):
        strategy.train(digits_til.train_stream[0])


class _Iterations(SupervisedPlugin):
    """Counts training iterations and notes the one after which RNF had chosen its units."""

    def __init__(self, plugin):
        super().__init__()
        self.plugin, self.count, self.chosen_at = plugin, 0, None

    def before_training_exp(self, strategy, **kwargs):
        self.count, self.chosen_at, self.per_epoch = 0, None, len(strategy.dataloader)

    def after_training_iteration(self, strategy, **kwargs):
        self.count += 1
        if self.chosen_at is None and self.plugin._pending is not None:
            self.chosen_at = self.count


def test_fractional_retraining_epochs_choose_the_units_within_an_epoch(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(), train_epochs=2, retraining=Retraining(0.5))
    watch = _Iterations(strategy.rnf)
    strategy.plugins.append(watch)  # after RNF: sees the choice of the same iteration
    outputs = []
    for k, exp in enumerate(digits_til.train_stream[:2]):
        strategy.train(exp)
        assert watch.chosen_at == round(1.5 * watch.per_epoch)
        assert strategy.rnf.searches[-1].retrained_accuracy is not None
        outputs.append(experience_logits(strategy.model, digits_til.test_stream[k]))
    assert torch.equal(experience_logits(strategy.model, digits_til.test_stream[0]), outputs[0])


def _step_lrs(strategy) -> list[tuple[bool, float]]:
    """Records, at every optimizer step: whether RNF is retraining, and the first group's learning rate."""
    calls, step = [], strategy.optimizer.step

    def recording(*args, **kwargs):
        calls.append((strategy.rnf._pending is not None, strategy.optimizer.param_groups[0]["lr"]))
        return step(*args, **kwargs)

    strategy.optimizer.step = recording
    return calls


def test_retraining_lr_scale_scales_only_the_retraining_steps_and_schedulers_see_unscaled_rates(digits_til):
    from avalanche.training.plugins import LRSchedulerPlugin

    runs = {}
    for scale in (1.0, 4.0):
        torch.manual_seed(0)
        model = MultiHeadMLP()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        scheduler = LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5),
                                      reset_lr=False)  # the rate it ends the experience at is kept
        strategy = _rnf(model, optimizer=optimizer, train_epochs=3, retraining=Retraining(2, lr_scale=scale),
                        plugins=[scheduler])
        calls = _step_lrs(strategy)
        strategy.train(digits_til.train_stream[0])
        runs[scale] = calls, optimizer.param_groups[0]["lr"], model.state_dict()
    (plain, plain_end, plain_state), (scaled, scaled_end, scaled_state) = runs[1.0], runs[4.0]
    assert [r for r, _ in plain] == [r for r, _ in scaled] and any(r for r, _ in plain) and not plain[0][0]
    # the first epoch (whole network) at the scheduler's rates; the retraining epochs at 4x them
    assert {lr for r, lr in plain if not r} == {0.05} and {lr for r, lr in plain if r} == {0.025, 0.0125}
    assert all(s == (4 * p if r else p) for (r, p), (_, s) in zip(plain, scaled))
    assert scaled_end == plain_end == pytest.approx(0.05 * 0.5**3)  # schedulers set and see the unscaled rates
    assert any(not torch.equal(plain_state[k], scaled_state[k]) for k in plain_state)


def test_a_step_that_raised_does_not_leave_its_rates_scaled(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(), train_epochs=2, retraining=Retraining(1, lr_scale=4.0))
    strategy.rnf._pending = object()  # retraining
    groups = strategy.optimizer.param_groups
    strategy.rnf.before_update(strategy)  # the step then raised: no after_update
    assert groups[0]["lr"] == 0.2
    strategy.rnf.before_update(strategy)  # the next step scales the rates it was given, once
    assert groups[0]["lr"] == 0.2
    strategy.rnf.after_update(strategy)
    assert groups[0]["lr"] == 0.05


def test_retraining_lr_scale_is_checked():
    for bad in (0, -1.0, True, "2"):
        with pytest.raises(ValueError, match="retraining lr_scale must be a positive factor"):
            _rnf(MultiHeadMLP(), retraining=Retraining(1, lr_scale=bad))


def test_retrained_accuracy_is_published_and_survives_a_checkpoint(digits_til):
    torch.manual_seed(0)
    evaluator = EvaluationPlugin(loggers=[], collect_all=True)
    strategy = _rnf(MultiHeadMLP(), train_epochs=2, retraining=Retraining(1), evaluator=evaluator)
    strategy.train(digits_til.train_stream[0])
    retrained = strategy.rnf.searches[0].retrained_accuracy
    assert evaluator.get_all_metrics()["RNF/HoldoutAcc_retrained"][1] == [retrained]
    clone = type(strategy.rnf)(tolerance=Tolerance(0.02), retraining=Retraining(1))
    clone.load_state_dict(strategy.rnf.state_dict())
    assert clone.searches == strategy.rnf.searches and clone.searches[0].retrained_accuracy == retrained


def test_single_head_class_incremental_retrains_its_class_rows(digits_cil):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    strategy = _rnf(model, task_inference=TaskInference())
    watch = _Watch(strategy.rnf)
    for exp in digits_cil.train_stream[:2]:
        strategy.train(exp)
    assert watch.chosen_at == [2, 2] and watch.updates_checked > 0
    rows = strategy.rnf.freeze.frozen_units("3", 10)
    assert rows.sum() == 4  # the two experiences' classes
