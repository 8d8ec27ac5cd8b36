"""RNF in Avalanche's online streams: units are chosen at task boundaries, from a bounded reservoir."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin

from avalanche_rnf import (
    Relevance,
    Retraining,
    RNFPlugin,
    TaskInference,
    Tolerance,
    maybe_load_checkpoint,
    save_checkpoint,
)
from avalanche_rnf.bench.models import MultiHeadMLP
from avalanche_rnf.reservoir import ClassReservoir, OnlineData
from helpers import ClassMLP, assert_kept, experience_logits, frozen_snapshot, naive

SUB = 48  # samples per sub-experience


def _online(stream, boundaries: bool = True):
    """Sub-experiences of ``SUB`` samples, with task labels (multi-head models read them, as Avalanche does)."""
    return with_task_labels(split_online_stream(stream, experience_size=SUB, access_task_boundaries=boundaries,
                                                seed=0))


def _train(benchmark, model, plugin, watch=None):
    """Train on the online stream; ``watch(plugin, sub_experience)`` runs after each sub-experience."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    strategy = Naive(model=model, optimizer=optimizer, plugins=[plugin], train_mb_size=8, train_epochs=1,
                     evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]))
    for sub in _online(benchmark.train_stream):
        strategy.train(sub)
        if watch is not None:
            watch(plugin, sub)
    return strategy


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_units_are_chosen_once_per_origin_experience_and_stay_frozen(scenario, digits_til, digits_cil):
    RNGManager.set_random_seeds(0)
    benchmark = digits_til if scenario == "task" else digits_cil
    model = MultiHeadMLP() if scenario == "task" else ClassMLP()
    options = {"task_inference": TaskInference("class")} if scenario == "class" else {}
    plugin = RNFPlugin(relevance=Relevance(reference_size=120), tolerance=Tolerance(0.05), **options)
    chosen, sizes, snapshots, outputs = [], [], [], []

    def watch(plugin, sub):
        origin = sub.origin_experience.current_experience
        if sub.is_last_subexp:
            chosen.append((origin, len(plugin.frozen_fractions)))
            snapshots.append(frozen_snapshot(plugin, model))
            if scenario == "task":
                outputs.append(experience_logits(model, benchmark.test_stream[origin]))
            assert plugin._online() is None  # dropped at the boundary
        else:
            sizes.append((len(plugin._online().train), len(plugin._online().held)))
            assert len(plugin.frozen_fractions) == origin  # nothing chosen inside an origin experience

    strategy = _train(benchmark, model, plugin, watch)
    assert chosen == [(i, i + 1) for i in range(5)]
    assert sizes and all(train <= 120 and held <= 12 for train, held in sizes)
    assert max(train for train, _ in sizes) == 120  # the reservoir fills up to its bound
    final = frozen_snapshot(plugin, strategy.model)
    for earlier in snapshots:
        assert_kept(earlier, final)
    for i, logits in enumerate(outputs):
        assert torch.equal(experience_logits(model, benchmark.test_stream[i]), logits), i
    assert len(plugin.searches) == 5


def test_class_inference_recognises_tasks_in_an_online_stream(digits_cil):
    RNGManager.set_random_seeds(0)
    model = ClassMLP()
    plugin = RNFPlugin(relevance=Relevance(reference_size=200), tolerance=Tolerance(0.01), task_inference="class")
    strategy = _train(digits_cil, model, plugin)
    assert plugin.inference.task_experiences == [0, 1, 2, 3, 4]
    strategy.eval(digits_cil.test_stream)
    metrics = strategy.evaluator.get_last_metrics()
    recognised = [v for k, v in metrics.items() if k.startswith("RNF/TaskRecognition")]
    assert len(recognised) == 5 and sum(recognised) / 5 > 0.4  # chance: 0.2 (one pass over few samples)
    RNGManager.set_random_seeds(0)
    plain = _train(digits_cil, ClassMLP(), SupervisedPlugin())
    plain.eval(digits_cil.test_stream)
    key = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
    assert metrics[key] > plain.evaluator.get_last_metrics()[key] + 0.2


def test_hidden_boundaries_get_a_clear_error(digits_cil):
    model = ClassMLP()
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.05), [RNFPlugin(task_inference="class")],
                     train_mb_size=16)
    with pytest.raises(ValueError, match="access_task_boundaries=True"):
        strategy.train(next(iter(_online(digits_cil.train_stream, boundaries=False))))


