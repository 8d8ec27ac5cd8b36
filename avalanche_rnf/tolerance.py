"""Accuracy-tolerance selection and the capacity budget: how many units an experience may keep.

:class:`ToleranceSearch` finds the smallest relevance mass ``q`` such that the sub-network of
the units it keeps (the most relevant units carrying ``q`` of each layer's relevance, plus the
units frozen before) loses at most ``max_drop`` accuracy on held-out data of the experience. The
idea is ReReLRP's (Bogacka et al. 2025, arXiv 2502.10789), which scans 10,000 threshold bins
with a validation pass each; accuracy grows with ``q``, so bisection needs ``steps + 2`` passes
for a resolution of ``2 ** -steps``.

:func:`fair_share` is the capacity budget: an experience may take at most an equal share of a
layer's still-free units among the experiences still to come, so a long stream never runs out, or
up to ``flex`` such shares where the tolerance search needs them. What an experience does not take
stays free and raises the shares of the experiences after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class SearchResult:
    mass: float
    """The relevance mass chosen."""
    accuracy: float
    """Held-out accuracy of the kept sub-network at that mass."""
    full_accuracy: float
    """Held-out accuracy of the whole network, before anything was cut."""
    evaluations: int
    """Validation passes the search took."""
    seconds: float = 0.0
    """Wall time of the search (set by the caller that timed it)."""
    retrained_accuracy: float | None = None
    """Held-out accuracy of the kept sub-network after retraining it (``None``: not retrained)."""


@dataclass(frozen=True)
class ToleranceSearch:
    """Bisection over the relevance mass for the smallest sub-network within ``max_drop`` accuracy.

    :param max_drop: accuracy (a fraction, e.g. ``0.01`` for one point) the experience may lose
        on held-out data when only the kept units remain.
    :param steps: bisection steps after checking both ends of ``[0, 1]``.
    """

    max_drop: float
    steps: int = 7

    def __post_init__(self) -> None:
        if not (isinstance(self.max_drop, (int, float)) and 0 <= self.max_drop < 1):
            raise ValueError(f"max_drop must be an accuracy fraction in [0, 1), got {self.max_drop!r}.")
        if not (isinstance(self.steps, int) and self.steps >= 0):
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}.")

    def __call__(self, accuracy: Callable[[float], float], full_accuracy: float) -> SearchResult:
        """Search with ``accuracy(mass)``, the held-out accuracy of the sub-network kept at ``mass``.

        Returns mass 0 when the units frozen before already suffice, and mass 1 (everything
        relevant) when even that misses the target.
        """
        target = full_accuracy - self.max_drop
        seen: dict[float, float] = {}

        def passes(mass: float) -> bool:
            seen[mass] = accuracy(mass)
            return seen[mass] >= target

        if passes(0.0):
            return SearchResult(0.0, seen[0.0], full_accuracy, len(seen))
        if passes(1.0):
            low, high = 0.0, 1.0
            for _ in range(self.steps):
                mid = (low + high) / 2
                low, high = (low, mid) if passes(mid) else (mid, high)
        else:
            high = 1.0
        return SearchResult(high, seen[high], full_accuracy, len(seen))


def fair_share(free: int, experiences_left: int | None, flex: float = 1.0) -> int:
    """Units one experience may newly freeze: an equal share of the ``free`` units among the
    experiences left, ``ceil(free / experiences_left)``, or with ``flex`` up to ``flex`` shares
    where each later experience still counts one, ``ceil(flex * free / (experiences_left - 1 + flex))``.

    ``experiences_left`` counts the current experience; ``None`` (stream length unknown) or ``1``
    allows all free units.
    """
    if experiences_left is None or experiences_left <= 1:
        return free
    return min(free, math.ceil(round(flex * free / (experiences_left - 1 + flex), 9)))
