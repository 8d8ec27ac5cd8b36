"""Task recognition from the features each task's frozen sub-network computes.

With isolation (:mod:`avalanche_rnf.isolation`), the units kept after task ``k`` compute exactly
what they computed then, forever. What they feed into the next layer are task ``k``'s features:
:class:`~avalanche_rnf.taps.FeatureTap` records them at the inputs of chosen layers (each unit's
value, or for a conv channel the mean and standard deviation over its positions), and tells which
of them a task's kept units provide. Reading every layer,
not only the output layer's input, recognises more tasks (``avalanche_rnf/bench/recognizers.py``).
:class:`TaskRecognizer` keeps, per task, the mean of those features for each of the
task's classes and their pooled covariance, shrunk towards a scaled identity (linear discriminant
analysis): statistics, never inputs; with full shrinkage that is a nearest-class-mean rule, and
only the identity's scale is kept. The features can also be the model's input itself, which every
task shares (a :class:`~avalanche_rnf.taps.Tap` without source). An input's distance to task ``k`` is its smallest
Mahalanobis distance to one of task ``k``'s class means; since tasks have different numbers of
features, the distance is standardised by the mean and spread of the distances of the task's own
calibration samples. The recognised task is the one with the smallest standardised distance.
:func:`task_weighted_log_probs` instead weighs each class by the probability of its task, a
softmax of the scaled scores, so a confident classifier can overrule a close second task.
Optionally, the features first go through a power transform (Tukey's ladder, ``x ** power`` with
its sign kept), which makes skewed non-negative statistics closer to the Gaussians the fit assumes.
The features can also be averaged over views of an input (:data:`VIEWS`, e.g. its mirror image
for a model trained on mirrored images), which removes what the view changes from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence, Union

import torch
from torch import Tensor

SHRINKAGE = 0.01
"""Weight of the scaled identity in the shrunk covariance (ill-conditioned with few samples)."""

POWER = 1.0
"""Exponent of the feature power transform (``1``: the features as they are)."""

CHUNK = 256
"""Rows per distance computation when a task's distance scale is calibrated on a feature tensor."""


View = Callable[[Tensor], Tensor]
"""A transformation of a batch of inputs whose features are averaged with the inputs' own."""


def horizontal_flip(inputs: Tensor) -> Tensor:
    """The mirror images of a batch of images (``[N, C, H, W]``, flipped along the width)."""
    return inputs.flip(-1)


VIEWS: dict[str, View] = {"hflip": horizontal_flip}
"""Views by name (a name keeps a configuration serialisable)."""


def resolve_views(views: Sequence[Union[str, View]]) -> list[View]:
    """The views named (:data:`VIEWS`) or given as callables."""
    if isinstance(views, str):
        raise ValueError(f"views must be a sequence of names or callables, got the string {views!r}: use [{views!r}]")
    out = []
    for view in views:
        if isinstance(view, str) and view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose from {', '.join(VIEWS)} or pass a callable")
        if not (isinstance(view, str) or callable(view)):
            raise ValueError(f"a view must be a name ({', '.join(VIEWS)}) or a callable, got {view!r}")
        out.append(VIEWS[view] if isinstance(view, str) else view)
    return out


def power_transform(features: Tensor, power: float) -> Tensor:
    """``sign(x) * |x| ** power``, elementwise (``power == 1``: ``features`` unchanged)."""
    return features if power == 1 else features.sign() * features.abs().pow(power)


def class_scatter(columns: Tensor, features: Tensor, labels: Tensor, power: float,
                  scatter: Tensor) -> tuple[Tensor, Tensor]:
    """The classes of ``labels`` (on the CPU) and their float64 means over ``columns`` of ``features``,
    power-transformed; adds each class's centred outer products to ``scatter`` in place (``[D, D]``,
    no D x D temporary per class; a scalar: their trace). One class's columns at a time, as a float64
    copy centred in place."""
    classes = labels.unique()
    means = torch.empty(len(classes), len(columns), dtype=torch.float64)
    on = columns.to(features.device)
    for i, c in enumerate(classes):
        rows = (labels == c).nonzero().to(features.device)  # [n, 1]: one gather of the class's columns
        f = power_transform(features[rows, on].double().cpu(), power)
        means[i] = f.mean(0)
        f -= means[i]
        if scatter.dim() == 0:
            scatter += f.flatten() @ f.flatten()
        else:
            scatter.addmm_(f.T, f)
        del f
    return classes, means


def pack_symmetric(matrix: Tensor) -> Tensor:
    """The upper triangle, diagonal included, of ``matrix``'s symmetric part, row by row
    (``[D (D + 1) / 2]``): a symmetric matrix in half its size."""
    rows, cols = torch.triu_indices(len(matrix), len(matrix))
    return ((matrix + matrix.T) / 2)[rows, cols]


