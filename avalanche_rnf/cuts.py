"""Weight entries held at zero for the rest of an experience (isolation while units retrain,
head cuts, the shared output layer's earlier columns)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avalanche_rnf.freezing import tensor_by_name


class WeightCuts:
    """Boolean masks over weight tensors, by tensor name: the entries to hold at zero."""

    def __init__(self) -> None:
        self.masks: dict[str, Tensor] = {}

    def add(self, cuts: dict[str, Tensor]) -> None:
        """Hold these entries at zero too (with those already held)."""
        for name, cut in cuts.items():
            self.masks[name] = self.masks[name] | cut if name in self.masks else cut

    def clear(self) -> None:
        self.masks = {}

    def mask_grads(self, model: nn.Module) -> None:
        """Zero the gradients of the held entries."""
        for name, cut in self.masks.items():
            grad = tensor_by_name(model, name).grad
            if grad is not None:
                grad.masked_fill_(cut, 0)

    @torch.no_grad()
    def hold(self, model: nn.Module) -> None:
        """Write zeros into the held entries."""
        for name, cut in self.masks.items():
            tensor_by_name(model, name).masked_fill_(cut, 0)
