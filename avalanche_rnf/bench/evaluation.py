"""Accuracy per task, scored over each task's own head.

Avalanche 0.6's ``MultiTaskModule.forward`` pads every head's logits with zeros up to the
widest head; a sample whose own-head logits are all negative then scores as a padded class,
so Avalanche's stream accuracy under-reports task-incremental models. Scoring over the task's
own head (``forward_single_task``) avoids that; report both where both matter.
"""

from __future__ import annotations

import torch
from avalanche.evaluation.metrics.accuracy import ExperienceAccuracy, StreamAccuracy
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def task_accuracy(model: nn.Module, experience, device: str | torch.device = "cpu", batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``experience`` (its eval transforms), over the task's own head."""
    was_training = model.training
    model.eval()
    dataset = experience.dataset.eval()
    correct = total = 0
    for x, y, t, *_ in DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn):
        x, y = x.to(device), y.to(device)
        if isinstance(model, MultiTaskModule):
            out = torch.cat([model.forward_single_task(x[t == task], int(task)) for task in t.unique()])
            y = torch.cat([y[t == task] for task in t.unique()])
        else:
            out = model(x)
        correct += (out.argmax(1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return correct / max(total, 1)


def head_widths(model: nn.Module) -> dict[int, int]:
    """Output width of each task's head, for models with a ``MultiHeadClassifier`` (empty otherwise)."""
    head = next((m for m in model.modules() if isinstance(m, MultiHeadClassifier)), None)
    if head is None:
        return {}
    return {int(t): int(h.classifier.out_features) for t, h in head.classifiers.items()}


def own_head_logits(output: torch.Tensor, task_labels: torch.Tensor, widths: dict[int, int]) -> torch.Tensor:
    """Mask the zero padding ``MultiTaskModule.forward`` adds beyond each sample's own head with -inf."""
    if not widths:
        return output
    width = torch.tensor([widths.get(int(t), output.shape[1]) for t in task_labels.tolist()], device=output.device)
    padded = torch.arange(output.shape[1], device=output.device)[None, :] >= width[:, None]
    return output.masked_fill(padded, float("-inf"))


class _OwnHead:
    def update(self, strategy):
        widths = head_widths(strategy.model)
        self._metric.update(own_head_logits(strategy.mb_output, strategy.mb_task_id, widths), strategy.mb_y)


class OwnHeadExperienceAccuracy(_OwnHead, ExperienceAccuracy):
    """Avalanche's experience accuracy, scored over each sample's own head (``Top1_OwnHeadAcc_Exp``)."""

    def __str__(self):
        return "Top1_OwnHeadAcc_Exp"


class OwnHeadStreamAccuracy(_OwnHead, StreamAccuracy):
    """Avalanche's stream accuracy, scored over each sample's own head (``Top1_OwnHeadAcc_Stream``)."""

    def __str__(self):
        return "Top1_OwnHeadAcc_Stream"


def own_head_accuracy_metrics() -> list:
    """Experience and stream accuracy over each sample's own head, for an ``EvaluationPlugin``.

    Equal to Avalanche's accuracy for single-head models; for multi-head models it counts the
    samples that Avalanche's zero padding scores wrong.
    """
    return [OwnHeadExperienceAccuracy(), OwnHeadStreamAccuracy()]