def unpack_symmetric(packed: Tensor) -> Tensor:
    """The ``[D, D]`` symmetric matrix whose upper triangle :func:`pack_symmetric` kept."""
    size = int(round(((8 * len(packed) + 1) ** 0.5 - 1) / 2))
    if size * (size + 1) // 2 != len(packed):
        raise ValueError(f"{len(packed)} values are not the upper triangle of a square matrix")
    rows, cols = torch.triu_indices(size, size, device=packed.device)
    matrix = packed.new_empty(size, size)
    matrix[rows, cols] = packed
    matrix[cols, rows] = packed
    return matrix


def shrunk_precision(covariance: Tensor, shrinkage: float) -> Tensor:
    """The inverse of ``covariance`` shrunk towards the identity scaled to its mean variance."""
    scale = float(covariance.trace()) / len(covariance) or 1.0
    eye = torch.eye(len(covariance), dtype=covariance.dtype)
    return torch.linalg.inv((1 - shrinkage) * covariance + shrinkage * scale * eye)


@dataclass
class TaskStats:
    """One task's statistics: feature columns, classes, class means, precision, distance scale."""

    columns: Tensor  # long [D]: which input columns of the output layer are this task's features
    classes: Tensor  # long [C]
    means: Tensor  # [C, D]
    precision: Tensor  # inverse of the shrunk pooled covariance, its upper triangle (pack_symmetric; a [D, D]
    # matrix given is packed); a scalar: a multiple of the identity
    centre: float = 0.0  # mean of the calibration samples' distances
    spread: float = 1.0  # their standard deviation
    power: float = POWER  # the features' power transform, before the means and the precision

    def __post_init__(self) -> None:
        if self.precision.dim() == 2:  # e.g. from a checkpoint that kept the whole matrix
            self.precision = pack_symmetric(self.precision)

    def distance(self, features: Tensor) -> Tensor:
        """``[N]``: squared Mahalanobis distance of each input to the nearest class mean of the task."""
        f = power_transform(features[:, self.columns.to(features.device)].float(), self.power)
        means, precision = self.means.to(f.device), self.precision_matrix(f.device)
        if precision.dim() == 0:  # a scaled Euclidean distance: one matrix product, no [N, C, D] difference
            scale = precision.sqrt()  # (always the product, so that a row's distance is the same in any batch)
            distances = torch.cdist(f * scale, means * scale, compute_mode="use_mm_for_euclid_dist")
            return distances.pow(2).min(-1).values
        diff = f[:, None, :] - means[None]
        return torch.einsum("ncd,de,nce->nc", diff, precision, diff).min(-1).values

    def precision_matrix(self, device: torch.device | str = "cpu") -> Tensor:
        """The precision as a ``[D, D]`` matrix on ``device`` (a scalar: as it is)."""
        precision = self.precision.to(device)
        return unpack_symmetric(precision) if precision.dim() == 1 else precision

    def score(self, features: Tensor) -> Tensor:
        """``[N]``: standardised closeness to the task (higher: more likely this task)."""
        return -(self.distance(features) - self.centre) / self.spread

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.columns, self.classes, self.means, self.precision))


