"""Online runs: each experience is seen once, in small sub-experiences (``rnf-bench --online SIZE``).

The stream's experiences are cut by Avalanche's ``split_online_stream`` (boundaries shown, task
labels kept), every strategy trains one pass over each sub-experience in turn, and it is evaluated
on the test stream when an origin experience ends, so the accuracy matrix has one row per origin
experience as in the other runs.
"""

from __future__ import annotations

from typing import Any, Iterable

ONLINE_STRATEGIES = ("naive", "ewc", "lwf", "er_ace", "replay", "rnf")
"""The strategies an online comparison runs by default."""
ONLINE_PARAMS: dict[str, dict[str, Any]] = {"ewc": {"mode": "online", "decay_factor": 1.0}}
"""Parameters a strategy needs online: EWC keeps one running importance (its ``"separate"`` mode would
keep one per sub-experience). Replay's buffer is class-balanced online (see the strategies module)."""


def sub_experiences(experience: Any, size: int, seed: int) -> Iterable[Any]:
    """``experience`` cut into sub-experiences of ``size`` samples (shuffled with ``seed``), with its
    task boundaries and task labels visible to the strategy."""
    from avalanche.benchmarks.scenarios.online import split_online_stream
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    stream = split_online_stream([experience], experience_size=size, access_task_boundaries=True, seed=seed)
    return with_task_labels(stream)


def not_applicable_online(strategy: str) -> str | None:
    """Why ``strategy`` cannot run online (None when it can)."""
    if strategy == "joint":
        return "Joint training trains on the whole stream at once, not online"
    if strategy == "packnet":
        return "PackNet prunes and fine-tunes each experience in a second pass, not online"
    return None
