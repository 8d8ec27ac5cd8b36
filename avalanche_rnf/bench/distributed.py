"""Runs on Ray: every run is a Ray task with its own resource request, on this machine or a cluster.

Without an address Ray starts on this machine and uses all its cores; with one (``auto`` for a
cluster this node belongs to, or ``ray://HEAD:10001``) it joins a running cluster started with
``ray start`` on Slurm or Kubernetes nodes. Records come back to this process, which writes the
run directory exactly as a sequential run does, one finished run at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from avalanche_rnf.bench.jobs import Job, failed_record, run_job
from avalanche_rnf.bench.results import RunRecord

Handler = Callable[[Job, RunRecord], None]


@dataclass(frozen=True)
class Resources:
    """What each run asks Ray for. ``retries``: how often Ray restarts a run whose worker died."""

    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 0

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"

    def options(self) -> dict:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": self.retries}


def connect(address: str | None = None, **init_kwargs) -> bool:
    """Start Ray on this machine (``address=None``) or join the cluster at ``address``; True if this call did.

    An already running Ray session in this process is reused (so callers may ``ray.init`` with their
    own options first). Worker output stays in Ray's session logs; records carry any error.
    """
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, include_dashboard=False, log_to_driver=False, **init_kwargs)
    return True


def run_on_ray(jobs: Iterable[Job], resources: Resources, handle: Handler,
               job_fn: Callable[[Job, str], RunRecord] | None = None) -> None:
    """Submit every job as a Ray task and hand each record to ``handle`` as soon as its run finishes.

    A run whose worker process died (killed, out of memory, node lost) comes back as a failed record
    naming the cause; the other runs go on. ``job_fn`` (default :func:`~avalanche_rnf.bench.jobs.run_job`) does one run.
    """
    import ray

    job_fn = job_fn or run_job
    task = ray.remote(_execute).options(**resources.options())
    pending = {task.remote(job_fn, job, resources): job for job in jobs}
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ref)
        try:
            record = ray.get(ref)
        except ray.exceptions.RayError as error:
            record = failed_record(job, error_reason(error), resources.device)
        handle(job, record)


def _execute(job_fn: Callable[[Job, str], RunRecord], job: Job, resources: Resources) -> RunRecord:
    import torch

    torch.set_num_threads(max(1, int(resources.cpus)))
    return job_fn(job, resources.device)


def error_reason(error: BaseException) -> str:
    """The error's type and first line; for an exception raised inside a task, that exception's."""
    error = getattr(error, "cause", None) or error
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
