"""Benchmarks comparing RNF with Avalanche's continual-learning strategies.

``rnf-bench`` (:mod:`avalanche_rnf.bench.cli`) routes the dependencies' warnings to its run directory's
log while it runs; importing this package changes no warning filter.
"""
