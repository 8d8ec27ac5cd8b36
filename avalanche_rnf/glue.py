"""What the plugin needs to know about Avalanche: heads, datasets, streams, metrics.

Together with :mod:`avalanche_rnf.plugin` the only module that imports Avalanche; the algorithm's
parts receive what they need from here as tensors, names and callables.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from avalanche.benchmarks.scenarios.online import OnlineCLExperience
from avalanche.evaluation.metric_results import MetricValue
from avalanche.models import IncrementalClassifier, MultiHeadClassifier, MultiTaskModule
from avalanche.models.utils import avalanche_forward
from torch import Tensor, nn
from torch.utils.data import DataLoader

from avalanche_rnf.reference import balanced_indices
from avalanche_rnf.reservoir import OnlineData

Batch = tuple[Tensor, Tensor, Tensor]
forward = avalanche_forward
"""``forward(model, x, task_labels)``: the model's outputs, for single- and multi-task models."""


def heads(model: nn.Module, tasks: Any = None) -> set[str]:
    """Linear layers inside the ``MultiHeadClassifier`` heads of ``tasks`` (``None``: of every task)."""
    found: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, MultiHeadClassifier):
            for task in tasks if tasks is not None else list(module.classifiers.keys()):
                prefix = f"{name}.classifiers.{task}".lstrip(".")
                head = module.classifiers[str(task)]
                found |= {f"{prefix}.{sub}".rstrip(".") for sub, m in head.named_modules() if isinstance(m, nn.Linear)}
    return found


def example(experience: Any, device: Any = "cpu") -> tuple[Tensor, Tensor]:
    """The experience's first input (eval transforms, global RNG untouched) and its task label, twice
    (models that squeeze their features lose a batch of one): what RNF traces the model's data flow with."""
    dataset = experience.dataset
    dataset = dataset.eval() if hasattr(dataset, "eval") else dataset
    with torch.random.fork_rng(devices=[]):
        x, _, t = dataset[0][:3]
    return torch.stack([torch.as_tensor(x)] * 2).to(device), torch.as_tensor([int(t)] * 2).to(device)


def is_online(experience: Any) -> bool:
    """A sub-experience of an online stream (``split_online_stream``)."""
    return isinstance(experience, OnlineCLExperience)


def evaluates_while_training(strategy: Any) -> bool:
    """Whether ``strategy`` evaluates during an experience (Avalanche's ``eval_every`` > 0)."""
    return (getattr(strategy, "eval_every", -1) or 0) > 0


def origin(experience: Any) -> Any:
    """The experience whose task is being learned: for a sub-experience of an online stream, the
    experience it was cut from; RNF acts at its end, so the stream must tell where that is."""
    if not is_online(experience):
        return experience
    if not getattr(experience, "access_task_boundaries", False):
        raise ValueError(
            "RNF chooses and freezes units when a task ends, but this online stream hides its task boundaries. "
            "Make it with split_online_stream(..., access_task_boundaries=True)."
        )
    return experience.origin_experience


def task_labels(experience: Any) -> list[int]:
    """The task labels of a training experience (of its origin, in an online stream)."""
    return list(origin(experience).task_labels)


def call(model: nn.Module, tensors: dict[str, Tensor], batch: tuple[Tensor, ...]) -> Tensor:
    """Logits of ``model`` on ``batch = (x, y, task_labels)`` with ``tensors`` swapped in."""
    x, _, t = batch[:3]
    return torch.func.functional_call(model, tensors, (x, t) if isinstance(model, MultiTaskModule) else (x,))


def full_stream(experience: Any) -> Any:
    """The benchmark stream the experience comes from (not a slice of it); ``None`` where unknown
    or lazy (without a length)."""
    try:
        stream = origin(experience).origin_stream
    except Exception:  # hand-made experiences have no origin stream
        return None
    benchmark = getattr(stream, "benchmark", None)
    full = getattr(benchmark, f"{getattr(stream, 'name', '')}_stream", None) if benchmark is not None else None
    stream = full if full is not None else stream
    try:
        len(stream)
    except TypeError:  # lazy streams have no length
        return None
    return stream


def stream_length(experience: Any) -> int | None:
    """Length of the benchmark stream the experience comes from (not of a slice of it), if known."""
    stream = full_stream(experience)
    return None if stream is None else len(stream)


