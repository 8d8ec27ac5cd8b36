"""The recognisers :mod:`avalanche_rnf.bench.recognizers` compares, and how each is scored.

Each candidate is a function from test features to ``[N, tasks]`` scores, fitted on the same
training features: the largest logit or softmax mass of a task's classes, per-class diagonal
Gaussians, Mahalanobis distances (raw, standardised per task, on power-transformed features) and,
where every task reads the same features, a linear discriminant analysis pooled over tasks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from avalanche_rnf.pooled import PooledRecognizer
from avalanche_rnf.recognition import TaskRecognizer, recognised_task_logits, task_weighted_log_probs


def accuracy_of(scores: Tensor, test_logits: Tensor, test_y: Tensor, recognizer: TaskRecognizer,
           posterior: float | None = None) -> dict[str, float]:
    """Tasks recognised, and class-incremental accuracy with the recognised task's classes only or
    (``posterior``) with each class weighed by its task's probability (``TaskInference(posterior=...)``)."""
    n_classes = test_logits.shape[1]
    predicted = scores.argmax(1)
    task_of_class = recognizer.task_of_class(n_classes)
    if posterior is None:
        outputs = recognised_task_logits(test_logits, predicted, recognizer.class_mask(n_classes))
    else:
        outputs = task_weighted_log_probs(test_logits, scores, task_of_class, posterior)
    return {"task_recognised": float((predicted == task_of_class[test_y]).float().mean()),
            "class_incremental_accuracy": float((outputs.argmax(1) == test_y).float().mean())}


def fit_candidates(columns: list[Tensor], classes: list[Tensor], train, test_logits: Tensor,
                with_logits: bool, pooled: bool) -> dict[str, Callable[[Tensor], Tensor]]:
    """The recognisers, each a function from test features to ``[N, tasks]`` scores."""
    def diagonal(f: Tensor) -> Tensor:
        scores = []
        for cols, task_classes, (fit, _, y) in zip(columns, classes, train):
            x = fit[:, cols]
            means = torch.stack([x[y == c].mean(0) for c in task_classes])
            variance = (x - means[torch.searchsorted(task_classes, y)]).pow(2).mean(0)
            variance = variance.clamp_min(1e-2 * float(variance.mean()) + 1e-12)
            z = (f[:, cols][:, None] - means[None]) ** 2 / variance + variance.log()
            scores.append(-0.5 * z.mean(-1).max(-1).values)
        return torch.stack(scores, 1)

    def mahalanobis(shrinkage: float, standardised: bool, power: float = 1.0) -> Callable[[Tensor], Tensor]:
        recognizer = TaskRecognizer(shrinkage, power)
        for cols, (fit, _, y) in zip(columns, train):
            recognizer.add_task(cols, fit, y)
        if standardised:
            return recognizer.scores
        return lambda f: torch.stack([-task.distance(f) for task in recognizer.tasks], 1)

    candidates: dict[str, Callable[[Tensor], Tensor]] = {}
    if with_logits:  # the same for both feature sets
        candidates["max logit"] = lambda f: torch.stack([test_logits[:, c].max(-1).values for c in classes], 1)
        candidates["softmax mass"] = lambda f: torch.stack([test_logits.softmax(1)[:, c].sum(-1) for c in classes], 1)
    candidates["diagonal Gaussian per class"] = diagonal
    for s in (0.01, 0.1, 0.3):
        candidates[f"Mahalanobis, shrinkage {s}"] = mahalanobis(s, False)
    for s in (0.01, 0.1, 0.3):
        candidates[f"Mahalanobis, shrinkage {s}, standardised per task"] = mahalanobis(s, True)
    for power in (0.75, 0.5, 0.33):
        candidates[f"Mahalanobis, shrinkage 0.01, standardised per task, features ** {power}"] = \
            mahalanobis(0.01, True, power)
    if pooled:  # every task reads the same features: one covariance over all classes
        for s in (1e-4, 0.01, 0.1):
            lda = PooledRecognizer(s)
            for cols, (fit, _, y) in zip(columns, train):
                lda.add_task(cols, fit, y)
            candidates[f"LDA, covariance pooled over tasks, shrinkage {s}"] = lda.scores
    return candidates
