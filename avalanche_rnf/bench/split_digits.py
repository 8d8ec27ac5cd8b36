"""SplitDigits: scikit-learn's bundled 8x8 digits split into class-incremental experiences.

Needs no download, so it serves fast tests and the quick demo. 1797 images, 25 % held out
(stratified) as the test set, pixel values scaled to [0, 1].
"""

from __future__ import annotations

import torch
from avalanche.benchmarks import nc_benchmark
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset


def digits_datasets(image: bool = False, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Train and test sets of the digits, as flat 64-vectors or (with ``image``) 1x8x8 images."""
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    if image:
        x = x.view(-1, 1, 8, 8)
    y = torch.tensor(data.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        torch.arange(len(y)).numpy(), test_size=0.25, stratify=y.numpy(), random_state=seed
    )
    return TensorDataset(x[train_idx], y[train_idx]), TensorDataset(x[test_idx], y[test_idx])


def SplitDigits(
    n_experiences: int = 5,
    *,
    return_task_id: bool = True,
    class_ids_from_zero_in_each_exp: bool | None = None,
    image: bool = False,
    seed: int = 0,
):
    """Avalanche benchmark of the digits split by class, like ``avalanche.benchmarks.classic.SplitMNIST``.

    With ``return_task_id`` (task-incremental) each experience has its own task label and, by
    default, class ids starting from 0 in each experience (for a multi-head model).
    """
    if class_ids_from_zero_in_each_exp is None:
        class_ids_from_zero_in_each_exp = return_task_id
    train, test = digits_datasets(image=image, seed=seed)
    return nc_benchmark(
        train,
        test,
        n_experiences,
        task_labels=return_task_id,
        seed=seed,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp,
    )
