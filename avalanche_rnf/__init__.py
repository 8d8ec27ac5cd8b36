"""Relevance-based Neural Freezing (RNF) for the Avalanche continual-learning framework.

The public names below are imported when first used (PEP 562), so ``import avalanche_rnf`` (and
the ``rnf-bench`` command's start) does not import torch, zennit or Avalanche until a name needs
them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "RNF": "strategy",
    "RNFPlugin": "plugin",
    "ExplanationDriftPlugin": "drift",
    "heatmaps": "explain",
    "Capacity": "options",
    "Relevance": "options",
    "Retraining": "options",
    "TaskInference": "options",
    "Tolerance": "options",
    "KeepFree": "selection",
    "RelevanceMass": "selection",
    "SelectionRule": "selection",
    "TopFraction": "selection",
    "ClassReservoir": "reservoir",
    "FreezeState": "freezing",
    "UnitLayer": "layers",
    "UnsupportedModelError": "layers",
    "find_unit_layers": "layers",
    "TaskRecognizer": "recognition",
    "JointRecognizer": "pooled",
    "PooledRecognizer": "pooled",
    "UnitScores": "relevance",
    "make_composite": "relevance",
    "normalized_scores": "relevance",
    "unit_relevance": "relevance",
    "SearchResult": "tolerance",
    "ToleranceSearch": "tolerance",
    "fair_share": "tolerance",
    "TaskNorms": "task_norms",
    "using_task": "task_norms",
    "maybe_load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
}

__all__ = [
    "RNF",
    "Capacity",
    "ClassReservoir",
    "ExplanationDriftPlugin",
    "FreezeState",
    "JointRecognizer",
    "KeepFree",
    "PooledRecognizer",
    "RNFPlugin",
    "Relevance",
    "RelevanceMass",
    "Retraining",
    "SearchResult",
    "SelectionRule",
    "TaskInference",
    "TaskNorms",
    "TaskRecognizer",
    "Tolerance",
    "ToleranceSearch",
    "TopFraction",
    "UnitLayer",
    "UnitScores",
    "UnsupportedModelError",
    "fair_share",
    "heatmaps",
    "find_unit_layers",
    "make_composite",
    "maybe_load_checkpoint",
    "normalized_scores",
    "save_checkpoint",
    "unit_relevance",
    "using_task",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'avalanche_rnf' has no attribute {name!r}")
    value = getattr(import_module(f"avalanche_rnf.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from avalanche_rnf.checkpoint import maybe_load_checkpoint, save_checkpoint
    from avalanche_rnf.drift import ExplanationDriftPlugin
    from avalanche_rnf.explain import heatmaps
    from avalanche_rnf.freezing import FreezeState
    from avalanche_rnf.layers import UnitLayer, UnsupportedModelError, find_unit_layers
    from avalanche_rnf.options import Capacity, Relevance, Retraining, TaskInference, Tolerance
    from avalanche_rnf.plugin import RNFPlugin
    from avalanche_rnf.pooled import JointRecognizer, PooledRecognizer
    from avalanche_rnf.recognition import TaskRecognizer
    from avalanche_rnf.relevance import UnitScores, make_composite, normalized_scores, unit_relevance
    from avalanche_rnf.reservoir import ClassReservoir
    from avalanche_rnf.selection import KeepFree, RelevanceMass, SelectionRule, TopFraction
    from avalanche_rnf.strategy import RNF
    from avalanche_rnf.task_norms import TaskNorms, using_task
    from avalanche_rnf.tolerance import SearchResult, ToleranceSearch, fair_share
