"""Models used by the benchmarks and the demo."""

from __future__ import annotations

from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn


class MultiHeadMLP(MultiTaskModule):
    """Two-hidden-layer MLP backbone with one head per task (task-incremental learning)."""

    def __init__(self, input_size: int = 64, hidden: int = 128, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(input_size, hidden), activation(), nn.Linear(hidden, hidden), activation()
        )
        self.classifier = MultiHeadClassifier(hidden)

    def forward_single_task(self, x, task_label):
        return self.classifier(self.features(x), task_label)

    def forward(self, x, task_labels):
        return self.classifier(self.features(x), task_labels)
