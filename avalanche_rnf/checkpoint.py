"""Checkpoint and resume a strategy with Avalanche's own mechanism, made to work.

Avalanche 0.6's ``save_checkpoint`` pickles the whole strategy with dill, which fails on
``torch.optim`` optimizers unless dill pickles classes by reference. These wrappers set that
for the duration of the call and write the file atomically, so a crash mid-save never leaves
a truncated checkpoint behind.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Collection, Iterator, TypeVar

import dill
from avalanche.checkpointing import maybe_load_checkpoint as _avalanche_load
from avalanche.checkpointing import save_checkpoint as _avalanche_save

T = TypeVar("T")


@contextmanager
def _dill_by_reference() -> Iterator[None]:
    previous = dill.settings["byref"]
    dill.settings["byref"] = True
    try:
        with warnings.catch_warnings():
            # by reference, dill reports each class it cannot find by module path; the pickle is still complete
            warnings.filterwarnings("ignore", category=dill.PicklingWarning)
            yield
    finally:
        dill.settings["byref"] = previous


def save_checkpoint(strategy: Any, path: str | os.PathLike, exclude: Collection[str] | None = None) -> None:
    """Save ``strategy`` (model, optimizer, plugins including RNF, RNG states) to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with _dill_by_reference():
        _avalanche_save(strategy, tmp, exclude=exclude)
    os.replace(tmp, path)


def maybe_load_checkpoint(strategy: T, path: str | os.PathLike, map_location: Any = None) -> tuple[T, int]:
    """Restore ``strategy`` from ``path`` if it exists; return it and the index of the next experience."""
    with _dill_by_reference():
        return _avalanche_load(strategy, str(path), map_location=map_location)