def stream_classes(experience: Any) -> list[set[int]] | None:
    """The classes of each experience of the stream ``experience`` comes from, if known."""
    stream = full_stream(experience)
    if stream is None:
        return None
    return [set(map(int, getattr(e, "classes_in_this_experience", None) or e.dataset.targets.uniques))
            for e in stream]


def multi_head(model: nn.Module) -> bool:
    """The model reads task labels (a ``MultiTaskModule``, e.g. with ``MultiHeadClassifier`` heads)."""
    return any(isinstance(module, (MultiHeadClassifier, MultiTaskModule)) for module in model.modules())


def reads_task_labels(model: nn.Module) -> bool:
    """Avalanche calls the model as ``model(x, task_labels)`` (a ``MultiTaskModule``)."""
    return isinstance(model, MultiTaskModule)


def incremental_head(model: nn.Module) -> bool:
    """The model's head grows with new classes (an ``IncrementalClassifier``)."""
    return any(isinstance(module, IncrementalClassifier) for module in model.modules())


def experiences_left(experience: Any, n_experiences: int | None) -> int | None:
    """Experiences of the stream from this one to its end (``None``: the length is unknown)."""
    total = n_experiences if n_experiences is not None else stream_length(experience)
    return None if total is None else total - experience.current_experience


def sample_seed(seed: int, experience: Any) -> int:
    """The seed of an experience's samples (reference set, held-out split)."""
    return seed * 1_000_003 + experience.current_experience


def mini_batch_sizes(strategy: Any) -> tuple[int, int]:
    """The strategy's training and evaluation mini-batch sizes (``0`` where it has none)."""
    return getattr(strategy, "train_mb_size", 0) or 0, getattr(strategy, "eval_mb_size", 0) or 0


def batches(
    dataset: Any, experience: Any, size: int | None, *, seed: int, batch_size: int, device: Any
) -> Iterator[Batch]:
    """Batches of a class-balanced sample of ``size`` items of ``dataset`` (eval transforms;
    ``None``: the experience's dataset)."""
    dataset = (dataset if dataset is not None else experience.dataset).eval()
    if size is not None:
        generator = torch.Generator().manual_seed(sample_seed(seed, experience))
        dataset = dataset.subset(balanced_indices(torch.as_tensor(list(dataset.targets)), size, generator).tolist())
    # a generator of its own: a loader draws its base seed from the global RNG otherwise, which would
    # shift the strategy's later shuffles away from those of the same run without RNF
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collate_fn,
                        generator=torch.Generator())
    for x, y, t, *_ in loader:
        yield x.to(device), y.to(device), t.to(device)


def check_not_empty(experience: Any) -> None:
    if len(experience.dataset) == 0:
        raise ValueError(
            f"Training experience {experience.current_experience} has no samples. RNF needs the "
            "experience's training data to find the units that matter for it; remove empty "
            "experiences from the stream."
        )


def mirrors_images(dataset: Any, limit: int = 10_000) -> bool:
    """Whether ``dataset``'s training transforms flip images horizontally (a transform whose class
    name holds ``HorizontalFlip``, as torchvision's ``RandomHorizontalFlip``), searched through Avalanche's
    nested datasets and transform groups and through composed transforms; ``False`` where none is found."""
    seen: set[int] = set()
    todo: list[Any] = [dataset]
    while todo and len(seen) < limit:
        item = todo.pop()
        if item is None or id(item) in seen or isinstance(item, (str, bytes, Tensor)):
            continue
        seen.add(id(item))
        if "HorizontalFlip" in type(item).__name__:
            return True
        if isinstance(item, (list, tuple)):
            todo.extend(item)
            continue
        groups = getattr(item, "transform_groups", None)  # Avalanche's TransformGroups: the training group only
        if isinstance(groups, dict):
            todo.append(groups.get("train"))
        todo.extend(getattr(item, name, None) for name in _TRANSFORM_HOLDERS)
    return False


_TRANSFORM_HOLDERS = ("_flat_data", "_datasets", "_transform_groups", "_frozen_transform_groups", "transforms",
                      "transform", "dataset")
"""Attributes through which datasets and composed transforms hold their parts (Avalanche, torchvision)."""


