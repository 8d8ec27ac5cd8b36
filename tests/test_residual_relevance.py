"""LRP through the data flow: relevance is conserved across residual sums, concatenations and grouped convs."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision.models as tv
from avalanche.models.slim_resnet18 import BasicBlock
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite
from zennit.layer import Sum
from zennit.rules import Epsilon, Norm, Pass
from zennit.types import Activation, AvgPool, Convolution, Linear

from avalanche_rnf import unit_relevance
from avalanche_rnf.canonizers import default_canonizers
from avalanche_rnf.relevance import make_composite
from helpers import traced


def _no_bias_residual(kind: str) -> nn.Module:
    """Bias-free: BatchNorms with identity statistics and affine parameters merge to a bias of zero."""
    torch.manual_seed(0)
    if kind == "slim":
        blocks: list[nn.Module] = [BasicBlock(8, 8), BasicBlock(8, 16, stride=2)]
    else:  # torchvision's inverted residuals (MobileNetV2), with a depthwise conv in each branch
        blocks = [InvertedResidual(8, 8, 1, expand_ratio=2), InvertedResidual(8, 16, 2, expand_ratio=2),
                  InvertedResidual(16, 16, 1, expand_ratio=2)]
    width = 16
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4, bias=False),
    )
    return model.eval()


class _ConcatGrouped(nn.Module):
    """Bias-free: two branches concatenated, then a grouped convolution."""

    def __init__(self, groups: int):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Conv2d(3, 4, 1, bias=False)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)
        self.relu, self.relu2, self.pool = nn.ReLU(), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 4, bias=False)

    def forward(self, x):
        h = self.relu(torch.cat([self.a(x), self.b(x)], 1))
        return self.head(self.pool(self.relu2(self.grouped(h))).flatten(1))


@pytest.mark.parametrize("groups", [2, 4, 8])
def test_relevance_is_conserved_across_concatenations_and_grouped_convs(groups):
    torch.manual_seed(0)
    model = _ConcatGrouped(groups).eval()
    with Gradient(model=model, composite=_epsilon([])) as attributor:
        _, relevance = attributor(torch.rand(3, 3, 8, 8), torch.eye(4)[[0, 1, 2]])
    assert torch.allclose(relevance.flatten(1).sum(1), torch.ones(3), atol=1e-3)


def _epsilon(canonizers) -> LayerMapComposite:
    """LRP-epsilon (tiny epsilon) everywhere: exactly conservative on bias-free layers, whatever their signs."""
    rules = [(Activation, Pass()), (Convolution, Epsilon(1e-9)), (Linear, Epsilon(1e-9)), (AvgPool, Norm()),
             (Sum, Norm())]
    return LayerMapComposite(rules, canonizers=canonizers)


@pytest.mark.parametrize("kind", ["slim", "inverted"])
@pytest.mark.parametrize("canonizers, conserved", [(None, True), ([], False)])
def test_relevance_is_conserved_across_residual_sums(canonizers, conserved, kind):
    model = _no_bias_residual(kind)
    x = torch.rand(3, 3, 8, 8)
    composite = _epsilon(default_canonizers() if canonizers is None else canonizers)
    with Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(x, torch.eye(4)[[0, 1, 2]])
    total = relevance.flatten(1).sum(1)
    if conserved:
        assert torch.allclose(total, torch.ones(3), atol=1e-3)
    else:  # the plain sum hands each summand the whole relevance
        assert (total > 1.05).all()


def test_torchvision_resnet_sums_are_canonized_and_the_first_rule_lands_on_the_stem():
    model = tv.resnet18(num_classes=3).eval()
    for module in model.modules():  # bias-free: identity BatchNorms
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    model.fc.bias.data.zero_()
    x = torch.rand(2, 3, 32, 32)
    with Gradient(model=model, composite=_epsilon(default_canonizers())) as attr:
        _, relevance = attr(x, torch.eye(3)[[0, 2]])
    assert torch.allclose(relevance.flatten(1).sum(1), torch.ones(2), atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first-layer warning would fail here
        layers = traced(model)
        batches = [(x, torch.tensor([0, 2]), torch.zeros(2, dtype=torch.long))]
        unit_relevance(model, layers, batches, composite=make_composite())
