"""Quick demo: Naive fine-tuning against RNF on split digits (5 tasks, task-incremental).

Uses scikit-learn's bundled 8x8 digits, so it needs no download and runs in seconds on a CPU::

    python -m avalanche_rnf.bench.demo

Accuracy is scored per task over that task's own head; the last column is Avalanche's own
stream accuracy, which under-reports multi-head models (see ``avalanche_rnf.bench.evaluation``).
"""

from __future__ import annotations

import argparse
import warnings

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from tqdm import tqdm

from avalanche_rnf import RNF
from avalanche_rnf.bench.evaluation import task_accuracy
from avalanche_rnf.bench.models import MultiHeadMLP
from avalanche_rnf.bench.results import forgetting
from avalanche_rnf.bench.split_digits import SplitDigits

STRATEGIES: dict[str, type[SupervisedTemplate]] = {"Naive": Naive, "RNF": RNF}


def run(name: str, epochs: int, seed: int, lr: float) -> tuple[list[list[float]], float, SupervisedTemplate]:
    """Train ``name`` on the stream; return the accuracy matrix, Avalanche's final stream accuracy, the strategy."""
    bench = SplitDigits(5, return_task_id=True, seed=seed)
    torch.manual_seed(seed)
    model = MultiHeadMLP(hidden=128)
    evaluator = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])
    strategy = STRATEGIES[name](
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=epochs,
        evaluator=evaluator,
    )
    matrix = []
    for i, exp in enumerate(tqdm(bench.train_stream, desc=f"{name:5s}", unit="task", leave=False)):
        strategy.train(exp)
        matrix.append([task_accuracy(model, test) for test in bench.test_stream[: i + 1]])
    reported = strategy.eval(bench.test_stream)
    stream = next(v for k, v in reported.items() if k.startswith("Top1_Acc_Stream/eval_phase/test_stream"))
    return matrix, float(stream), strategy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per task (default: 20)")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate, momentum 0.9 (default: 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the model (default: 0)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # the evaluator has no loggers on purpose; filters restored on return
        warnings.filterwarnings("ignore", message="No loggers specified")
        _report(args)


def _report(args: argparse.Namespace) -> None:
    header = (
        "| strategy | "
        + " | ".join(f"task {i + 1}" for i in range(5))
        + " | average | forgetting | avalanche-reported |"
    )
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    rnf: RNF | None = None
    for name in STRATEGIES:
        matrix, stream, strategy = run(name, args.epochs, args.seed, args.lr)
        final = matrix[-1]
        cells = " | ".join(f"{a:.3f}" for a in final)
        print(f"| {name} | {cells} | {sum(final) / 5:.3f} | {forgetting(matrix):.3f} | {stream:.3f} |")
        if isinstance(strategy, RNF):
            rnf = strategy
    assert rnf is not None, "STRATEGIES has RNF"
    fractions = ", ".join(f"{k} {v:.2f}" for k, v in rnf.rnf.frozen_fractions[-1].items() if k.startswith("features"))
    print(f"\nRNF frozen fraction per backbone layer after the last task: {fractions}")
    print(f"RNF relevance pass: {sum(rnf.rnf.relevance_seconds):.2f} s in total")


if __name__ == "__main__":
    main()
