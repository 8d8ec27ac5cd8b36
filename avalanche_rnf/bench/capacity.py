"""How much one experience can learn with a given number of units per hidden layer.

RNF's fair share gives each of a stream's ``n`` experiences about ``1/n`` of every hidden layer,
and each task computes with its own units (plus, in the layers above the first, what earlier
tasks froze). A fresh network of each width is trained like one experience of the benchmark (the
harness's model, optimizer, batch size and epochs, with Naive) on one experience alone, and scored
on that experience's test data: the accuracy a task reaches from that many units of its own.
Naive's accuracy on the same experience after the whole stream, for comparison, is in the
benchmark's results directory; Naive reaches it from a network the earlier experiences trained.

    python -m avalanche_rnf.bench.capacity --benchmark permuted_mnist --widths 26 52 128 256 --seeds 0 1 2 \
        --out benchmarks/results/capacity-permuted_mnist

``--lr`` trains at another learning rate than the harness's, e.g. the rate RNF retrains its
sub-networks at (``retrain_lr_scale`` times the harness's).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin

from avalanche_rnf.bench.evaluation import task_accuracy
from avalanche_rnf.bench.hparams import TRAINING, Training, with_overrides
from avalanche_rnf.bench.models import model_for
from avalanche_rnf.bench.results import atomic_write
from avalanche_rnf.bench.strategies import build_strategy
from avalanche_rnf.bench.streams import BENCHMARKS, Stream, build_stream


def accuracy_at_width(stream: Stream, width: int, seed: int, training: Training | None = None) -> float:
    """Test accuracy on the stream's last experience of a fresh ``width``-unit network trained on it alone
    (over the task's own head in the task scenario), with ``training`` (default: the harness's)."""
    training = training if training is not None else TRAINING[stream.info.name]
    RNGManager.set_random_seeds(seed)
    model = model_for(stream, replace(training, hidden_size=width))
    strategy = build_strategy("naive", model, training, {}, evaluator=EvaluationPlugin(loggers=[]), seed=seed)
    last = stream.n_experiences - 1
    strategy.train(stream.benchmark.train_stream[last])
    return task_accuracy(strategy.model, stream.benchmark.test_stream[last], batch_size=training.eval_batch_size)


def measure(benchmark: str, widths: list[int], seeds: list[int], root: str | None = None,
            training: Training | None = None) -> dict[str, Any]:
    """Accuracy per width and seed, on each seed's last experience (each seed's stream built once)."""
    results: dict[str, Any] = {str(w): {} for w in widths}
    for seed in seeds:
        stream = build_stream(benchmark, seed=seed, root=root)
        for width in widths:
            results[str(width)][str(seed)] = accuracy_at_width(stream, width, seed, training)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="permuted_mnist", choices=[b for b in BENCHMARKS if b != "imagefolder"])
    parser.add_argument("--widths", type=int, nargs="+", default=[26, 52, 128, 256],
                        help="hidden units per layer (MLP width, or the CNN's hidden Linear width)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the harness's)")
    parser.add_argument("--data-root", default=None, help="data root (default: $RNF_DATA_ROOT)")
    parser.add_argument("--out", required=True, help="directory for result.json and result.md")
    args = parser.parse_args(argv)
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be positive, got {args.lr}")
    from avalanche_rnf.bench.machine import machine_facts

    training = with_overrides(TRAINING[args.benchmark], lr=args.lr)
    results = measure(args.benchmark, args.widths, args.seeds, args.data_root, training)
    command = "python -m avalanche_rnf.bench.capacity " + shlex.join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = {"command": command, "benchmark": args.benchmark, "training": training.as_dict(),
             "accuracy": results, "machine": machine_facts("cpu")}
    atomic_write(out / "result.json", json.dumps(saved, indent=1))
    lines = [f"# One experience of {args.benchmark} learned from a fresh network of each width", "",
             f"`{command}`", "",
             f"The last experience of each seed's stream, {training.epochs} epoch(s) of {training.optimizer} "
             f"(lr {training.lr}, batch {training.batch_size}), {training.hidden_layers} hidden layers; "
             "test accuracy on that experience.", "",
             "| hidden units per layer | seeds | accuracy (mean ± std) | per seed |", "|---|---|---|---|"]
    for width, per_seed in results.items():
        values = list(per_seed.values())
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {width} | {len(values)} | {statistics.mean(values):.3f} ± {spread:.3f} | "
                     f"{', '.join(f'{v:.3f}' for v in values)} |")
    atomic_write(out / "result.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
