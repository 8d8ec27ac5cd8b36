"""One run: a strategy trained on a stream with one seed, measured into a :class:`RunRecord`."""

from __future__ import annotations

import contextlib
import re
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin

from avalanche_rnf.bench.evaluation import own_head_accuracy_metrics
from avalanche_rnf.bench.explaining import Explanations
from avalanche_rnf.bench.hparams import Training
from avalanche_rnf.bench.measure import PeakMemory, strategy_state_nbytes
from avalanche_rnf.bench.models import model_for
from avalanche_rnf.bench.online import sub_experiences
from avalanche_rnf.bench.recognised import METRIC as RECOGNITION_METRIC
from avalanche_rnf.bench.recognised import RecognisedTasks
from avalanche_rnf.bench.results import RunRecord
from avalanche_rnf.bench.strategies import build_strategy, not_applicable
from avalanche_rnf.bench.streams import Stream, with_validation


@dataclass
class RunSpec:
    """What to run: strategy, its parameters, the shared training setup and the seed."""

    strategy: str
    params: dict[str, Any]
    training: Training
    seed: int
    validation: float = 0.0  # > 0: hold out this fraction of the training data and score on it (searches)
    explain: str | None = None  # --explain: the run directory its heatmaps go to (None: no explanations)
    infer_tasks: bool = False  # --infer-tasks: evaluated with the task labels a recogniser infers (RecognisedTasks)

    def config(self, stream: Stream) -> dict[str, Any]:
        return {"benchmark": stream.info.name, "scenario": stream.scenario, "n_experiences": stream.n_experiences,
                "input_shape": list(stream.input_shape), "n_outputs": stream.n_outputs,
                "training": self.training.as_dict(), "params": self.params, "validation": self.validation,
                **({"explain": True} if self.explain else {}), **({"infer_tasks": True} if self.infer_tasks else {})}


Progress = Callable[[int, int], None]
"""Called with (training steps done, training steps in all): once before the first step, then after each."""


def run(spec: RunSpec, stream: Stream, *, loggers: list | None = None, device: str = "cpu",
        raise_errors: bool = False, progress: Progress | None = None) -> RunRecord:
    """Train ``spec.strategy`` on ``stream``; evaluate on every experience after each training step.

    A failing run returns a record with ``status="failed"`` and the error (unless ``raise_errors``).
    ``progress`` hears of every finished training step (a console progress bar, for example).
    """
    record = RunRecord(stream.info.name, stream.scenario, spec.strategy, spec.seed, spec.config(stream),
                       device=str(device))
    reason = not_applicable(spec.strategy, stream.scenario, spec.training, stream.info.family)
    if reason:
        record.status, record.reason = "skipped", reason
        return record
    try:
        _train_and_measure(spec, stream, record, loggers or [], device, progress)
    except Exception as error:
        if raise_errors:
            raise
        record.status = "failed"
        record.reason = f"{type(error).__name__}: {error}"
        record.traceback = traceback.format_exc(limit=-6)
    return record


