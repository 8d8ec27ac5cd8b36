"""Which free units an experience keeps: the selection rule within the capacity budget, or the
tolerance search over the rule's relevance mass.

:class:`Choice` is what an experience chose, between choosing it and freezing it. The functions
here read the model and the freeze state and change neither.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Iterable, Protocol

import torch
from torch import Tensor, nn

from avalanche_rnf.calibration import Calibration
from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.isolation import Source
from avalanche_rnf.keeping import Batch, Call, accuracy, isolated, kept
from avalanche_rnf.layers import UnitLayer, n_units
from avalanche_rnf.options import Capacity
from avalanche_rnf.scenario import Mode, keeps_last
from avalanche_rnf.selection import KeepFree, RelevanceMass, SelectionRule, limit
from avalanche_rnf.tolerance import SearchResult, ToleranceSearch, fair_share

CALIBRATION_SAMPLES = 512
"""Training samples used to recompute the BatchNorm statistics of newly frozen, isolated channels."""


class Data(Protocol):
    """An experience's data as RNF reads it: class-balanced batches and held-out batches."""

    def batches(self, size: int | None) -> Iterable[Batch]: ...

    def held_out(self) -> list[Batch]: ...


@dataclass
class Choice:
    """What an experience chose to keep, between choosing it and freezing it."""

    new: dict[str, Tensor]
    heads: set[str]
    sources: dict[str, Source | None]
    calibration: Calibration
    relevance: dict[str, Tensor]
    normalized: dict[str, Tensor]
    seconds: float
    keeps_all: bool = False
    """``keep_last`` on the stream's last experience: every free unit is kept, by design."""


def keeps_all(capacity: Capacity, mode: Mode | None, left: int | None) -> bool:
    """Whether an experience keeps every free unit: the stream's last (``left`` 1) where the capacity's
    ``keep_last`` says so (``"auto"``: the choice for task inference ``mode``)."""
    return left == 1 and keeps_last(capacity.keep_last, mode)


def budgets(model: nn.Module, layers: list[UnitLayer], freeze: FreezeState, capacity: Capacity,
            left: int | None, last: bool = False) -> dict[str, int]:
    """Per layer: how many units this experience may newly freeze (all free units on the stream's
    last experience with ``keep_last``); ``left``: experiences from this one to the stream's end."""
    left = left if capacity.share == "fair" else None
    out = {}
    for layer in layers:
        size = n_units(model.get_submodule(layer.name))
        free = int((~freeze.frozen_units(layer.name, size)).sum())
        if last or isinstance(capacity.share, str):
            out[layer.name] = fair_share(free, left, capacity.flex)
        else:
            out[layer.name] = min(free, math.ceil(capacity.share * size))
    return out


@dataclass
class Chooser:
    """Picks each layer's new units: whole task heads, the experience's output rows (``rows``), the
    rule's pick within the budget elsewhere; the shared output layer (``shared``) keeps none."""

    model: nn.Module
    layers: list[UnitLayer]
    freeze: FreezeState
    scores: dict[str, Tensor]
    heads: set[str]
    budgets: dict[str, int]
    rows: dict[str, Tensor]
    shared: str | None = None
    train_batch: int = 0
    """Samples per training mini-batch: BatchNorm recalibration holds no more than training does..."""
    eval_batch: int = 0
    """... or evaluation does, with this many samples per evaluation mini-batch."""

    def new_units(self, rule: SelectionRule | None) -> dict[str, Tensor]:
        new: dict[str, Tensor] = {}
        for layer in self.layers:
            frozen = self.freeze.frozen_units(layer.name, n_units(self.model.get_submodule(layer.name)))
            if layer.name == self.shared:  # its columns are frozen instead
                new[layer.name] = torch.zeros_like(frozen)
            elif layer.name in self.heads:
                new[layer.name] = ~frozen
            elif layer.name in self.rows:
                new[layer.name] = self.rows[layer.name] & ~frozen
            elif layer.name in self.scores and rule is not None:
                score = self.scores[layer.name].cpu()
                new[layer.name] = limit(score, rule(score, frozen) & ~frozen, self.budgets[layer.name])
            else:
                new[layer.name] = torch.zeros_like(frozen)
        return new

    def searched(
        self,
        search: ToleranceSearch,
        held_out: list[Batch],
        sources: dict[str, Source | None],
        calibration: Calibration,
        call: Call,
        keep_all: bool = False,
    ) -> tuple[dict[str, Tensor], SearchResult]:
        """The smallest selection within the tolerance on ``held_out`` (:class:`ToleranceSearch`);
        with ``keep_all``, every free unit (recorded as mass 1 with its held-out accuracy)."""
        cache: dict[bytes, float] = {}
        classes = next(iter(self.rows.values()), None)  # task inference: only the task's classes compete

        def pick(mass: float) -> dict[str, Tensor]:
            rule = (KeepFree() if keep_all else RelevanceMass(mass)) if mass > 0 else None
            return self.new_units(rule)

        def accuracy_at(mass: float) -> float:
            new = pick(mass)
            keep = kept(self.freeze, new)
            key = b"".join(k.numpy().tobytes() for k in keep.values())
            if key not in cache:
                weights = isolated(self.model, self.layers, sources, keep, new, calibration, call)
                cache[key] = accuracy(self.model, weights, held_out, call, classes)
            return cache[key]

        start = time.perf_counter()
        full = accuracy(self.model, {}, held_out, call, classes)
        result = SearchResult(1.0, accuracy_at(1.0), full, 2) if keep_all else search(accuracy_at, full)
        return pick(result.mass), replace(result, seconds=time.perf_counter() - start)


    def choose(
        self,
        rule: SelectionRule,
        search: ToleranceSearch | None,
        data: Data,
        sources: dict[str, Source | None],
        call: Call,
        keep_all: bool = False,
    ) -> tuple[dict[str, Tensor], Calibration, SearchResult | None]:
        """The new units (by ``rule``, or by ``search`` on the held-out data), the calibration
        batches of their BatchNorm channels, and the search's result."""
        norms = any(layer.norms for layer in self.layers)
        calibration = Calibration(list(data.batches(CALIBRATION_SAMPLES)) if norms else [], self.train_batch,
                                  self.eval_batch)
        if search is None:
            return self.new_units(KeepFree() if keep_all else rule), calibration, None
        new, result = self.searched(search, data.held_out(), sources, calibration, call, keep_all=keep_all)
        return new, calibration, result
