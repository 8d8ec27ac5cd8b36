"""Streaming LDA peers: Avalanche's ``StreamingLDA`` on the raw inputs, or on a backbone's features.

Both keep per-class means and one shared, shrunk covariance, fitted one sample at a time in a
single pass, and store no inputs. ``slda`` reads the flattened inputs; no network is trained.
``slda_backbone`` reads the features of the benchmark's own network (what its output layer reads, e.g.
``SmallCNN``'s 256 hidden units or ``SlimResNet18``'s pooled 160 channels), trained as Naive trains it
on the first experience only and frozen from then on: a backbone that has seen one task's data and
keeps none of it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from avalanche.core import BasePlugin
from avalanche.training import Naive, StreamingLDA
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf.bench.hparams import Training
from avalanche_rnf.taps import FeatureTap, Tap

SLDA_STRATEGIES = ("slda", "slda_backbone")


def _output_layer(model: nn.Module) -> tuple[str, nn.Linear]:
    """The network's output layer, its last Linear, with its name."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"Streaming LDA needs a network whose output layer is a Linear; {type(model).__name__} "
                         "has none")
    return linears[-1]


class OutputLayerInput(nn.Module):
    """``network``'s features: what its output layer reads, flattened (the network runs whole)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        name, layer = _output_layer(network)
        self._tap = FeatureTap(network, [Tap(name, None, layer.in_features, read=lambda x: x.flatten(1))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.network(x)
        return self._tap.pop()


def _check_params(name: str, params: dict[str, Any]) -> None:
    if set(params) != {"shrinkage"}:
        raise ValueError(f"{name} takes one parameter, shrinkage; got {sorted(params)}")


class FirstExperienceBackbone(BasePlugin):
    """Train ``network`` on the first experience with Avalanche's ``Naive`` and ``make_optimizer``'s
    optimizer, before the LDA reads that experience; leave it untouched afterwards (the LDA strategy
    keeps the features in eval mode)."""

    def __init__(self, network: nn.Module, training: Training, optimizer: torch.optim.Optimizer,
                 device: str | torch.device):
        super().__init__()
        self.network, self.training, self.optimizer, self.device = network, training, optimizer, device

    def before_training_exp(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter != 0:
            return
        naive = Naive(model=self.network, optimizer=self.optimizer, criterion=nn.CrossEntropyLoss(),
                      train_mb_size=self.training.batch_size, train_epochs=self.training.epochs,
                      eval_mb_size=self.training.eval_batch_size, device=self.device,
                      evaluator=EvaluationPlugin(loggers=[]))
        naive.train(strategy.experience)
        self.network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)


def streaming_lda(name: str, model: nn.Module, training: Training, params: dict[str, Any],
                  input_shape: tuple[int, ...] | None, *, optimizer_for, evaluator, plugins: list | None,
                  device: str | torch.device) -> StreamingLDA:
    """Strategy ``name`` (one of :data:`SLDA_STRATEGIES`) on the harness's ``model``; ``slda`` uses only
    its number of classes. ``optimizer_for(network)`` makes the backbone's optimizer."""
    _check_params(name, params)
    _, output_layer = _output_layer(model)
    features: nn.Module = nn.Flatten()
    size = math.prod(input_shape or ())
    if name == "slda_backbone":
        features, size = OutputLayerInput(model), output_layer.in_features
        plugins = [FirstExperienceBackbone(model, training, optimizer_for(model), device), *(plugins or [])]
    elif name != "slda":
        raise ValueError(f"unknown Streaming LDA strategy {name!r}: use one of {', '.join(SLDA_STRATEGIES)}")
    return StreamingLDA(slda_model=features, output_layer_name=None, criterion=nn.CrossEntropyLoss(), input_size=size,
                        num_classes=output_layer.out_features, shrinkage_param=params["shrinkage"], train_epochs=1,
                        train_mb_size=training.batch_size, eval_mb_size=training.eval_batch_size, device=device,
                        plugins=plugins, evaluator=evaluator)