def test_retraining_is_off_online_and_says_so_once(digits_til):
    plugin = RNFPlugin(relevance=Relevance(reference_size=100), tolerance=Tolerance(0.05), retraining=Retraining(0.5))
    with pytest.warns(UserWarning, match="off in online streams") as caught:
        _train(digits_til, MultiHeadMLP(), plugin)
    assert sum("off in online streams" in str(w.message) for w in caught) == 1
    assert plugin._pending is None and len(plugin.frozen_fractions) == 5


def test_state_survives_a_checkpoint_in_the_middle_of_an_origin_experience(digits_til, tmp_path):
    def make():
        torch.manual_seed(5)
        model = MultiHeadMLP()
        plugin = RNFPlugin(relevance=Relevance(reference_size=120), tolerance=Tolerance(0.05))
        return naive(model, torch.optim.SGD(model.parameters(), lr=0.05), [plugin], train_mb_size=16)

    subs = list(_online(digits_til.train_stream[:2]))
    middle = next(i for i, s in enumerate(subs) if s.origin_experience.current_experience == 1) + 2
    RNGManager.set_random_seeds(0)
    straight = make()
    for sub in subs:
        straight.train(sub)

    RNGManager.set_random_seeds(0)
    interrupted = make()
    for sub in subs[:middle]:
        interrupted.train(sub)
    plugin = interrupted.plugins[0]
    assert plugin._online() is not None and len(plugin._online().train) > 0
    assert plugin.state_nbytes() == plugin.freeze.nbytes() + plugin.heads.nbytes() + plugin._online().nbytes()
    clone = RNFPlugin(relevance=Relevance(reference_size=120), tolerance=Tolerance(0.05))
    clone.load_state_dict(plugin.state_dict())  # the state dict carries the reservoirs too
    restored, saved = clone._online(), plugin._online()
    assert restored.offered() == saved.offered() and saved.offered()[1] > 0
    for mine, theirs in ((restored.train, saved.train), (restored.held, saved.held)):
        assert all(torch.equal(a, b) for a, b in zip(mine.tensors(), theirs.tensors()))
        assert mine.seen == theirs.seen and torch.equal(mine.generator.get_state(), theirs.generator.get_state())
    path = tmp_path / "online.ckpt"
    save_checkpoint(interrupted, path)
    del interrupted

    RNGManager.set_random_seeds(999)
    resumed, start = maybe_load_checkpoint(make(), path)
    assert start == middle
    for sub in subs[start:]:
        resumed.train(sub)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.plugins[0].frozen_fractions == straight.plugins[0].frozen_fractions
    assert resumed.plugins[0]._online() is None


def test_the_held_out_share_holds_over_the_origin_experience_and_leaves_a_sample_to_train_on():
    def stream(sizes):
        data = OnlineData(100, 10, seed=0, sample_seed=0, batch_size=8, device="cpu")
        held = []
        for size in sizes:  # offer each sub-experience as stream_past does: its held-out part, then the rest
            held.append(data.hold_out(size, 0.1))
            for reservoir, n in ((data.held, held[-1]), (data.train, size - held[-1])):
                if n:
                    reservoir.add(torch.zeros(n, 2), torch.arange(n) % 2, torch.zeros(n, dtype=torch.long))
        return data, held

    sizes = [64, 64, 1, 64, 5, 1, 64]
    data, held = stream(sizes)
    assert all(count < size for count, size in zip(held, sizes))
    assert held[2] == held[5] == 0  # a one-sample sub-experience is trained on
    assert sum(held) == int(0.1 * sum(sizes)) and data.offered() == (sum(sizes), sum(held))
    assert stream([1] * 30)[1] == [0] * 30


