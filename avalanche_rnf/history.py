"""What RNF chose after each experience: unit scores, frozen fractions, search results, timings.

Kept in the plugin's state and published as metrics (``RNF/...``) through Avalanche's evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from avalanche_rnf.tolerance import SearchResult


@dataclass
class History:
    """Per experience, in the order the experiences were trained."""

    raw_scores: list[dict[str, Tensor]] = field(default_factory=list)
    """Mean relevance per unit over the reference set, per layer."""
    scores: list[dict[str, Tensor]] = field(default_factory=list)
    """The scores the selection rule saw (per layer, summing to 1)."""
    frozen_fractions: list[dict[str, float]] = field(default_factory=list)
    """Per layer, the fraction of its units frozen after the experience."""
    relevance_seconds: list[float] = field(default_factory=list)
    searches: list[SearchResult] = field(default_factory=list)
    """With a tolerance: the mass chosen and the held-out accuracies."""

    def record(self, relevance: dict[str, Tensor], normalized: dict[str, Tensor], seconds: float,
               fractions: dict[str, float]) -> None:
        self.raw_scores.append({k: v.cpu() for k, v in relevance.items()})
        self.scores.append({k: v.cpu() for k, v in normalized.items()})
        self.relevance_seconds.append(seconds)
        self.frozen_fractions.append(fractions)

    def retrained(self, accuracy: float) -> None:
        """The last search's kept sub-network scored ``accuracy`` on held-out data after retraining."""
        self.searches[-1] = replace(self.searches[-1], retrained_accuracy=accuracy)

    def metric_values(self, overall_fraction: float, searched: bool) -> dict[str, float]:
        """The latest experience's metrics, by name."""
        values = {f"RNF/FrozenFraction/{name}": fraction for name, fraction in self.frozen_fractions[-1].items()}
        values["RNF/FrozenFraction"] = overall_fraction
        values["RNF/RelevanceTime_s"] = self.relevance_seconds[-1]
        if searched and self.searches:
            result = self.searches[-1]
            values.update({"RNF/SearchMass": result.mass, "RNF/HoldoutAcc_full": result.full_accuracy,
                           "RNF/HoldoutAcc_kept": result.accuracy})
            if result.retrained_accuracy is not None:
                values["RNF/HoldoutAcc_retrained"] = result.retrained_accuracy
        return values

    def state_dict(self) -> dict[str, Any]:
        return {
            "raw_scores": [dict(s) for s in self.raw_scores],
            "scores": [dict(s) for s in self.scores],
            "frozen_fractions": [dict(f) for f in self.frozen_fractions],
            "relevance_seconds": list(self.relevance_seconds),
            "searches": [vars(r) for r in self.searches],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.raw_scores = [dict(s) for s in state["raw_scores"]]
        self.scores = [dict(s) for s in state["scores"]]
        self.frozen_fractions = [dict(f) for f in state["frozen_fractions"]]
        self.relevance_seconds = list(state["relevance_seconds"])
        self.searches = [SearchResult(**r) for r in state.get("searches", [])]
