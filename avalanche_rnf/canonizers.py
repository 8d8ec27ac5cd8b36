"""LRP canonizers for residual networks: relevance is conserved across a residual sum.

A residual block adds its branch to its input. Left as a plain ``+``, LRP passes the sum's whole
relevance to both summands (it is a gradient there), doubling it. Canonizers route the sum through
zennit's :class:`~zennit.layer.Sum`, whose rule splits the relevance in proportion to each
summand's contribution. zennit ships canonizers for torchvision's ResNets; Avalanche's
``SlimResNet18`` blocks get :class:`SlimResNetBlockCanonizer` (recognised by class, so this module
does not import Avalanche), torchvision's inverted-residual blocks :class:`InvertedResidualCanonizer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import relu
from zennit.canonizers import AttributeCanonizer, Canonizer, SequentialMergeBatchNorm
from zennit.layer import Sum
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer


def _is_slim_block(module: nn.Module) -> bool:
    kind = type(module)
    return kind.__name__ == "BasicBlock" and kind.__module__ == "avalanche.models.slim_resnet18"


class SlimResNetBlockCanonizer(AttributeCanonizer):
    """Routes the residual sum of Avalanche's ``SlimResNet18`` ``BasicBlock`` through a :class:`~zennit.layer.Sum`."""

    def __init__(self) -> None:
        super().__init__(self._attribute_map)

    @classmethod
    def _attribute_map(cls, name: str, module: nn.Module) -> dict[str, Any] | None:
        if _is_slim_block(module):
            return {"forward": cls.forward.__get__(module), "canonizer_sum": Sum()}
        return None

    @staticmethod
    def forward(self: Any, x: Tensor) -> Tensor:
        out = relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.canonizer_sum(torch.stack([self.shortcut(x), out], dim=-1))
        return relu(out)


def _inverted_residuals() -> dict[type, str]:
    """torchvision's inverted-residual blocks and the attribute holding each one's branch."""
    from torchvision.models import efficientnet, mobilenetv2, mobilenetv3

    return {mobilenetv2.InvertedResidual: "conv", mobilenetv3.InvertedResidual: "block",
            efficientnet.MBConv: "block", efficientnet.FusedMBConv: "block"}


class InvertedResidualCanonizer(AttributeCanonizer):
    """Routes the residual sum of torchvision's MobileNetV2/V3 and EfficientNet blocks through a
    :class:`~zennit.layer.Sum` (blocks without a residual connection are left alone)."""

    def __init__(self) -> None:
        self.branches = _inverted_residuals()
        super().__init__(self._attribute_map)

    def _attribute_map(self, name: str, module: nn.Module) -> dict[str, Any] | None:
        branch = self.branches.get(type(module))
        if branch is None or not getattr(module, "use_res_connect", False):
            return None
        return {"forward": self._forward(module, branch), "canonizer_sum": Sum()}

    @staticmethod
    def _forward(module: Any, branch: str) -> Any:
        def forward(x: Tensor) -> Tensor:
            out = getattr(module, branch)(x)
            depth = getattr(module, "stochastic_depth", None)
            out = depth(out) if depth is not None else out
            return module.canonizer_sum(torch.stack([x, out], dim=-1))

        return forward


def default_canonizers() -> list[Canonizer]:
    """BatchNorm merged into the layer before it, and the residual sums of torchvision's ResNets,
    MobileNets and EfficientNets and of Avalanche's SlimResNet18 routed through a
    :class:`~zennit.layer.Sum`."""
    return [SequentialMergeBatchNorm(), ResNetBasicBlockCanonizer(), ResNetBottleneckCanonizer(),
            SlimResNetBlockCanonizer(), InvertedResidualCanonizer()]