def test_one_sample_sub_experiences_train_and_the_search_says_what_it_scores_on(digits_til):
    RNGManager.set_random_seeds(0)
    model = MultiHeadMLP()
    plugin = RNFPlugin(relevance=Relevance(reference_size=60), tolerance=Tolerance(0.05))
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), plugins=[plugin],
                     train_mb_size=1, train_epochs=1, evaluator=EvaluationPlugin(loggers=[]))
    subs = with_task_labels(split_online_stream(digits_til.train_stream[:2], experience_size=1,
                                                access_task_boundaries=True, seed=0))
    with pytest.warns(UserWarning, match="could be held out") as caught:
        for sub in subs:
            strategy.train(sub)
    assert sum("could be held out" in str(w.message) for w in caught) == 2  # once per origin experience
    assert len(plugin.frozen_fractions) == 2 and len(plugin.searches) == 2


def test_reservoir_keeps_a_bounded_class_balanced_sample():
    reservoir = ClassReservoir(30, seed=0)
    stream = torch.arange(600)
    for start in range(0, 600, 20):  # classes 0, 1, 2 arrive one after another, then mixed
        x = stream[start : start + 20].float().unsqueeze(1)
        y = torch.full((20,), min(start // 100, 2)) if start < 300 else stream[start : start + 20] % 3
        reservoir.add(x, y, torch.zeros(20, dtype=torch.long))
        assert len(reservoir) <= 30
    x, y, _ = reservoir.tensors()
    assert y.bincount().tolist() == [10, 10, 10]
    late = (x.squeeze(1) >= 300).float().mean()
    assert 0.2 < late < 0.8  # a uniform sample of each class's items, not the first or the last ones
    with pytest.raises(ValueError, match="positive number of samples"):
        ClassReservoir(0)


def _ewc_penalties(benchmark, ewc) -> list[float]:
    """The penalty EWC adds at each step of an online stream of one mini-batch per sub-experience."""
    torch.manual_seed(0)
    model = ClassMLP(hidden=16)
    penalties: list[float] = []

    class Spy(SupervisedPlugin):  # runs after EWC's before_backward
        def before_backward(self, strategy, **kwargs):
            with torch.no_grad():
                penalties.append(float(strategy.loss - strategy._criterion(strategy.mb_output, strategy.mb_y)))

    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), [ewc, Spy()],
                     train_mb_size=SUB, train_epochs=1)
    for sub in _online(benchmark.train_stream[:2]):
        strategy.train(sub)
    return penalties


def test_boundary_ewc_consolidates_when_a_task_ends(digits_cil):
    from avalanche.training.plugins import EWCPlugin

    from avalanche_rnf.bench.online import BoundaryEWCPlugin

    upstream = _ewc_penalties(digits_cil, EWCPlugin(100.0, mode="online", decay_factor=1.0))
    assert all(p == 0.0 for p in upstream)  # its anchor is reset after every one-batch sub-experience
    boundary = BoundaryEWCPlugin(100.0)
    penalties = _ewc_penalties(digits_cil, boundary)
    first_task = -(-len(digits_cil.train_stream[0].dataset) // SUB)
    assert all(p == 0.0 for p in penalties[:first_task])  # nothing consolidated during the first task
    assert all(p > 0 for p in penalties[first_task + 1:])  # the first task's anchor holds through the second
    assert boundary.tasks == 2 and sorted(boundary.saved_params) == [1] and sorted(boundary.importances) == [1]


def test_the_task_boundary_is_found_where_avalanche_marks_no_last_sub_experience(digits_cil):
    from avalanche_rnf.bench.online import BoundaryEWCPlugin

    size = len(digits_cil.train_stream[0].dataset)  # one sub-experience per origin: its size divides the origin's
    subs = list(split_online_stream(digits_cil.train_stream[:1], experience_size=size, access_task_boundaries=True,
                                    seed=0))
    assert len(subs) == 1 and not subs[0].is_last_subexp  # avalanche-lib 0.6 marks no sub-experience the last
    for plugin in (RNFPlugin(task_inference="class"), BoundaryEWCPlugin(100.0)):
        RNGManager.set_random_seeds(0)
        model = ClassMLP()
        strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), plugins=[plugin],
                         train_mb_size=32, train_epochs=1,
                         evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]))
        for stream in (digits_cil.train_stream[:1], digits_cil.train_stream[1:2]):
            strategy.train(split_online_stream(stream, experience_size=size, access_task_boundaries=True, seed=0))
        if isinstance(plugin, RNFPlugin):
            assert len(plugin.frozen_fractions) == 2 and len(plugin.recognizer) == 2  # units chosen at each boundary
        else:
            assert plugin.tasks == 2
