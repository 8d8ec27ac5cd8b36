"""Where datasets live: a data root from ``--data-root`` or ``$RNF_DATA_ROOT``, checked up front."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

ENV_VAR = "RNF_DATA_ROOT"

MNIST_FILES = tuple(
    f"MNIST/raw/{n}"
    for n in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
)
FASHION_MNIST_FILES = tuple(f.replace("MNIST/", "FashionMNIST/") for f in MNIST_FILES)


class DataNotFoundError(FileNotFoundError):
    """The data root is not set, or lacks files a benchmark needs."""


def data_root(root: str | os.PathLike | None = None, expected: Sequence[str] = ()) -> Path:
    """Return the data root (argument first, then ``$RNF_DATA_ROOT``) after checking ``expected`` files exist.

    The root must be writable: torchvision extracts the ``.gz`` archives next to themselves.
    """
    chosen = root if root is not None else os.environ.get(ENV_VAR)
    wanted = "\n  ".join(expected) or "(the benchmark's files)"
    if not chosen:
        raise DataNotFoundError(
            f"No data root given. Pass --data-root DIR or set {ENV_VAR}=DIR, where DIR (writable) holds:\n  {wanted}"
        )
    path = Path(chosen).expanduser()
    missing = [f for f in expected if not (path / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"Looked in {path.resolve()} for the dataset files and did not find:\n  "
            + "\n  ".join(missing)
            + f"\nPut the original archives there (a writable copy: torchvision extracts next to them), "
            f"or point --data-root / {ENV_VAR} at the directory that has them."
        )
    return path
