"""Compare ways to recognise the task of a class-incremental test input, on one trained RNF model.

RNF with ``task_inference=True`` trains once on the stream. Every recogniser below then scores
the same test inputs from the same features, the kept units in front of the output layer: with
isolation, task ``k``'s features compute exactly what they computed when task ``k`` ended, so
statistics fitted on each task's training samples with the final model equal those the plugin
fits after the task. Reported: the share of test inputs whose task is recognised and the
class-incremental accuracy when only the recognised task's classes may win.

    python -m benchmarks.recognizers --benchmark split_mnist --seed 0 --out benchmarks/results/recognizers-split_mnist
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from avalanche_rnf.recognition import TaskRecognizer
from avalanche_rnf.reference import balanced_indices
from benchmarks.results import atomic_write

FIT_SAMPLES = 1000  # per task, class-balanced, as the plugin's RECOGNITION_SAMPLES


def train_rnf(benchmark: str, seed: int):
    """RNF with task inference trained on the class-incremental stream, as ``rnf-bench`` trains it."""
    from avalanche.training.determinism.rng_manager import RNGManager
    from avalanche.training.plugins import EvaluationPlugin

    from benchmarks.hparams import TRAINING, strategy_params
    from benchmarks.models import make_model
    from benchmarks.strategies import build_strategy
    from benchmarks.streams import build_stream

    stream = build_stream(benchmark, "class", seed=seed)
    RNGManager.set_random_seeds(seed)  # as benchmarks.runner: the same model as rnf-bench's run with this seed
    t = TRAINING[benchmark]
    model = make_model(stream.info.family, stream.input_shape, stream.n_outputs, False,
                       hidden_size=t.hidden_size, hidden_layers=t.hidden_layers, width=t.width)
    strategy = build_strategy("rnf", model, t, strategy_params("rnf", benchmark, "class"),
                              evaluator=EvaluationPlugin(loggers=[]), device="cpu", seed=seed)
    for experience in stream.benchmark.train_stream:
        strategy.train(experience)
    return stream, strategy


@torch.no_grad()
def features(strategy, datasets, size: int | None = None) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per dataset: the output layer's inputs, the logits and the labels (``size`` class-balanced samples)."""
    plugin, model = strategy.rnf, strategy.model.eval()
    out = []
    hook = plugin._capture(model)
    try:
        for dataset in datasets:
            dataset = dataset.eval()
            if size is not None:
                generator = torch.Generator().manual_seed(0)
                dataset = dataset.subset(balanced_indices(torch.as_tensor(list(dataset.targets)), size, generator))
            f, logits, labels = [], [], []
            for x, y, _ in DataLoader(dataset, batch_size=512, collate_fn=dataset.collate_fn):
                logits.append(model(x))
                f.append(plugin._features.pop())
                labels.append(y)
            out.append((torch.cat(f), torch.cat(logits), torch.cat(labels)))
    finally:
        hook.remove()
    return out


def compare(strategy, stream) -> dict[str, dict[str, float]]:
    """Task-recognition share and class-incremental accuracy of each recogniser on the test stream."""
    tasks = strategy.rnf.recognizer.tasks
    train = features(strategy, [e.dataset for e in stream.benchmark.train_stream], FIT_SAMPLES)
    test_f, test_logits, test_y = (torch.cat(parts) for parts in zip(*features(
        strategy, [e.dataset for e in stream.benchmark.test_stream])))
    n_classes = test_logits.shape[1]
    true_task = strategy.rnf.recognizer.task_of_class(n_classes)[test_y]
    class_mask = strategy.rnf.recognizer.class_mask(n_classes)

    def diagonal(f: Tensor) -> Tensor:
        scores = []
        for task, (fit, _, y) in zip(tasks, train):
            x = fit[:, task.columns]
            means = torch.stack([x[y == c].mean(0) for c in task.classes])
            variance = (x - means[torch.searchsorted(task.classes, y)]).pow(2).mean(0)
            variance = variance.clamp_min(1e-2 * float(variance.mean()) + 1e-12)
            z = (f[:, task.columns][:, None] - means[None]) ** 2 / variance + variance.log()
            scores.append(-0.5 * z.mean(-1).max(-1).values)
        return torch.stack(scores, 1)

    def mahalanobis(shrinkage: float, standardised: bool) -> Callable[[Tensor], Tensor]:
        recognizer = TaskRecognizer(shrinkage)
        for task, (fit, _, y) in zip(tasks, train):
            recognizer.add_task(task.columns, fit, y)
        if standardised:
            return recognizer.scores
        return lambda f: torch.stack([-task.distance(f) for task in recognizer.tasks], 1)

    logits = {"max logit": lambda: torch.stack([test_logits[:, t.classes].max(-1).values for t in tasks], 1),
              "softmax mass": lambda: torch.stack([test_logits.softmax(1)[:, t.classes].sum(-1) for t in tasks], 1)}
    candidates: dict[str, Callable[[], Tensor]] = {
        **logits,
        "diagonal Gaussian per class": lambda: diagonal(test_f),
        **{f"Mahalanobis, shrinkage {s}": (lambda s=s: mahalanobis(s, False)(test_f)) for s in (0.01, 0.1, 0.3)},
        **{f"Mahalanobis, shrinkage {s}, standardised per task": (lambda s=s: mahalanobis(s, True)(test_f))
           for s in (0.01, 0.1, 0.3)},
    }
    results = {}
    for name, score in candidates.items():
        predicted = score().argmax(1)
        allowed = class_mask[predicted]
        masked = torch.where(allowed, test_logits, test_logits.min(1, keepdim=True).values - 1)
        results[name] = {"task_recognised": float((predicted == true_task).float().mean()),
                         "class_incremental_accuracy": float((masked.argmax(1) == test_y).float().mean())}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="split_mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="directory for result.json and result.md")
    args = parser.parse_args(argv)
    from benchmarks.cli import machine_facts

    stream, strategy = train_rnf(args.benchmark, args.seed)
    results = compare(strategy, stream)
    command = "python -m benchmarks.recognizers " + shlex.join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "result.json", json.dumps({"command": command, "benchmark": args.benchmark, "seed": args.seed,
                                                   "results": results, "machine": machine_facts("cpu")}, indent=1))
    lines = [f"# Task recognisers on {args.benchmark} (class-incremental, seed {args.seed}, test stream)", "",
             f"`{command}`", "", "| recogniser | task recognised | class-incremental accuracy |", "|---|---|---|"]
    lines += [f"| {k} | {v['task_recognised']:.3f} | {v['class_incremental_accuracy']:.3f} |"
              for k, v in results.items()]
    atomic_write(out / "result.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
