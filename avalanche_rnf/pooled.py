"""Task recognition by linear discriminant analysis over features every task shares.

:class:`~avalanche_rnf.recognition.TaskRecognizer` fits each task apart, on the features its own
kept units provide, so tasks' distances are put on one scale by standardising them. Where every
task reads the same features (the model's input values, :func:`input_values`), that is not
needed: :class:`PooledRecognizer` keeps each class's mean and one covariance pooled over every
class of every task learned so far (streaming linear discriminant analysis, as Avalanche's
``StreamingLDA``), shrunk towards a scaled identity. A task's score is the log of the summed
likelihoods of its classes, so the scores are comparable across tasks as they are and their
softmax is the task's posterior probability (equal class priors). Statistics only, never inputs:
the ``D x D`` scatter summed over the stream (float32, its upper triangle), and the class means.
:class:`JointRecognizer` adds its task log-posteriors to the per-task scores
(``TaskInference(layers="all+input")``, the class-incremental default).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor

from avalanche_rnf.recognition import (
    SHRINKAGE,
    TaskRecognizer,
    TaskStats,
    class_scatter,
    pack_symmetric,
    shrunk_precision,
    unpack_symmetric,
)

INPUT_VALUES = 1024
"""At most this many input values per sample reach the pooled LDA (its scatter is their square):
CIFAR's 3 x 32 x 32 pooled to 3 x 16 x 16 (768), MNIST's 28 x 28 as it is (784)."""


def input_values(inputs: Tensor, limit: int | None = None) -> Tensor:
    """``[N, D]``: each input's values, images (``[N, C, H, W]``) average-pooled over 2 x 2 blocks
    until at most ``limit`` values are left (:data:`INPUT_VALUES` where ``None``); flat inputs as
    they are."""
    limit = INPUT_VALUES if limit is None else limit
    x = inputs.float()
    while x.dim() == 4 and x[0].numel() > limit and min(x.shape[-2:]) >= 2:
        x = torch.nn.functional.avg_pool2d(x, 2)
    return x.reshape(len(x), -1)


class PooledRecognizer(TaskRecognizer):
    """Recognises an input's task from shared features with one pooled covariance over all classes."""

    def __init__(self, shrinkage: float = SHRINKAGE) -> None:
        super().__init__(shrinkage)
        self.scatter: Tensor | None = None
        """The centred outer products of every class's samples, summed over tasks (summed in float64,
        kept in float32): the upper triangle of the symmetric ``[D, D]`` sum (:func:`pack_symmetric`)."""
        self.samples = 0
        """Degrees of freedom of ``scatter``: samples minus classes, summed over tasks."""
        self._weights: tuple[Tensor, Tensor] | None = None

    @torch.no_grad()
    def add_task(self, columns: Tensor, features: Tensor, labels: Tensor,
                 calibration: Tensor | Iterable[Tensor] | None = None) -> None:
        """Learn the next task from its features (``[N, all columns]``) and class labels ``[N]``.

        ``columns`` must be the same for every task; ``calibration`` is not needed (the scores
        share one scale) and is ignored.
        """
        columns = columns.flatten().long().cpu()
        if columns.numel() == 0:
            raise ValueError("a task needs at least one feature column to be recognised")
        if self.tasks and not torch.equal(columns, self.tasks[0].columns):
            raise ValueError("a pooled covariance needs the features every task shares (the model's input "
                             "values); this task reads other columns")
        labels = labels.cpu()
        scatter = torch.zeros(len(columns), len(columns), dtype=torch.float64)
        if self.scatter is not None:
            scatter += unpack_symmetric(self.scatter)
        classes, means = class_scatter(columns, features, labels, 1.0, scatter)
        self.scatter = pack_symmetric(scatter).float()
        self.samples += max(len(labels) - len(classes), 1)
        self.tasks.append(TaskStats(columns, classes, means.float(), torch.tensor(0.0)))
        self._weights = None

    def _discriminant(self) -> tuple[Tensor, Tensor]:
        """Per learned class, the weights and bias of its linear discriminant (cached until a task is added)."""
        if self._weights is None:
            assert self.scatter is not None, "no task learned yet"
            precision = shrunk_precision(unpack_symmetric(self.scatter.double()) / self.samples, self.shrinkage)
            means = torch.cat([task.means for task in self.tasks]).double()
            weights = means @ precision
            self._weights = (weights.float(), (-0.5 * (weights * means).sum(1)).float())
        return self._weights

    @torch.no_grad()
    def scores(self, features: Tensor) -> Tensor:
        """``[N, tasks]``: each task's log-likelihood (up to one constant per input), the log of the
        summed likelihoods of its classes."""
        weights, bias = (t.to(features.device) for t in self._discriminant())
        f = features[:, self.tasks[0].columns.to(features.device)].float()
        logits = f @ weights.T + bias
        out, start = [], 0
        for task in self.tasks:
            out.append(logits[:, start:start + len(task.classes)].logsumexp(1))
            start += len(task.classes)
        return torch.stack(out, 1)

    def nbytes(self) -> int:
        scatter = 0 if self.scatter is None else self.scatter.numel() * self.scatter.element_size()
        return scatter + super().nbytes()

    def state_dict(self) -> dict[str, Any]:
        scatter = None if self.scatter is None else self.scatter.detach().cpu().clone()
        return {**super().state_dict(), "scatter": scatter, "samples": self.samples}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        scatter = state["scatter"]
        self.scatter = None if scatter is None else pack_symmetric(scatter) if scatter.dim() == 2 else scatter.clone()
        self.samples = state["samples"]
        self._weights = None


