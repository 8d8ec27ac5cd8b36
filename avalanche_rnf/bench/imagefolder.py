"""Image data held in memory as uint8 tensors: CIFAR-10 (torchvision or ImageFolder copy) and users' ImageFolder trees.

Decoding tens of thousands of JPEGs takes a while, so a decoded tree is cached next to it
(``<tree>-<split>.rnf-cache-<size>.pt``) and reused while its files (paths and modification
times) are unchanged; a read-only data root only loses the cache.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import warnings
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from torchvision import transforms
from torchvision.datasets import ImageFolder

from avalanche_rnf.bench.data import DataNotFoundError, data_root

CIFAR_TREE = "cifar10-jpg"


class LabelledTensors(TensorDataset):
    """Images (uint8, N x C x H x W) and labels, with ``targets`` and ``classes`` like torchvision datasets."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]):
        super().__init__(images, labels)
        self.targets = labels.tolist()
        self.classes = list(classes)


def cifar10_tensors(root: str | os.PathLike | None):
    """CIFAR-10 train and test sets with channel mean and std.

    Looks under the data root for torchvision's ``cifar-10-batches-py``, then for an ImageFolder
    copy ``cifar10-jpg/{train,test}/<class>/*.jpg``, then for ``cifar10-jpg.tar.gz`` (extracted
    there on first use).
    """
    path = data_root(root)
    if (path / "cifar-10-batches-py").is_dir():
        from torchvision.datasets import CIFAR10

        sets = []
        for train in (True, False):
            ds = CIFAR10(str(path), train=train, download=False)
            sets.append(LabelledTensors(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(),
                                        torch.tensor(ds.targets), ds.classes))
        return (*sets, *channel_stats(sets[0].tensors[0]))
    tree = path / CIFAR_TREE
    archive = path / f"{CIFAR_TREE}.tar.gz"
    if not (tree / "train").is_dir() and archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(path, filter="data")
    if not (tree / "train").is_dir():
        raise DataNotFoundError(
            f"Looked in {path.resolve()} for CIFAR-10 and found none of:\n"
            "  cifar-10-batches-py/            (torchvision's CIFAR-10)\n"
            f"  {CIFAR_TREE}/train/<class>/*.jpg and {CIFAR_TREE}/test/<class>/*.jpg  (ImageFolder copy)\n"
            f"  {CIFAR_TREE}.tar.gz            (that copy, archived)\n"
            "Put one of them there, or point --data-root / RNF_DATA_ROOT at the directory that has it."
        )
    return imagefolder_tensors(tree, image_size=32)


def imagefolder_tensors(root: str | os.PathLike | None, image_size: int = 32):
    """Train and test sets of an ImageFolder tree ``ROOT/{train,test}/<class>/<image>``, resized to ``image_size``."""
    path = data_root(root)
    missing = [s for s in ("train", "test") if not (path / s).is_dir()]
    if missing:
        raise DataNotFoundError(
            f"Looked in {path.resolve()} for an ImageFolder dataset and did not find "
            + " and ".join(f"{s}/" for s in missing)
            + ".\nExpected ROOT/train/<class>/<image> and ROOT/test/<class>/<image> (same class folders); "
            "pass ROOT as --data-root or RNF_DATA_ROOT."
        )
    train = _load_tree(path / "train", image_size)
    test = _load_tree(path / "test", image_size)
    if train.classes != test.classes:
        raise ValueError(f"{path}: train and test have different class folders: {train.classes} vs {test.classes}")
    return (train, test, *channel_stats(train.tensors[0]))


def _load_tree(folder: Path, size: int) -> LabelledTensors:
    folder_set = ImageFolder(str(folder))
    files = [p for p, _ in folder_set.samples]
    stamp = hashlib.sha1("\n".join(f"{p}:{os.path.getmtime(p)}" for p in files).encode()).hexdigest()
    cache = folder.parent / f"{folder.parent.name}-{folder.name}.rnf-cache-{size}.pt"
    if cache.is_file():
        stored = torch.load(cache, weights_only=True)
        if stored.get("stamp") == stamp and stored.get("classes") == folder_set.classes:
            return LabelledTensors(stored["images"], stored["labels"], folder_set.classes)
    resize = transforms.Compose([transforms.Resize((size, size)), transforms.PILToTensor()])
    images = torch.stack([resize(folder_set.loader(p).convert("RGB")) for p in files])
    labels = torch.tensor(folder_set.targets)
    tmp = cache.with_suffix(".tmp")
    try:
        torch.save({"images": images, "labels": labels, "stamp": stamp, "classes": folder_set.classes}, tmp)
        os.replace(tmp, cache)
    except OSError as error:
        warnings.warn(f"could not cache the decoded images at {cache} ({error}); they are decoded again next time",
                      stacklevel=2)
    return LabelledTensors(images, labels, folder_set.classes)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images scaled to [0, 1] (1 for a constant channel)."""
    x = images.float().div_(255).transpose(0, 1).flatten(1)
    std = x.std(1)
    return tuple(x.mean(1).tolist()), tuple(torch.where(std > 0, std, torch.ones_like(std)).tolist())


def train_augment(size: int) -> list:
    """The image benchmarks' training augmentation, CIFAR-style: a random crop (padding 4) and flip."""
    return [transforms.RandomCrop(size, padding=4), transforms.RandomHorizontalFlip()]


def split_tensors(train: LabelledTensors, test: LabelledTensors, n_experiences: int, *, mean, std,
                  return_task_id: bool, seed: int, class_ids_from_zero_in_each_exp: bool,
                  per_exp_classes: dict[int, int] | None = None):
    """Class-incremental Avalanche benchmark over in-memory images, with CIFAR-style crop and flip for training."""
    from avalanche.benchmarks import nc_benchmark

    size = train.tensors[0].shape[-1]
    to_float = [transforms.ConvertImageDtype(torch.float32), transforms.Normalize(mean, std)]
    augment = train_augment(size)
    return nc_benchmark(
        train, test, n_experiences, task_labels=return_task_id, seed=seed,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp, per_exp_classes=per_exp_classes,
        train_transform=transforms.Compose(augment + to_float), eval_transform=transforms.Compose(to_float),
    )
