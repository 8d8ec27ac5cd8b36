"""Accuracy per task, scored over each task's own head.

Avalanche 0.6's ``MultiTaskModule.forward`` pads every head's logits with zeros up to the
widest head; a sample whose own-head logits are all negative then scores as a padded class,
so Avalanche's stream accuracy under-reports task-incremental models. Scoring over the task's
own head (``forward_single_task``) avoids that; report both where both matter.
"""

from __future__ import annotations

import torch
from avalanche.models import MultiTaskModule
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
