"""Benchmarks comparing RNF with Avalanche's continual-learning strategies."""

import warnings

# Avalanche imports qpsolvers for GEM, which warns on every import when no QP solver is installed.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
