"""Relevance-based Neural Freezing (RNF) for the Avalanche continual-learning framework."""

from avalanche_rnf.checkpoint import maybe_load_checkpoint, save_checkpoint
from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.layers import UnitLayer, UnsupportedModelError, find_unit_layers
from avalanche_rnf.options import Capacity, Relevance, Retraining, TaskInference, Tolerance
from avalanche_rnf.plugin import RNFPlugin
from avalanche_rnf.recognition import TaskRecognizer
from avalanche_rnf.relevance import UnitScores, make_composite, normalized_scores, unit_relevance
from avalanche_rnf.reservoir import ClassReservoir
from avalanche_rnf.selection import KeepFree, RelevanceMass, SelectionRule, TopFraction
from avalanche_rnf.strategy import RNF
from avalanche_rnf.tolerance import SearchResult, ToleranceSearch, fair_share

__version__ = "0.1.0"

__all__ = [
    "RNF",
    "Capacity",
    "ClassReservoir",
    "FreezeState",
    "KeepFree",
    "RNFPlugin",
    "Relevance",
    "RelevanceMass",
    "Retraining",
    "SearchResult",
    "SelectionRule",
    "ToleranceSearch",
    "TaskInference",
    "TaskRecognizer",
    "Tolerance",
    "TopFraction",
    "UnitLayer",
    "UnitScores",
    "UnsupportedModelError",
    "fair_share",
    "find_unit_layers",
    "make_composite",
    "maybe_load_checkpoint",
    "normalized_scores",
    "save_checkpoint",
    "unit_relevance",
]
