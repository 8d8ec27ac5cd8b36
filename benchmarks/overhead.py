"""RNF's cost next to Naive's on CIFAR-shaped inputs: training time, peak memory, and RNF's phases.

Memory and time depend on shapes more than on pixel values, so the inputs are random tensors of
CIFAR-10's shape (no dataset needed), each class with a pattern of its own added, so that RNF's
tolerance search has something to keep. Both strategies train the same model on the same stream,
each in a fresh process, one after the other; run it on a quiet machine and compare the ratios.

    python benchmarks/overhead.py --model slim_resnet18 --samples 2000 --experiences 2 --epochs 1

Prints one line per strategy: training seconds, peak RSS above entry (MiB) and, for RNF, the
seconds and peak RSS of its phases (LRP relevance, data-flow tracing, the tolerance search,
learning a task's recognition statistics, BatchNorm statistics recomputed for the isolated
sub-network) and the seconds of holding frozen weights in each training step. Phases overlap:
the search recomputes BatchNorm statistics for every candidate it tries, so "calibration"
includes calls made inside "search".
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import warnings
from typing import Any, Callable

import torch
from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark
from avalanche.models import SlimResNet18, as_multitask
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

import avalanche_rnf.choosing as choosing
import avalanche_rnf.freezing as freezing
import avalanche_rnf.graph as graph
import avalanche_rnf.inference as inference
import avalanche_rnf.keeping as keeping
import avalanche_rnf.options as options
from avalanche_rnf import RNF, Relevance, Retraining, Tolerance
from avalanche_rnf.bench.measure import PeakMemory
from avalanche_rnf.bench.models import SmallCNN

PHASES = {"relevance": (options.Relevance, "score"), "tracing": (graph, "traced_layers"),
          "search": (choosing.Chooser, "searched"), "recognition": (inference.TaskInferrer, "learn_task"),
          "calibration": (keeping, "calibrated_norms")}
STEP_PHASES = {"holding": (freezing.FreezeState, ("mask_grads", "restore"))}
"""Called in every training step: timed only (a memory sampler per call would cost more than they do)."""


def _measured(function: Callable[..., Any], label: str, out: dict[str, list[float]]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        with PeakMemory(0.005) as memory:
            result = function(*args, **kwargs)
        seconds, peak = out.setdefault(label, [0.0, 0.0])
        out[label] = [seconds + time.perf_counter() - start, max(peak, memory.delta_mb)]
        return result

    return wrapper


def _timed(function: Callable[..., Any], label: str, out: dict[str, list[float]]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = function(*args, **kwargs)
        out.setdefault(label, [0.0, 0.0])[0] += time.perf_counter() - start
        return result

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["small_cnn", "slim_resnet18"], default="slim_resnet18")
    parser.add_argument("--samples", type=int, default=2000, help="training samples per experience")
    parser.add_argument("--experiences", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="training mini-batch size")
    parser.add_argument("--eval-batch-size", type=int, default=None,
                        help="evaluation mini-batch size (default: the training one; the harness's is 512), which "
                             "decides whether RNF measures BatchNorm statistics in one pass or norm by norm")
    scenario = parser.add_mutually_exclusive_group()
    scenario.add_argument("--class-incremental", action="store_true",
                          help="RNF with task_inference='class', max_drop 0.002 and one retraining epoch")
    scenario.add_argument("--task-incremental", action="store_true",
                          help="task labels and a head per task (as_multitask); RNF with max_drop 0.002 and one "
                               "retraining epoch, isolating what it keeps")
    parser.add_argument("--defaults", action="store_true",
                        help="RNF at the library's defaults (RNF() as a user writes it) instead of the settings above")
    parser.add_argument("--reference-size", type=int, default=None,
                        help="samples of each experience RNF runs LRP on (Relevance(reference_size=...); "
                             "default: the library's)")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # a fresh process each: peaks not hidden by the other's
    for strategy_name in ("naive", "rnf"):
        with context.Pool(1) as pool:
            print(pool.apply(_run, (args, strategy_name)))


def _run(args: argparse.Namespace, strategy_name: str) -> str:
    """Train ``strategy_name`` on the stream; its line of the report."""
    warnings.filterwarnings("ignore")
    phases: dict[str, list[float]] = {}
    for label, (owner, name) in PHASES.items():
        setattr(owner, name, _measured(getattr(owner, name), label, phases))
    for label, (cls, names) in STEP_PHASES.items():
        for name in names:
            setattr(cls, name, _timed(getattr(cls, name), label, phases))
    generator = torch.Generator().manual_seed(0)
    n = args.samples * args.experiences
    y = torch.arange(2 * args.experiences).repeat_interleave(args.samples // 2)
    patterns = torch.randn(2 * args.experiences, 3, 32, 32, generator=generator)
    x = torch.randn(n, 3, 32, 32, generator=generator) + 0.5 * patterns[y]  # learnable: the search keeps a part
    parts = [(x[y // 2 == k], y[y // 2 == k]) for k in range(args.experiences)]
    if args.task_incremental:
        parts = [(inputs, labels % 2) for inputs, labels in parts]
    tasks = list(range(args.experiences)) if args.task_incremental else [0] * args.experiences
    bench = tensors_benchmark(parts, [(p[0][:200], p[1][:200]) for p in parts], task_labels=tasks)
    torch.manual_seed(0)
    classes = 2 if args.task_incremental else 2 * args.experiences
    model = SlimResNet18(classes) if args.model == "slim_resnet18" else SmallCNN(classes)
    if args.task_incremental:
        model = as_multitask(model, "linear" if args.model == "slim_resnet18" else "classifier")
    common: dict[str, Any] = dict(model=model, train_mb_size=args.batch_size, train_epochs=args.epochs,
                                  eval_mb_size=args.eval_batch_size or args.batch_size,
                                  optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                                  evaluator=EvaluationPlugin())
    extra: dict[str, Any] = dict(tolerance=Tolerance(0.002), retraining=Retraining(1)) \
        if args.class_incremental or args.task_incremental else {}
    if args.class_incremental:
        extra["task_inference"] = "class"
    if args.defaults:
        extra = {}
    if args.reference_size is not None:
        extra["relevance"] = Relevance(reference_size=args.reference_size)
    strategy = Naive(**common) if strategy_name == "naive" else RNF(**common, **extra)
    start = time.perf_counter()
    with PeakMemory() as memory:
        for experience in bench.train_stream:
            strategy.train(experience)
    seconds = time.perf_counter() - start
    shown = ", ".join(f"{k} {s:.1f} s" + ("" if k in STEP_PHASES else f" / {m:.0f} MiB")
                      for k, (s, m) in phases.items())
    return (f"{strategy_name}: train {seconds:.1f} s, peak RSS delta {memory.delta_mb:.0f} MiB"
            + (f"; {shown}" if shown else ""))


if __name__ == "__main__":
    main()
