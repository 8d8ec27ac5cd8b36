"""The benchmark streams the harness runs on, built from Avalanche's classic benchmarks.

Scenarios (van de Ven et al.'s three types):

- ``task``: each experience has its own task label and class ids from 0; multi-head model.
- ``class``: no task labels, one head over all the benchmark's classes.
- ``domain``: no task labels, one head shared by all experiences (class ids from 0 in each
  split experience; PermutedMNIST is domain-incremental by nature).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from avalanche_rnf import glue
from avalanche_rnf.bench.data import FASHION_MNIST_FILES, MNIST_FILES, data_root
from avalanche_rnf.bench.imagefolder import cifar10_tensors, imagefolder_tensors, split_tensors, train_augment
from avalanche_rnf.bench.split_digits import SplitDigits

SCENARIOS = ("task", "class", "domain")
Normalization = tuple[tuple[float, ...], tuple[float, ...]]
"""Per-channel mean and standard deviation that inputs in [0, 1] were normalised with."""
MNIST_STATS: Normalization = ((0.1307,), (0.3081,))
"""What Avalanche's SplitMNIST and PermutedMNIST normalise with by default."""
FASHION_MNIST_STATS: Normalization = ((0.2860,), (0.3530,))
"""What Avalanche's SplitFMNIST normalises with by default."""


@dataclass(frozen=True)
class BenchmarkInfo:
    """What a benchmark is and which scenarios and model family it supports."""

    name: str
    description: str
    scenarios: tuple[str, ...]
    default_scenario: str
    n_experiences: int
    family: str  # "digits", "mnist" (MLP on 28x28) or "image" (CNN on RGB images)

    @property
    def mirrors_images(self) -> bool:
        """Whether training flips images horizontally at random (the image family's augmentation)."""
        return self.family == "image" and glue.mirrors_images(train_augment(32))


BENCHMARKS: dict[str, BenchmarkInfo] = {
    b.name: b
    for b in (
        BenchmarkInfo("split_digits", "scikit-learn's 8x8 digits, 5 experiences of 2 classes (no download)",
                      SCENARIOS, "task", 5, "digits"),
        BenchmarkInfo("split_mnist", "MNIST, 5 experiences of 2 classes", SCENARIOS, "task", 5, "mnist"),
        BenchmarkInfo("permuted_mnist", "MNIST under 10 fixed pixel permutations, 10 classes each",
                      ("domain", "task"), "domain", 10, "mnist"),
        BenchmarkInfo("split_fmnist", "Fashion-MNIST, 5 experiences of 2 classes", SCENARIOS, "task", 5, "mnist"),
        BenchmarkInfo("split_cifar10", "CIFAR-10, 5 experiences of 2 classes", SCENARIOS, "task", 5, "image"),
        BenchmarkInfo("imagefolder", "your ImageFolder data (ROOT/train/<class>, ROOT/test/<class>), "
                      "split into class-incremental experiences", SCENARIOS, "class", 5, "image"),
    )
}


@dataclass
class Stream:
    """A built benchmark with what the model needs to know about it."""

    info: BenchmarkInfo
    scenario: str
    benchmark: Any
    n_experiences: int
    n_outputs: int  # width of the single head, or of each task's head
    input_shape: tuple[int, ...]
    #: per-channel mean and std the inputs were normalised with (pixels in [0, 1] before)
    normalization: Normalization = ((0.0,), (1.0,))

    @property
    def multi_head(self) -> bool:
        return self.scenario == "task"


def build_stream(
    name: str,
    scenario: str | None = None,
    *,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    n_experiences: int | None = None,
    image_size: int = 32,
) -> Stream:
    """Build benchmark ``name`` in ``scenario`` with class order and permutations drawn from ``seed``.

    ``root`` is the data root (``--data-root`` or ``$RNF_DATA_ROOT``); a missing dataset raises
    :class:`avalanche_rnf.bench.data.DataNotFoundError` naming the directory and the files expected.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    info = BENCHMARKS[name]
    scenario = scenario or info.default_scenario
    if scenario not in info.scenarios:
        raise ValueError(f"{name} supports the scenarios {', '.join(info.scenarios)}, not {scenario!r}")
    n_exp = n_experiences or info.n_experiences
    task = scenario == "task"
    from_zero = scenario in ("task", "domain")
    split: dict[str, Any] = dict(return_task_id=task, seed=seed, class_ids_from_zero_in_each_exp=from_zero)

    if name == "split_digits":
        bench = SplitDigits(n_exp, return_task_id=task, class_ids_from_zero_in_each_exp=from_zero, seed=seed)
        return _stream(info, scenario, bench, n_exp, 10, (64,))
    if name in ("split_mnist", "split_fmnist"):
        from avalanche.benchmarks.classic import SplitFMNIST, SplitMNIST

        files, factory = (MNIST_FILES, SplitMNIST) if name == "split_mnist" else (FASHION_MNIST_FILES, SplitFMNIST)
        bench = factory(n_exp, dataset_root=data_root(root, files), **split)
        stats: Normalization = MNIST_STATS if name == "split_mnist" else FASHION_MNIST_STATS
        return _stream(info, scenario, bench, n_exp, 10, (1, 28, 28), stats)
    if name == "permuted_mnist":
        from avalanche.benchmarks.classic import PermutedMNIST

        bench = PermutedMNIST(n_exp, return_task_id=task, seed=seed, dataset_root=data_root(root, MNIST_FILES))
        return _stream(info, scenario, bench, n_exp, 10, (1, 28, 28), MNIST_STATS, split_classes=False)
    if name == "split_cifar10":
        train, test, mean, std = cifar10_tensors(root)
    else:
        train, test, mean, std = imagefolder_tensors(root, image_size=image_size)
    n_classes = len(train.classes)
    if not 0 < n_exp <= n_classes:
        raise ValueError(f"{name}: {n_classes} classes cannot be split into {n_exp} experiences")
    # Classes that do not divide evenly go one each to the first experiences.
    per_exp = {i: n_classes // n_exp + 1 for i in range(n_classes % n_exp)}
    bench = split_tensors(train, test, n_exp, mean=mean, std=std, per_exp_classes=per_exp or None, **split)
    stats = (tuple(float(m) for m in mean), tuple(float(s) for s in std))
    return _stream(info, scenario, bench, n_exp, n_classes, tuple(train.tensors[0].shape[1:]), stats)


def _stream(info, scenario, bench, n_exp, n_classes, input_shape, stats=((0.0,), (1.0,)), split_classes=True) -> Stream:
    per_exp = -(-n_classes // n_exp) if split_classes else n_classes  # the widest experience
    n_outputs = n_classes if scenario == "class" else per_exp
    return Stream(info, scenario, bench, n_exp, n_outputs, input_shape, stats)


def with_validation(stream: Stream, fraction: float, seed: int) -> Stream:
    """The same stream, each experience trained on ``1 - fraction`` of its training data (stratified by
    class) and evaluated on the held-out rest instead of the test set. Used to tune hyperparameters."""
    from avalanche.benchmarks.scenarios.deprecated.generators import dataset_benchmark
    from sklearn.model_selection import train_test_split

    train, valid = [], []
    for exp in stream.benchmark.train_stream:
        targets = list(exp.dataset.targets)
        keep, held = train_test_split(list(range(len(targets))), test_size=fraction, stratify=targets,
                                      random_state=seed)
        train.append(exp.dataset.subset(keep))
        valid.append(exp.dataset.subset(held).eval())
    split = dataset_benchmark(train, valid)
    return dataclasses.replace(stream, benchmark=split)