class TaskRecognizer:
    """Recognises which learned task an input belongs to, from per-task feature statistics."""

    def __init__(self, shrinkage: float = SHRINKAGE, power: float = POWER) -> None:
        if not 0 < shrinkage <= 1:
            raise ValueError(f"shrinkage must be in (0, 1], got {shrinkage!r}")
        if not 0 < power <= 1:
            raise ValueError(f"power must be in (0, 1], got {power!r}")
        self.shrinkage = shrinkage
        self.power = power
        self.tasks: list[TaskStats] = []

    def __len__(self) -> int:
        return len(self.tasks)

    @torch.no_grad()
    def add_task(self, columns: Tensor, features: Tensor, labels: Tensor,
                 calibration: Tensor | Iterable[Tensor] | None = None) -> None:
        """Learn the next task from its features (``[N, all columns]``) and class labels ``[N]``.

        ``calibration``: features of other samples of the task (e.g. held out from training), as one
        tensor or batch by batch, whose distances set the task's distance scale; ``None``: the fitting
        samples themselves. The fit works on one class's columns at a time (a float64 copy, centred
        in place), and keeps the D x D scatter only where the shrinkage leaves part of it; of the
        symmetric precision, only the upper triangle is kept.
        """
        columns = columns.flatten().long().cpu()
        if columns.numel() == 0:
            raise ValueError("a task needs at least one feature column to be recognised")
        labels = labels.cpu()
        D = len(columns)
        scatter = torch.zeros((D, D) if self.shrinkage < 1 else (), dtype=torch.float64)  # 1: its trace alone
        classes, means = class_scatter(columns, features, labels, self.power, scatter)
        samples = max(len(labels) - len(classes), 1)
        if self.shrinkage == 1:
            scale = float(scatter) / samples / D or 1.0
            precision = torch.tensor(1 / scale)
        else:
            precision = shrunk_precision(scatter / samples, self.shrinkage)
        if precision.dim() == 2:
            precision = pack_symmetric(precision)  # packed in float64, before the cast (not in __post_init__)
        task = TaskStats(columns, classes, means.float(), precision.float(), power=self.power)
        given = calibration if calibration is not None else features
        parts = given.split(CHUNK) if isinstance(given, Tensor) else given
        distances = torch.cat([task.distance(part) for part in parts])
        task.centre = float(distances.mean())
        task.spread = float(distances.std()) if len(distances) > 1 and float(distances.std()) > 0 else 1.0
        self.tasks.append(task)

    @torch.no_grad()
    def scores(self, features: Tensor) -> Tensor:
        """``[N, tasks]``: each input's score for each task (higher: more likely its task)."""
        return torch.stack([task.score(features) for task in self.tasks], dim=1)

    def predict(self, features: Tensor) -> Tensor:
        """The recognised task of each input (``[N]``, long)."""
        return self.scores(features).argmax(-1)

    def class_mask(self, n_classes: int) -> Tensor:
        """``[tasks, n_classes]`` boolean: which output classes belong to each task."""
        mask = torch.zeros(len(self.tasks), n_classes, dtype=torch.bool)
        for i, task in enumerate(self.tasks):
            mask[i, task.classes.cpu()] = True
        return mask

    def task_of_class(self, n_classes: int) -> Tensor:
        """``[n_classes]``: the task each class was learned in (``-1``: not learned yet)."""
        out = torch.full((n_classes,), -1, dtype=torch.long)
        for i, task in enumerate(self.tasks):
            out[task.classes.cpu()] = i
        return out

    def nbytes(self) -> int:
        """Bytes kept for recognition (statistics only)."""
        return sum(task.nbytes() for task in self.tasks)

    def state_dict(self) -> dict[str, Any]:
        return {"shrinkage": self.shrinkage, "power": self.power, "tasks": [_cpu_copy(vars(t)) for t in self.tasks]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shrinkage = state.get("shrinkage", SHRINKAGE)
        self.power = state.get("power", POWER)
        self.tasks = [TaskStats(**_cpu_copy(t)) for t in state["tasks"]]


def recognised_task_logits(logits: Tensor, tasks: Tensor, class_mask: Tensor) -> Tensor:
    """``logits`` with every class outside each input's recognised task (``tasks``, ``[N]``; ``class_mask``
    from :meth:`TaskRecognizer.class_mask`) pushed below the input's smallest logit: only its task's classes can win."""
    allowed = class_mask.to(logits.device)[tasks.to(logits.device)]
    return torch.where(allowed, logits, logits.min(dim=1, keepdim=True).values - 1)


def own_class_logits(logits: Tensor, rows: Tensor, labels: Tensor) -> Tensor:
    """``logits`` with every class but the ``rows`` (boolean, ``[classes]``) and the batch's ``labels``
    set to ``-inf``, so a cross-entropy loss reads (and trains) only those classes' outputs."""
    allowed = rows.to(logits.device).clone()
    allowed[labels.to(logits.device).long()] = True
    return logits.masked_fill(~allowed, float("-inf"))


def task_weighted_log_probs(logits: Tensor, scores: Tensor, task_of_class: Tensor, scale: float) -> Tensor:
    """``[N, classes]``: ``log p(task of c | x) + log p(c | x, that task)`` for each class ``c``.

    ``p(task | x)`` is the softmax of ``scale * scores`` (``[N, tasks]``, e.g.
    :meth:`TaskRecognizer.scores`); ``p(c | x, task)`` the softmax of ``logits`` over the task's
    classes. Classes of no learned task (``task_of_class`` ``-1``) score below every learned one.
    """
    task_of_class = task_of_class.to(logits.device)
    learned = task_of_class >= 0
    task_log_p = (scale * scores.to(logits.device, logits.dtype)).log_softmax(1)
    out = task_log_p[:, task_of_class.clamp_min(0)]
    for task in task_of_class[learned].unique():
        columns = task_of_class == task
        out[:, columns] += logits[:, columns].log_softmax(1)
    floor = out[:, learned].min(1, keepdim=True).values - 1
    return torch.where(learned, out, floor)


def _cpu_copy(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() if isinstance(v, Tensor) else v for k, v in fields.items()}