WEIGHT = 4.0
"""Weight of the per-task scores against the pooled task log-posterior in :class:`JointRecognizer`.

Chosen among 0, 1, 2, 4, 8 and 16 on validation splits (10 %, seeds 100 and 101) of
class-incremental SplitMNIST and SplitFashionMNIST, one trained model each
(``benchmarks/results/recognizers-*-validation-seed10*``): mean class-incremental accuracy 0.826,
0.835, 0.840, 0.845, 0.846 and 0.837; of the tie between 4 and 8, 4 is the better on
SplitFashionMNIST and gives the per-task scores less say where they are weak (0.679 and 0.734
alone there, against 0.780 and 0.793 from the pooled input alone)."""


class JointRecognizer(TaskRecognizer):
    """Per-task statistics of the kept units' features plus a pooled LDA on features every task shares.

    A task's score is :data:`WEIGHT` times its standardised per-task score
    (:class:`~avalanche_rnf.recognition.TaskRecognizer`) plus its log-posterior under
    :class:`PooledRecognizer`: the first recognises tasks from what their own units compute, the
    second from the input every task sees, on a scale shared by all tasks.
    """

    def __init__(self, shrinkage: float = SHRINKAGE, power: float = 1.0) -> None:
        super().__init__(shrinkage, power)
        self.pooled = PooledRecognizer(shrinkage)

    @torch.no_grad()
    def add_task(self, columns: Tensor, features: Tensor, labels: Tensor,
                 calibration: Tensor | Iterable[Tensor] | None = None, shared: Tensor | None = None) -> None:
        """As :meth:`TaskRecognizer.add_task` on ``columns`` (the task's own), and the pooled fit on
        ``shared`` (the columns every task shares; the first task's where ``None``)."""
        if shared is None:
            if not self.pooled.tasks:
                raise ValueError("the first task needs the columns every task shares (shared=...)")
            shared = self.pooled.tasks[0].columns
        own = columns.flatten().long().cpu()
        own = own[~torch.isin(own, shared.flatten().long().cpu())]
        super().add_task(own, features, labels, calibration)
        self.pooled.add_task(shared, features, labels)

    @torch.no_grad()
    def scores(self, features: Tensor) -> Tensor:
        return WEIGHT * super().scores(features) + self.pooled.scores(features).log_softmax(1)

    def nbytes(self) -> int:
        return super().nbytes() + self.pooled.nbytes()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pooled": self.pooled.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.pooled.load_state_dict(state["pooled"])
