"""One run as a self-contained job: what to build, where to log, and the function that does it.

A :class:`Job` holds only plain data, so the same job runs in this process or in a Ray worker
on another machine (:mod:`avalanche_rnf.bench.distributed`); both paths call :func:`run_job`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avalanche_rnf.bench.hparams import SEARCH
from avalanche_rnf.bench.results import RunRecord
from avalanche_rnf.bench.runner import Progress, RunSpec, run
from avalanche_rnf.bench.streams import Stream, build_stream


@dataclass(frozen=True)
class StreamSpec:
    """The arguments of :func:`avalanche_rnf.bench.streams.build_stream`: the seed draws class order and
    permutations."""

    benchmark: str
    scenario: str
    seed: int
    root: str | None = None
    n_experiences: int | None = None
    image_size: int = 32


@functools.lru_cache(maxsize=16)
def load_stream(spec: StreamSpec) -> Stream:
    """The stream for ``spec``, built once per process (Ray reuses worker processes across runs)."""
    return build_stream(spec.benchmark, spec.scenario, seed=spec.seed, root=spec.root,
                        n_experiences=spec.n_experiences, image_size=spec.image_size)


@dataclass(frozen=True)
class LogSetup:
    """Which Avalanche loggers a run writes, and where: ``<out>/logs/<run>/`` (``text``: ``log.txt``, what
    Avalanche's interactive logger would print; ``interactive`` prints it to the console instead)."""

    out: str
    loggers: tuple[str, ...] = ("text",)
    wandb_project: str | None = None


@dataclass(frozen=True)
class Job:
    """One run: the strategy spec, the stream it trains on, its key in the result store, and its logs.

    ``name`` names the run's log directory; searches add the searched values to it.
    """

    spec: RunSpec
    stream: StreamSpec
    key: str
    name: str
    logs: LogSetup | None = None

    @property
    def label(self) -> str:
        prefix = f"{self.spec.strategy}-seed{self.spec.seed}"
        rest = self.name[len(prefix) + 1:] if self.name.startswith(prefix + "-") else ""
        return f"{self.spec.strategy} seed {self.spec.seed}" + (f" ({rest})" if rest else "")


def run_job(job: Job, device: str = "cpu", progress: Progress | None = None) -> RunRecord:
    """Build the job's stream and loggers, train and measure; return the :class:`RunRecord`.

    ``progress`` hears of each finished training step (see :func:`avalanche_rnf.bench.runner.run`).
    """
    stream = load_stream(job.stream)
    loggers, wandb = make_loggers(job.logs, job.name, job.spec, stream) if job.logs else ([], None)
    record = run(job.spec, stream, loggers=loggers, device=device, progress=progress)
    close_loggers(loggers, wandb, record)
    return record


def failed_record(job: Job, reason: str, device: str = "cpu") -> RunRecord:
    """The record of a run that died before it could return one (its worker was killed, for example)."""
    stream = load_stream(job.stream)
    return RunRecord(stream.info.name, stream.scenario, job.spec.strategy, job.spec.seed, job.spec.config(stream),
                     status="failed", reason=reason, device=device)


def run_name(spec: RunSpec, keys: list[str] | tuple[str, ...] | None = None) -> str:
    """``strategy-seedN``; for a search run also ``-key=value,...`` of the searched parameters (``keys``,
    by default the strategy's key parameter from :data:`~avalanche_rnf.bench.hparams.SEARCH`)."""
    name = f"{spec.strategy}-seed{spec.seed}"
    if not spec.validation:
        return name
    if keys is None:
        keys = [SEARCH[spec.strategy][0]] if spec.strategy in SEARCH else []
    tags = [f"{k}={spec.params[k]!r}" for k in keys if k and k in spec.params]  # repr: distinct values, distinct names
    return f"{name}-{','.join(tags) or 'default'}"


def make_loggers(logs: LogSetup, name: str, spec: RunSpec, stream: Stream) -> tuple[list, Any]:
    """The Avalanche loggers of run ``name`` (and the W&B logger, or None)."""
    from avalanche.logging import CSVLogger, InteractiveLogger, TensorboardLogger, TextLogger

    out = Path(logs.out)
    logdir = out / "logs" / name
    chosen = set(logs.loggers)
    loggers: list = []
    if "interactive" in chosen:
        loggers.append(InteractiveLogger())
    if chosen & {"text", "csv", "tensorboard"}:
        logdir.mkdir(parents=True, exist_ok=True)
    if "text" in chosen:
        loggers.append(TextLogger(open(logdir / "log.txt", "w")))
    if "csv" in chosen:
        loggers.append(CSVLogger(log_folder=str(logdir / "csv")))
    if "tensorboard" in chosen:
        loggers.append(TensorboardLogger(tb_log_dir=str(logdir / "tensorboard")))
    wandb = None
    if logs.wandb_project:
        from avalanche_rnf.bench.wandb_logger import WandBLogger

        wandb = WandBLogger(logs.wandb_project, name=name, group=out.name, config=spec.config(stream),
                            dir=out / "wandb")
        loggers.append(wandb)
    return loggers, wandb


def close_loggers(loggers: list, wandb, record) -> None:
    """Flush and close a run's loggers; W&B also gets the accuracy matrix and the run's summary."""
    from avalanche.logging import InteractiveLogger, TensorboardLogger, TextLogger

    if wandb is not None:
        if record.matrix:
            wandb.log_matrix("accuracy_matrix", record.matrix)
        wandb.log_summary({"average_accuracy": record.average_accuracy, "forgetting": record.forgetting,
                           "backward_transfer": record.backward_transfer, "learning_accuracy": record.learning_accuracy,
                           "train_seconds": sum(record.train_seconds), "peak_rss_delta_mb": record.peak_rss_delta_mb,
                           "state_bytes": record.state_bytes[-1] if record.state_bytes else None,
                           "status": record.status})
    for logger in loggers:
        if isinstance(logger, InteractiveLogger):
            continue  # writes to sys.stdout
        if isinstance(logger, TextLogger):
            logger.file.close()
        elif isinstance(logger, TensorboardLogger):
            logger.writer.close()
        elif hasattr(logger, "close"):
            logger.close()
