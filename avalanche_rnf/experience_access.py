"""How the plugin reads the model and the experience: its unit layers, grouped by the model's data
flow, and the experience's data as RNF uses it (mixed into the plugin)."""

from __future__ import annotations

from typing import Any

from torch import nn

from avalanche_rnf import glue
from avalanche_rnf.graph import DataFlow
from avalanche_rnf.layers import UnitLayer, scan
from avalanche_rnf.options import Relevance


class ExperienceAccess:
    """``_scan`` (the unit layers) and ``_data_of`` (the experience's data) of the plugin."""

    flow: DataFlow
    layers: list[UnitLayer]
    relevance: Relevance
    strict: bool
    seed: int
    _warned: set[str]
    _data: Any

    def _scan(self, model: nn.Module, experience: Any = None, device: Any = "cpu") -> None:
        """The model's unit layers, grouped by its data flow as traced on ``experience``'s first input."""
        if experience is not None:
            self.flow.example = glue.example(experience, device)
        self.layers = self.flow.layers(model, scan(model, self.strict, self._warned))
        if experience is not None and self._data is not None:  # RNF's passes keep activations small
            self._data.batch_size = self.flow.lean(model, self.layers, self.relevance.batch_size)

    def _data_of(self, strategy: Any, adapted: Any = None, holdout: float | None = None) -> Any:
        """The experience's data as adapted for training (made anew from ``adapted``; from its raw
        dataset where no adaptation ran; in an online stream, the reservoirs)."""
        if adapted is not None or self._data is None:
            dataset = adapted if adapted is not None else strategy.experience.dataset
            self._data = glue.ExperienceData(dataset, strategy.experience, holdout=holdout, seed=self.seed,
                                             batch_size=self.relevance.batch_size, device=strategy.device)
        return self._data
