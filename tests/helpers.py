"""Small models and helpers shared by the tests."""

from __future__ import annotations

import torch
from avalanche.models import IncrementalClassifier, MultiHeadClassifier
from avalanche.models.utils import avalanche_forward
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf import RNF, Relevance, Tolerance, find_unit_layers
from avalanche_rnf.bench.evaluation import task_accuracy  # noqa: F401  (re-exported for tests)
from avalanche_rnf.bench.models import MultiHeadMLP
from avalanche_rnf.freezing import tensor_by_name
from avalanche_rnf.graph import traced_layers
from avalanche_rnf.relevance import plain_forward


class MultiHeadConvBN(MultiHeadMLP):
    def __init__(self, hidden: int = 32):
        super().__init__(hidden=hidden)
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 16, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
        )
        self.classifier = MultiHeadClassifier(hidden)


class ClassMLP(nn.Module):
    """Two hidden layers and one Linear output over all 10 classes (class-incremental, task inference)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


class IncrementalMLP(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, hidden), nn.ReLU())
        self.classifier = IncrementalClassifier(hidden, initial_out_features=2)

    def forward(self, x):
        return self.classifier(self.features(x))


def quiet_evaluator() -> EvaluationPlugin:
    return EvaluationPlugin(loggers=[])


def tolerant_rnf(model: nn.Module, **kwargs) -> RNF:
    """RNF with the tolerance search (``max_drop`` 0.02), 4 epochs, SGD with momentum and weight decay, no loggers."""
    defaults = dict(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3),
        train_mb_size=16,
        train_epochs=4,
        relevance=Relevance(reference_size=200),
        tolerance=Tolerance(0.02),
        evaluator=quiet_evaluator(),
    )
    return RNF(model=model, **{**defaults, **kwargs})


@torch.no_grad()
def experience_logits(model: nn.Module, experience) -> torch.Tensor:
    """The model's outputs (eval mode) on every sample of ``experience``, with its task labels."""
    x, _, t = (torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v)
               for v in zip(*(item[:3] for item in experience.dataset)))
    model.eval()
    return avalanche_forward(model, x, t)


def naive(model: nn.Module, optimizer, plugins, **kwargs) -> Naive:
    """Avalanche's Naive strategy with cross-entropy, no loggers and the given plugins."""
    return Naive(
        model=model,
        optimizer=optimizer,
        criterion=nn.CrossEntropyLoss(),
        plugins=plugins,
        evaluator=quiet_evaluator(),
        **kwargs,
    )


def frozen_snapshot(plugin, model: nn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per frozen tensor: its frozen-entry mask and a copy of the whole tensor."""
    return {
        name: (
            plugin.freeze.entry_mask(name, tensor_by_name(model, name)).clone(),
            tensor_by_name(model, name).detach().clone(),
        )
        for name in plugin.freeze.values
    }


def assert_kept(earlier, later):
    """Every entry frozen in ``earlier`` has the same value in ``later`` (layers may have grown since)."""
    assert earlier
    for name, (mask, values) in earlier.items():
        now = later[name][1][: values.shape[0]]
        assert torch.equal(now[mask], values[mask]), name


def traced(model: nn.Module, shape=(3, 32, 32)):
    """The model's unit layers, read from a trace on a random batch of ``shape`` inputs."""
    x = torch.randn(2, *shape)
    return traced_layers(model, find_unit_layers(model), (x, torch.zeros(2, dtype=torch.long)), plain_forward)
