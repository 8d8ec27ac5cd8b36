"""What RNF keeps between experiences: the plugin's checkpointable state and its read-only views."""

from __future__ import annotations

import dataclasses
from typing import Any

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.heads import HeadTransfer
from avalanche_rnf.history import History
from avalanche_rnf.inference import TaskInferrer
from avalanche_rnf.options import Relevance
from avalanche_rnf.reservoir import OnlineData
from avalanche_rnf.scenario import Mode, Scenario
from avalanche_rnf.task_norms import TaskNorms


class KeptState:
    """``state_dict`` / ``load_state_dict`` and the views of the plugin's parts (mixed into the plugin)."""

    freeze: FreezeState
    history: History
    inference: TaskInferrer
    heads: HeadTransfer
    task_norms: TaskNorms
    relevance: Relevance
    task_inference: Mode | None
    isolate: bool | None
    scenario: Scenario | None
    _warned: set[str]
    _data: Any

    raw_scores = property(lambda self: self.history.raw_scores)
    scores = property(lambda self: self.history.scores)
    frozen_fractions = property(lambda self: self.history.frozen_fractions)
    relevance_seconds = property(lambda self: self.history.relevance_seconds)
    searches = property(lambda self: self.history.searches)
    recognizer = property(lambda self: self.inference.recognizer)
    task_inputs = property(lambda self: self.inference.task_inputs)
    unread = property(lambda self: self.heads.unread)

    def _online(self) -> OnlineData | None:
        return self._data if isinstance(self._data, OnlineData) else None

    def state_dict(self) -> dict[str, Any]:
        """Everything RNF keeps between experiences, as CPU tensors and plain Python values."""
        return {
            "freeze": self.freeze.state_dict(),
            **self.history.state_dict(),
            **self.inference.state_dict(),
            **self.heads.state_dict(),
            "task_norms": self.task_norms.state_dict(),
            "warned": sorted(self._warned),
            **({"scenario": dataclasses.asdict(self.scenario)} if self.scenario is not None else {}),
            **({"online": online.state_dict()} if (online := self._online()) is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.freeze.load_state_dict(state["freeze"])
        self.history.load_state_dict(state)
        self.inference.load_state_dict(state)
        self.task_inference = self.inference.mode if self.inference.mode != "auto" else None
        if self.task_inference is not None:  # chosen by "auto" before the checkpoint: isolation came with it
            self.isolate = True
        self.scenario = Scenario(**state["scenario"]) if "scenario" in state else self.scenario
        self._data = OnlineData.from_state(state["online"], self.relevance.batch_size) if "online" in state else None
        self.heads.load_state_dict(state)
        if "task_norms" in state:
            self.task_norms.load_state_dict(state["task_norms"])
        self._warned.clear()
        self._warned.update(state["warned"])

    def overall_frozen_fraction(self, model: Any) -> float:
        """Frozen fraction over all units of the layers scored after the last experience."""
        return self.freeze.overall_fraction(model, self.frozen_fractions[-1] if self.frozen_fractions else {})

    def state_nbytes(self) -> int:
        """Bytes RNF keeps between experiences: masks and frozen values, each task's
        BatchNorms, and the recognizer's statistics."""
        online = online_data.nbytes() if (online_data := self._online()) is not None else 0
        return self.freeze.nbytes() + self.task_norms.nbytes() + self.inference.nbytes() + self.heads.nbytes() + online