def split_holdout(dataset: Any, experience: Any, fraction: float, seed: int,
                  count: int | None = None) -> tuple[Any, Any]:
    """``(train, held_out)`` parts of an experience's adapted training dataset; ``count``: how many
    samples to hold out (``None``: ``fraction`` of them, at least one; ``0``: none, ``held_out`` is ``None``)."""
    if count == 0:
        return dataset, None
    generator = torch.Generator().manual_seed(sample_seed(seed, experience))
    order = torch.randperm(len(dataset), generator=generator).tolist()
    n_holdout = max(1, round(fraction * len(dataset))) if count is None else count
    if n_holdout >= len(dataset):
        raise ValueError(
            f"Experience {experience.current_experience} has {len(dataset)} training samples: too few "
            f"to hold out {fraction:.0%} for the max_drop search and train on the rest."
        )
    return dataset.subset(sorted(order[n_holdout:])), dataset.subset(sorted(order[:n_holdout]))


class ExperienceData:
    """An experience's training data as RNF reads it: the part trained on, the part held out for
    the tolerance search (``holdout``: its fraction; ``None``: none), and class-balanced samples."""

    def __init__(self, dataset: Any, experience: Any, *, holdout: float | None, seed: int, batch_size: int,
                 device: Any, held: int | None = None) -> None:
        self.experience, self.seed, self.batch_size, self.device = experience, seed, batch_size, device
        self.train, self.held_out_part = dataset, None
        if holdout is not None:
            self.train, self.held_out_part = split_holdout(dataset, experience, holdout, seed, held)
        self._held_out: list[Batch] | None = None

    def batches(self, size: int | None, dataset: Any = None) -> Iterator[Batch]:
        """Batches of a class-balanced sample of ``size`` training items (``None``: all of them)."""
        return batches(self.train if dataset is None else dataset, self.experience, size, seed=self.seed,
                       batch_size=self.batch_size, device=self.device)

    def held_out(self) -> list[Batch]:
        """The held-out part's batches, loaded once: the search, the retrained accuracy and the
        recogniser's calibration all read them."""
        if self._held_out is None:
            self._held_out = list(self.batches(None, self.held_out_part))
        return self._held_out


def stream_past(online: OnlineData | None, strategy: Any, holdout: float | None, *, capacity: int, seed: int,
                batch_size: int) -> tuple[OnlineData, Any]:
    """Online: offer a sub-experience's samples to its origin experience's reservoirs (made on its
    first sub-experience); returns them and the part of the sub-experience to train on."""
    experience, device = strategy.experience, strategy.device
    if online is None:
        held_capacity = max(1, round(capacity * holdout)) if holdout else 0
        online = OnlineData(capacity, held_capacity, seed=seed, sample_seed=sample_seed(seed, origin(experience)),
                            batch_size=batch_size, device=device)
    online.device = device
    online.parts += 1
    held = online.hold_out(len(strategy.adapted_dataset), holdout) if holdout else None
    part = ExperienceData(strategy.adapted_dataset, experience, holdout=holdout, seed=seed, batch_size=batch_size,
                          device=device, held=held)
    for reservoir, dataset in ((online.train, part.train), (online.held, part.held_out_part)):
        if reservoir is not None and dataset is not None:
            for x, y, t in part.batches(None, dataset):
                reservoir.add(x, y, t)
    return online, part.train


def ends_origin(experience: Any, parts: int) -> bool:
    """Whether an online sub-experience, the ``parts``-th of its origin experience, is the origin's last.
    Avalanche 0.6's ``split_online_stream`` marks none as the last where the origin's size is a multiple
    of the sub-experience size; its ``sub_stream_length`` still tells."""
    return bool(getattr(experience, "is_last_subexp", False)) or parts == getattr(experience, "sub_stream_length", -1)


def publish(strategy: Any, origin: Any, values: dict[str, float], x: int) -> None:
    """Publish metric values through the strategy's evaluator (if it has one)."""
    evaluator = getattr(strategy, "evaluator", None)
    if evaluator is not None:
        for name, value in values.items():
            evaluator.publish_metric_value(MetricValue(origin, name, value, x))


def stream_name(experience: Any) -> str:
    """``<name>_stream`` of the stream an evaluated experience comes from."""
    stream = getattr(getattr(experience, "origin_stream", None), "name", "eval")
    return stream if stream.endswith("_stream") else f"{stream}_stream"
