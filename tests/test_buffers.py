"""Class-balanced buffers over many task-labelled sub-experiences (ER-ACE and online Replay)."""

from __future__ import annotations

import dataclasses

import torch
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer

from avalanche_rnf.bench.fixes import FlatClassBalancedBuffer
from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.models import model_for
from avalanche_rnf.bench.online import sub_experiences
from avalanche_rnf.bench.strategies import build_strategy
from avalanche_rnf.bench.streams import build_stream


def _depth(data, level: int = 0) -> int:
    """How deeply a data attribute's concatenations and subsets nest."""
    parts = getattr(data, "_datasets", None)
    return max(_depth(part, level + 1) for part in parts) if parts else level


def _fill(buffer: ClassBalancedBuffer, parts) -> ClassBalancedBuffer:
    torch.manual_seed(0)  # the reservoir's random weights
    for part in parts:
        buffer.update_from_dataset(part.dataset)
    return buffer


def test_task_labels_stay_flat_and_the_buffer_keeps_the_same_samples():
    stream = build_stream("split_digits", "task", seed=0)
    parts = [p for exp in stream.benchmark.train_stream[:3] for p in sub_experiences(exp, 3, 0)]
    upstream = _fill(ClassBalancedBuffer(40, adaptive_size=True), parts)
    flat = _fill(FlatClassBalancedBuffer(40, adaptive_size=True), parts)
    nesting = max(_depth(g.buffer.targets_task_labels.data) for g in upstream.buffer_groups.values())
    assert nesting > 100  # Avalanche's: one level per update once a second task appears
    assert all(_depth(g.buffer.targets_task_labels.data) <= 1 for g in flat.buffer_groups.values())
    a, b = upstream.buffer, flat.buffer
    assert len(a) == len(b) == 40
    for i in range(len(a)):
        (xa, ya, ta), (xb, yb, tb) = a[i], b[i]
        assert torch.equal(xa, xb) and ya == yb and ta == tb
    assert sorted(set(b.targets_task_labels)) == [0, 1, 2]


def test_er_ace_and_online_replay_keep_the_flat_buffer_on_task_incremental_online_streams():
    stream = build_stream("split_digits", "task", seed=0)
    training = dataclasses.replace(TRAINING["split_digits"], online=4, epochs=1)
    for name in ("er_ace", "replay"):
        strategy = build_strategy(name, model_for(stream, training), training,
                                  strategy_params(name, "split_digits", "task"), evaluator=EvaluationPlugin(loggers=[]))
        owner = strategy if name == "er_ace" else next(p for p in strategy.plugins if hasattr(p, "storage_policy"))
        assert isinstance(owner.storage_policy, FlatClassBalancedBuffer)
        for experience in stream.benchmark.train_stream[:2]:
            for part in sub_experiences(experience, training.online, 0):
                strategy.train(part)
        groups = owner.storage_policy.buffer_groups.values()
        assert sorted({int(t) for g in groups for t in g.buffer.targets_task_labels}) == [0, 1]
        assert all(_depth(g.buffer.targets_task_labels.data) <= 1 for g in groups)
