"""RNF keeps old tasks where Naive, run identically, forgets them."""

from __future__ import annotations

import os

import pytest
import torch
from avalanche.training import Naive
from torch import nn

from avalanche_rnf import RNF
from avalanche_rnf.bench.data import MNIST_FILES, data_root
from helpers import MultiHeadMLP, quiet_evaluator, task_accuracy


def _accuracy_matrix(strategy_cls, bench, seed):
    torch.manual_seed(seed)
    model = MultiHeadMLP(hidden=128)
    strategy = strategy_cls(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=20,
        evaluator=quiet_evaluator(),
    )
    rows = []
    for i, exp in enumerate(bench.train_stream):
        strategy.train(exp)
        rows.append([task_accuracy(model, test) for test in bench.test_stream[: i + 1]])
    return rows, strategy


def _drops(rows):
    """Per old task: accuracy right after learning it minus accuracy after the last task."""
    return [rows[i][i] - rows[-1][i] for i in range(len(rows) - 1)]


def test_rnf_keeps_old_tasks_where_naive_forgets(digits_til):
    """Split digits, task-incremental, 20 epochs at lr 0.05: mean over three seeds."""
    seeds = (0, 1, 2)
    naive = [_drops(_accuracy_matrix(Naive, digits_til, s)[0]) for s in seeds]
    rnf_runs = [_accuracy_matrix(RNF, digits_til, s) for s in seeds]
    rnf = [_drops(rows) for rows, _ in rnf_runs]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean([d[0] for d in naive]) >= 0.10, naive
    assert mean([d[0] for d in rnf]) <= 0.01, rnf
    assert mean([mean(d) for d in rnf]) <= 0.01, rnf
    for rows, strategy in rnf_runs:
        assert min(rows[i][i] for i in range(len(rows))) >= 0.95  # RNF still learns every new task
        assert 0 < strategy.rnf.frozen_fractions[0]["features.1"] < 1
        assert strategy.rnf.frozen_fractions[-1]["features.1"] == 1  # the last task keeps every free unit


@pytest.mark.skipif(not os.environ.get("RNF_DATA_ROOT"), reason="RNF_DATA_ROOT not set (MNIST data root)")
def test_split_mnist_task_incremental_defaults():
    from avalanche.benchmarks.classic import SplitMNIST

    bench = SplitMNIST(
        5,
        return_task_id=True,
        class_ids_from_zero_in_each_exp=True,
        seed=0,
        dataset_root=data_root(expected=MNIST_FILES),
    )
    torch.manual_seed(0)
    model = MultiHeadMLP(input_size=784, hidden=256)
    strategy = RNF(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        train_mb_size=128,
        train_epochs=1,
        evaluator=quiet_evaluator(),
    )
    after_first = None
    for i, exp in enumerate(bench.train_stream[:3]):
        strategy.train(exp)
        if i == 0:
            after_first = task_accuracy(model, bench.test_stream[0])
    assert after_first > 0.98
    assert task_accuracy(model, bench.test_stream[0]) >= after_first - 0.01
    assert all(task_accuracy(model, bench.test_stream[i]) > 0.95 for i in range(3))
