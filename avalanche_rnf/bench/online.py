"""Online runs: each experience is seen once, in small sub-experiences (``rnf-bench --online SIZE``).

The stream's experiences are cut by Avalanche's ``split_online_stream`` (boundaries shown, task
labels kept), every strategy trains one pass over each sub-experience in turn, and it is evaluated
on the test stream when an origin experience ends, so the accuracy matrix has one row per origin
experience as in the other runs.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import ParamData, copy_params_dict

from avalanche_rnf import glue

ONLINE_STRATEGIES = ("naive", "ewc", "lwf", "er_ace", "replay", "rnf")
"""The strategies an online comparison runs by default."""
ONLINE_PARAMS: dict[str, dict[str, Any]] = {"ewc": {"mode": "online", "decay_factor": 1.0}}
"""Parameters a strategy needs online: EWC keeps one running importance (its ``"separate"`` mode would
keep one per sub-experience) and consolidates when a task ends (:class:`BoundaryEWCPlugin`). Replay's
buffer is class-balanced online (see the strategies module)."""


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
    if strategy == "slda_backbone":
        return "slda_backbone trains its backbone on the whole first experience, not one pass of sub-experiences"
    if strategy == "generative_replay":
        return "Generative Replay copies and refits its generator after every (sub-)experience: not run online"
    return None


class BoundaryEWCPlugin(EWCPlugin):
    """EWC (online mode) that consolidates when a task ends, not after every sub-experience.

    Avalanche's ``EWCPlugin`` saves its anchor weights after every experience it trains. Fed a
    stream of sub-experiences it moves the anchor to the current weights after each one: with one
    mini-batch per sub-experience (64 samples, batches of 128) the penalty's anchor equals the
    weights at every step, the penalty and its gradient are exactly zero and EWC trains exactly
    like Naive; with a few steps per sub-experience, the importances of many tiny sub-experiences
    add up until the penalty diverges. This plugin computes the importances of each sub-experience
    after training on it, as Avalanche's does, averages them over the task and sets the anchor and
    the importances only when the task's last sub-experience ends; until then the penalty keeps
    the anchor of the tasks before.
    """

    def __init__(self, ewc_lambda: float, decay_factor: float = 1.0) -> None:
        super().__init__(ewc_lambda, mode="online", decay_factor=decay_factor)
        self.tasks = 0
        """Tasks consolidated so far."""
        self._sum: dict[str, torch.Tensor] = {}
        self._parts = 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Avalanche's penalty (``before_backward``) reads the anchor stored under the experience before the
        clock's: there, the last consolidated task's."""
        if self.tasks:
            self._keep_only(self.tasks - 1, alias=strategy.clock.train_exp_counter - 1)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        importances = self.compute_importances(strategy.model, strategy._criterion, strategy.optimizer,
                                               strategy.experience.dataset, strategy.device, strategy.train_mb_size)
        for name, value in importances.items():
            self._sum[name] = self._sum.get(name, 0) + value.data
        self._parts += 1
        if not glue.is_online(strategy.experience) or glue.ends_origin(strategy.experience, self._parts):
            average = {name: ParamData(f"imp_{name}", total.shape, init_tensor=total / self._parts,
                                       device=total.device) for name, total in self._sum.items()}
            self.update_importances(average, self.tasks)
            self.saved_params[self.tasks] = copy_params_dict(strategy.model)
            self._keep_only(self.tasks)
            self.tasks += 1
            self._sum, self._parts = {}, 0

    def _keep_only(self, key: int, alias: int | None = None) -> None:
        """Drop every anchor and importance but those under ``key`` (also under ``alias``, when given)."""
        for table in (self.saved_params, self.importances):
            kept = table[key]
            table.clear()
            table[key] = kept
            if alias is not None:
                table[alias] = kept
