"""RNFPlugin / RNF inside Avalanche: metrics, composability, checkpoints, clear errors."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.logging import TextLogger
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin, LRSchedulerPlugin, ReplayPlugin
from torch import nn

from avalanche_rnf import (
    RNF,
    Capacity,
    Relevance,
    Retraining,
    RNFPlugin,
    TaskInference,
    Tolerance,
    TopFraction,
    UnsupportedModelError,
    maybe_load_checkpoint,
    save_checkpoint,
)
from helpers import ClassMLP, MultiHeadMLP, assert_kept, frozen_snapshot, naive, quiet_evaluator


def _rnf(model, **kwargs):
    defaults = dict(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        train_mb_size=16,
        train_epochs=1,
        relevance=Relevance(reference_size=100),
        evaluator=quiet_evaluator(),
    )
    return RNF(model=model, **{**defaults, **kwargs})


def test_metrics_reach_the_loggers(digits_til):
    torch.manual_seed(0)
    text = io.StringIO()
    evaluator = EvaluationPlugin(loggers=[TextLogger(text)], collect_all=True)
    strategy = _rnf(MultiHeadMLP(), evaluator=evaluator)
    for exp in digits_til.train_stream[:2]:
        strategy.train(exp)
    metrics = evaluator.get_all_metrics()
    xs, values = metrics["RNF/FrozenFraction/features.1"]
    assert xs == [0, 1] and 0 < values[0] <= values[1] <= 1
    assert values == [f["features.1"] for f in strategy.rnf.frozen_fractions]
    assert metrics["RNF/FrozenFraction/classifier.classifiers.0.classifier"][1] == [1.0, 1.0]
    assert len(metrics["RNF/RelevanceTime_s"][1]) == 2 and min(metrics["RNF/RelevanceTime_s"][1]) > 0
    assert 0 < metrics["RNF/FrozenFraction"][1][-1] < 1
    assert "RNF/FrozenFraction/features.3" in text.getvalue()


def test_raw_scores_are_kept_per_experience(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(hidden=32))
    for exp in digits_til.train_stream[:2]:
        strategy.train(exp)
    rnf = strategy.rnf
    assert len(rnf.raw_scores) == len(rnf.scores) == 2
    assert rnf.raw_scores[0]["features.1"].shape == (32,)
    assert rnf.scores[1]["features.3"].sum().item() == pytest.approx(1.0)
    # task 0's head is not evaluated on task 1's data, so it is not scored there
    assert "classifier.classifiers.0.classifier" not in rnf.scores[1]


def test_composes_with_replay_and_lr_scheduler(digits_til):
    torch.manual_seed(0)
    model = MultiHeadMLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rnf = RNFPlugin(relevance=Relevance(reference_size=100))
    replay = ReplayPlugin(mem_size=60)
    scheduler = LRSchedulerPlugin(torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), reset_lr=False)
    strategy = naive(model, opt, [rnf, replay, scheduler], train_mb_size=16, train_epochs=2)
    strategy.train(digits_til.train_stream[0])
    first = frozen_snapshot(rnf, model)
    for exp in digits_til.train_stream[1:3]:
        strategy.train(exp)
    assert_kept(first, frozen_snapshot(rnf, model))
    assert len(replay.storage_policy.buffer) == 60
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**6)
    assert len(rnf.frozen_fractions) == 3


def test_strategy_keeps_user_plugins_and_does_not_mutate_the_list(digits_til):
    replay = ReplayPlugin(mem_size=20)
    plugins = [replay]
    strategy = _rnf(MultiHeadMLP(), plugins=plugins)
    assert plugins == [replay]
    assert replay in strategy.plugins and strategy.rnf in strategy.plugins


def test_state_dict_round_trip(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP())
    for exp in digits_til.train_stream[:2]:
        strategy.train(exp)
    state = strategy.rnf.state_dict()
    clone = RNFPlugin()
    clone.load_state_dict(copy.deepcopy(state))
    for key in ("unit_masks", "values"):
        a, b = state["freeze"][key], clone.state_dict()["freeze"][key]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert clone.frozen_fractions == strategy.rnf.frozen_fractions
    assert clone.state_nbytes() == strategy.rnf.state_nbytes() > 0
    # a fresh model gets the frozen values written back before training continues
    model = copy.deepcopy(strategy.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    clone.freeze.restore(model)
    assert_kept(frozen_snapshot(strategy.rnf, strategy.model), frozen_snapshot(clone, model))


def test_checkpoint_resume_matches_uninterrupted_run(digits_til, tmp_path):
    def make():
        torch.manual_seed(123)
        return _rnf(MultiHeadMLP(), train_epochs=2)

    RNGManager.set_random_seeds(0)
    straight = make()
    for exp in digits_til.train_stream[:3]:
        straight.train(exp)

    RNGManager.set_random_seeds(0)
    interrupted = make()
    interrupted.train(digits_til.train_stream[0])
    path = tmp_path / "rnf.ckpt"
    save_checkpoint(interrupted, path)
    del interrupted

    RNGManager.set_random_seeds(999)
    resumed, start = maybe_load_checkpoint(make(), path)
    assert start == 1
    for exp in digits_til.train_stream[start:3]:
        resumed.train(exp)

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.rnf.frozen_fractions == straight.rnf.frozen_fractions
    assert resumed.rnf in resumed.plugins


def test_missing_checkpoint_starts_from_zero(tmp_path):
    strategy = _rnf(MultiHeadMLP())
    same, start = maybe_load_checkpoint(strategy, tmp_path / "none.ckpt")
    assert same is strategy and start == 0


# ---------------------------------------------------------------- bad input
def test_model_without_units_fails_at_construction():
    model = nn.Sequential(nn.Flatten())
    with pytest.raises(UnsupportedModelError, match="no nn.Linear or nn.Conv2d"):
        RNF(model=model, optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))


def test_unsupported_layer_is_named_when_training_starts(digits_cil):
    model = nn.Sequential(nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 10))
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.1), [RNFPlugin()])
    with pytest.raises(UnsupportedModelError, match=r"1 \(LayerNorm\).*strict=False"):
        strategy.train(digits_cil.train_stream[0])


def test_non_strict_mode_warns_and_trains(digits_cil):
    model = nn.Sequential(nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 10))
    strategy = naive(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        [RNFPlugin(strict=False, relevance=Relevance(reference_size=50))],
        train_mb_size=32,
    )
    with pytest.warns(UserWarning, match="leaves these parameters trainable.*1.weight"):
        with pytest.warns(UserWarning, match="cannot isolate '2'.*strict=False RNF goes on"):
            strategy.train(digits_cil.train_stream[0])


@pytest.mark.parametrize("size", [0, -1])
def test_bad_reference_size(size):
    with pytest.raises(ValueError, match="reference_size must be a positive number"):
        RNFPlugin(relevance=Relevance(reference_size=size))


def test_bad_fraction():
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\], got 1.5"):
        RNFPlugin(selection=TopFraction(1.5))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": "max"}, "start must be"),
        ({"reduction": "sum"}, "reduction"),
        ({"composite": "lrp-magic"}, "Unknown zennit composite"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNFPlugin(relevance=Relevance(**kwargs))


def test_empty_experience(digits_til):
    experience = copy.copy(digits_til.train_stream[0])
    experience.dataset = experience.dataset.subset([])
    strategy = _rnf(MultiHeadMLP())
    with pytest.raises(ValueError, match="experience 0 has no samples"):
        strategy.train(experience)


def test_all_zero_relevance_warns_and_falls_back(digits_cil):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():
        model[2].weight.zero_()
    plugin = RNFPlugin(relevance=Relevance(reference_size=50), task_inference=None, tolerance=None)
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.0), [plugin])
    with pytest.warns(UserWarning, match="relevance of layer '0' is all zero; scoring its units by activation"):
        strategy.train(digits_cil.train_stream[0])
    assert strategy.plugins[0].freeze.frozen_fraction("0") > 0


def test_exhausted_layer_warns_once(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(hidden=8, activation=nn.Tanh), selection=TopFraction(1.0), capacity="unlimited")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for exp in digits_til.train_stream[:3]:
            strategy.train(exp)
    exhausted = [str(w.message) for w in caught if "capacity exhausted" in str(w.message)]
    assert exhausted and len(exhausted) == len(set(exhausted))
    assert any("'features.1'" in m for m in exhausted)


def test_fair_capacity_keeps_free_units_for_the_rest_of_the_stream(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(hidden=8, activation=nn.Tanh), selection=TopFraction(1.0))
    for k, exp in enumerate(digits_til.train_stream[:3]):
        strategy.train(exp)
        # 5 experiences, 8 units: each takes at most ceil(free / experiences left)
        assert strategy.rnf.frozen_fractions[-1]["features.1"] == [2 / 8, 4 / 8, 6 / 8][k]


def test_fractional_capacity_caps_each_experience_and_leaves_the_last_the_rest(digits_til):
    torch.manual_seed(0)
    strategy = _rnf(MultiHeadMLP(hidden=8, activation=nn.Tanh), selection=TopFraction(1.0),
                    capacity=Capacity(0.1, n_experiences=4, keep_last=True))
    for exp in digits_til.train_stream[:4]:
        strategy.train(exp)
    # ceil(0.1 * 8) = 1 unit per experience whatever the stream's length; the last keeps the 5 left
    assert [f["features.1"] for f in strategy.rnf.frozen_fractions] == [1 / 8, 2 / 8, 3 / 8, 8 / 8]
    for bad in (0, 1.5, "half"):
        with pytest.raises(ValueError, match="capacity must be 'fair', 'unlimited' or a fraction"):
            _rnf(MultiHeadMLP(hidden=8), capacity=bad)


class _RngStates(SupervisedPlugin):
    """Records the global RNG state when each experience starts training, and when it ends."""

    def __init__(self):
        super().__init__()
        self.states: list[torch.Tensor] = []

    def before_training_exp(self, strategy, **kwargs):
        self.states.append(torch.get_rng_state())

    def after_training_exp(self, strategy, **kwargs):  # runs before RNF's own (user plugins come first)
        self.states.append(torch.get_rng_state())


@pytest.mark.parametrize(
    "options",
    [dict(selection=TopFraction(0.3)), dict(tolerance=Tolerance(0.05), retraining=Retraining(1), train_epochs=2),
     dict(tolerance=Tolerance(0.05), task_inference=TaskInference())],
    ids=["fraction", "search-retrain", "task-inference"],
)
def test_rnf_leaves_the_global_rng_as_a_run_without_it(digits_til, digits_cil, options):
    """RNF's own data passes (relevance, search, retrained accuracy, recognition statistics) draw
    nothing from the global RNG, so every experience starts from the RNG state Naive's would: the
    same seed gives the same shuffles (the same batches where RNF holds nothing out)."""
    bench = digits_cil if options.get("task_inference") else digits_til
    options = dict(options)  # the parameter is shared with pytest's other uses of it
    epochs = options.pop("train_epochs", 1)
    states = {}
    for name in ("naive", "rnf"):
        torch.manual_seed(0)
        model = ClassMLP() if options.get("task_inference") else MultiHeadMLP()
        watch = _RngStates()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        if name == "rnf":
            strategy = _rnf(model, optimizer=optimizer, plugins=[watch], train_epochs=epochs, **options)
        else:
            strategy = naive(model, optimizer, [watch], train_mb_size=16, train_epochs=epochs)
        for experience in bench.train_stream[:3]:
            strategy.train(experience)
        states[name] = watch.states
    assert len(states["rnf"]) == 6
    assert all(torch.equal(a, b) for a, b in zip(states["rnf"], states["naive"]))
