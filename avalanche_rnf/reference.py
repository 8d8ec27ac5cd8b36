"""Class-balanced reference sets: the samples whose relevance decides what to freeze."""

from __future__ import annotations

import torch
from torch import Tensor


def check_reference_size(size: int | None, name: str = "reference_size") -> int | None:
    """``size`` if it is a positive number of samples or None (all of them); otherwise a ValueError naming ``name``."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ValueError(f"{name} must be a positive number of samples (or None for all of them), got {size!r}.")
    return size


def balanced_indices(targets: Tensor, size: int | None, generator: torch.Generator | None = None) -> Tensor:
    """Indices of a class-balanced random sample of ``size`` items (all of them if ``size`` is None or larger).

    Classes are drawn round-robin in random order, so every class gets ``size // n_classes``
    samples or one more, except classes that run out, whose share goes to the others.
    """
    targets = torch.as_tensor(targets).reshape(-1)
    n = targets.numel()
    if size is None or size >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=generator)
    shuffled = targets[perm]
    rank = torch.empty(n, dtype=torch.long)
    for c in shuffled.unique():
        where = (shuffled == c).nonzero().squeeze(1)
        rank[where] = torch.arange(where.numel())
    order = torch.sort(rank, stable=True).indices
    return perm[order[:size]].sort().values
