"""Selection rules: which still-free units of a layer to freeze, given their relevance scores.

A rule is any callable ``rule(scores, frozen) -> new`` on one layer: ``scores`` are the layer's
non-negative unit scores (normalised to sum to 1), ``frozen`` the boolean mask of units frozen
by earlier experiences, and ``new`` the boolean mask of free units to freeze now. Units with a
score of 0 are never selected: they carry nothing for the task.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor


class SelectionRule(Protocol):
    def __call__(self, scores: Tensor, frozen: Tensor) -> Tensor: ...


def _check_fraction(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r}.")
    return float(value)


def _top(scores: Tensor, candidates: Tensor, k: int) -> Tensor:
    """Mask of the ``k`` highest-scoring candidate units."""
    picked = torch.zeros_like(candidates)
    k = min(k, int(candidates.sum()))
    if k > 0:
        masked = torch.where(candidates, scores, torch.full_like(scores, -math.inf))
        picked[masked.topk(k).indices] = True
    return picked


class TopFraction:
    """Freeze the most relevant ``fraction`` of the layer's still-free units."""

    def __init__(self, fraction: float):
        self.fraction = _check_fraction("TopFraction fraction", fraction)

    def __call__(self, scores: Tensor, frozen: Tensor) -> Tensor:
        free = ~frozen
        k = math.ceil(round(self.fraction * int(free.sum()), 9))  # 0.07 * 100 is 7, not 8
        return _top(scores, free & (scores > 0), k)

    def __repr__(self) -> str:
        return f"TopFraction({self.fraction})"


class RelevanceMass:
    """Freeze the fewest units such that the frozen set carries ``mass`` of the layer's relevance.

    Units frozen by earlier experiences count towards the mass for free: a later task that relies
    on already-frozen units costs no new capacity.
    """

    def __init__(self, mass: float):
        self.mass = _check_fraction("RelevanceMass mass", mass)

    def __call__(self, scores: Tensor, frozen: Tensor) -> Tensor:
        need = self.mass * float(scores.sum()) - float(scores[frozen].sum())
        candidates = ~frozen & (scores > 0)
        if need <= 0 or not candidates.any():
            return torch.zeros_like(frozen)
        ordered = torch.where(candidates, scores, torch.zeros_like(scores)).sort(descending=True).values
        k = int(torch.searchsorted(ordered.cumsum(0), torch.tensor(need, dtype=ordered.dtype))) + 1
        return _top(scores, candidates, k)

    def __repr__(self) -> str:
        return f"RelevanceMass({self.mass})"


class KeepFree:
    """Freeze every still-free unit, scored or not: the last experience of a stream needs to leave
    nothing for later ones (``Capacity(keep_last=True)``)."""

    def __call__(self, scores: Tensor, frozen: Tensor) -> Tensor:
        return ~frozen

    def __repr__(self) -> str:
        return "KeepFree()"


def limit(scores: Tensor, picked: Tensor, k: int) -> Tensor:
    """Keep at most the ``k`` highest-scoring units of ``picked``."""
    return picked if int(picked.sum()) <= k else _top(scores, picked, k)