def _train_and_measure(spec: RunSpec, stream: Stream, record: RunRecord, loggers: list, device: str,
                       progress: Progress | None = None) -> None:
    RNGManager.set_random_seeds(spec.seed)
    if spec.validation:
        stream = with_validation(stream, spec.validation, spec.seed)
    bench = stream.benchmark
    eval_stream = bench.test_stream
    t = spec.training
    # Avalanche's PackNetModel calls the wrapped model without task labels: one head, per-task sub-networks.
    multi_head = stream.multi_head and spec.strategy != "packnet"
    model = model_for(stream, t, multi_head)
    evaluator = EvaluationPlugin(
        accuracy_metrics(epoch=True, experience=True, stream=True), *own_head_accuracy_metrics(),
        loss_metrics(epoch=True, experience=True), loggers=loggers,
    )
    explanations = Explanations(spec, record)
    recogniser = [RecognisedTasks(seed=spec.seed, split_batches=spec.strategy == "packnet")] if spec.infer_tasks else []
    strategy = build_strategy(spec.strategy, model, t, spec.params, evaluator=evaluator, device=device,
                              seed=spec.seed, plugins=[*explanations.plugins, *recogniser],
                              input_shape=tuple(stream.input_shape), normalization=stream.normalization)
    steps = [bench.train_stream] if spec.strategy == "joint" else list(bench.train_stream)
    n = len(eval_stream)
    if progress:
        progress(0, len(steps))
    with PeakMemory() as memory:
        for done, step in enumerate(steps, 1):
            start = time.perf_counter()
            for part in sub_experiences(step, t.online, spec.seed) if t.online else [step]:
                strategy.train(part)
            record.train_seconds.append(time.perf_counter() - start - explanations.step())  # heatmaps apart
            start = time.perf_counter()
            metrics = strategy.eval(eval_stream)
            record.eval_seconds += time.perf_counter() - start
            record.matrix.append(experience_accuracies(metrics, "Top1_OwnHeadAcc_Exp", n))
            record.matrix_avalanche.append(experience_accuracies(metrics, "Top1_Acc_Exp", n))
            record.stream_accuracy_avalanche = _stream_accuracy(metrics)
            # the heatmaps are not the strategy's state; the recogniser's statistics are, counted once
            with _without(strategy, [*explanations.plugins, *recogniser]):
                record.state_bytes.append(strategy_state_nbytes(spec.strategy, strategy)
                                          + sum(r.nbytes() for r in recogniser))
            if recogniser:
                record.task_recognition.append(_per_experience(metrics, RECOGNITION_METRIC, n))
                record.recognition_bytes.append(recogniser[0].nbytes())
            if spec.strategy == "rnf":
                record.relevance_seconds.append(strategy.rnf.relevance_seconds[-1])
                record.frozen_fractions.append(_frozen_fractions(strategy.rnf, strategy.model))
                if strategy.rnf.searches:
                    record.rnf_search.append(vars(strategy.rnf.searches[-1]))
                if strategy.rnf.task_inference and not recogniser:
                    record.task_recognition.append(_per_experience(metrics, "RNF/TaskRecognition", n))
                    record.recognition_bytes.append(strategy.rnf.recognizer.nbytes())
            if progress:
                progress(done, len(steps))
    record.peak_rss_mb, record.peak_rss_delta_mb, record.peak_cuda_mb = (
        memory.peak_mb, memory.delta_mb, memory.cuda_mb)
    explanations.finish(strategy)


@contextlib.contextmanager
def _without(strategy: Any, plugins: list) -> Iterator[None]:
    """``plugins`` out of ``strategy.plugins`` for a while."""
    kept = list(strategy.plugins)
    strategy.plugins[:] = [p for p in kept if all(p is not q for q in plugins)]
    try:
        yield
    finally:
        strategy.plugins[:] = kept


def _frozen_fractions(plugin, model) -> dict[str, float]:
    """Frozen fraction per layer after the last experience, and over all units (``"all"``)."""
    return {**plugin.frozen_fractions[-1], "all": plugin.overall_frozen_fraction(model)}


_EXP = re.compile(r"/Exp(\d+)$")


def experience_accuracies(metrics: dict[str, Any], name: str, n: int) -> list[float]:
    """Accuracy per experience, in order, from an evaluator's last metrics (``name/eval_phase/.../ExpNNN``)."""
    found = {j: v for j, v in enumerate(_per_experience(metrics, name, n)) if v is not None}
    if sorted(found) != list(range(n)):
        raise RuntimeError(f"expected {name} for experiences 0..{n - 1}, got {sorted(found)}")
    return [found[j] for j in range(n)]


def _per_experience(metrics: dict[str, Any], name: str, n: int) -> list[float | None]:
    """A metric per experience where it was published (``None`` elsewhere)."""
    found: dict[int, float] = {}
    for key, value in metrics.items():
        match = _EXP.search(key)
        if key.startswith(f"{name}/eval_phase/") and match:
            found[int(match.group(1))] = float(value)
    return [found.get(j) for j in range(n)]


def _stream_accuracy(metrics: dict[str, Any]) -> float:
    return float(next(v for k, v in metrics.items() if k.startswith("Top1_Acc_Stream/eval_phase/")))


def default_device(requested: str = "auto") -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
