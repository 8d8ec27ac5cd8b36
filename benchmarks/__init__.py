"""Benchmarks comparing RNF with Avalanche's continual-learning strategies."""
