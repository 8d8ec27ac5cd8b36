"""How the plugin reads the model and the experience: its unit layers, grouped by the model's data
flow, the experience's data as RNF uses it, and the kind of stream it comes from (mixed into the
plugin)."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from avalanche_rnf import glue
from avalanche_rnf.graph import DataFlow
from avalanche_rnf.inference import TaskInferrer
from avalanche_rnf.layers import UnitLayer, scan
from avalanche_rnf.options import Relevance
from avalanche_rnf.output_layer import check_single_head
from avalanche_rnf.scenario import Mode, Scenario, chosen_mode, scenario_of

log = logging.getLogger(__name__)


class ExperienceAccess:
    """``_scan`` (the unit layers), ``_data_of`` (the experience's data) and ``_resolve_scenario`` (the
    stream's kind) of the plugin."""

    flow: DataFlow
    inference: TaskInferrer
    isolate: bool | None
    scenario: Scenario | None
    task_inference: Mode | None
    _explicit_inference: bool
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

    def _resolve_scenario(self, strategy: Any, experience: Any) -> None:
        """``task_inference="auto"``: the task inference the model and the stream call for, chosen once
        (on the data flow traced from the experience, which residual models need)."""
        model = strategy.model
        self._scan(model, strategy.experience, strategy.device)
        last = model.get_submodule(self.layers[-1].name) if self.layers else None
        self.scenario = scenario_of(glue.multi_head(model), glue.stream_classes(experience),
                                    set(map(int, getattr(experience, "classes_in_this_experience", []))),
                                    last.out_features if isinstance(last, nn.Linear) else None,
                                    glue.incremental_head(model))
        mode = chosen_mode(self.scenario, isolate=self.isolate, explicit=self._explicit_inference,
                           check=lambda: check_single_head(model, self.layers))
        self.inference.resolve(mode)
        self.task_inference = mode
        self.isolate = True if mode is not None else self.isolate
        log.info("RNF: %s-incremental stream (%s): task_inference=%r", self.scenario.name, self.scenario.reason, mode)
