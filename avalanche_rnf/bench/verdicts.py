"""Verdicts on targets, one rule for every generated table (``docs/protocol.md``).

A target is **met** where the measured mean is beyond its bar by more than the seeds' spread,
**missed** where it falls short of the bar by more than that, and **tied** within it: a margin
inside the seeds' spread says nothing either way. The spread of a comparison of two strategies is
the larger of their standard deviations over seeds; of a fixed bar, the measured value's own; with
one seed (or one side-by-side pair) it is 0, and the verdict is the plain comparison.
"""

from __future__ import annotations

import statistics
from typing import Callable, Iterable


def spread(values: Iterable[float]) -> float:
    """Standard deviation over seeds (``0.0`` for fewer than two values)."""
    values = list(values)
    return statistics.stdev(values) if len(values) > 1 else 0.0


def gap_and_spread(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of ``a`` minus mean of ``b``, and the larger of their standard deviations."""
    return statistics.mean(a) - statistics.mean(b), max(spread(a), spread(b))


def outcome(gap: float, spread: float, margin: float = 0.0) -> str:
    """``"met"`` where ``gap`` exceeds ``margin`` by more than the seeds' ``spread``, ``"missed"`` where it
    falls short of it by more than that, ``"tied"`` within it."""
    return "met" if gap - margin > spread else "missed" if margin - gap > spread else "tied"


def shown(word: str) -> str:
    """An :func:`outcome` as the tables write it: ``met`` in bold, ``tied`` and ``missed`` plain."""
    return "**met**" if word == "met" else word


def judged(gap: float, spread: float, show: Callable[[float], str] = "{:+.3f}".format) -> str:
    """The verdict on a target that ``gap`` clears (positive: beyond the bar, in the target's direction),
    with the gap and the spread written by ``show`` (e.g. ``**met**: +0.012 (spread ±0.003)``)."""
    text = show(gap) + (f" (spread ±{show(spread).lstrip('+')})" if spread > 0 else "")
    return f"{shown(outcome(gap, spread))}: {text}"
