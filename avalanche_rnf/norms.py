"""Frozen BatchNorm channels normalise with their own running statistics, in training too.

In training mode a BatchNorm normalises every channel with the mini-batch's statistics. For a
frozen channel that is not what it computes at inference, where its frozen running statistics
(measured on its own task's data) normalise it. The free units trained after it would then learn
from features that differ from the ones they read at test time. :class:`FrozenNorms` hooks each
BatchNorm with frozen channels so that, while the model trains, those channels are normalised as
in evaluation, with the running statistics :class:`~avalanche_rnf.freezing.FreezeState` keeps;
free channels keep the batch statistics. In evaluation mode the hooks change nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence, cast

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.layers import UnitLayer


def _held(rows: Tensor, mean: Tensor, var: Tensor, module: nn.Module, args: tuple[Tensor, ...],
          output: Tensor) -> Tensor | None:
    """``output`` with the ``rows`` channels normalised by the running statistics ``mean`` and ``var``."""
    if not module.training:
        return None
    x = args[0]
    rows = rows.to(x.device)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    eps = cast(float, module.eps)
    held = (x.index_select(1, rows) - mean.to(x).view(shape)) * torch.rsqrt(var.to(x).view(shape) + eps)
    weight, bias = cast("Tensor | None", module.weight), cast("Tensor | None", module.bias)
    if weight is not None and bias is not None:
        held = held * weight.index_select(0, rows).view(shape) + bias.index_select(0, rows).view(shape)
    return output.index_copy(1, rows, held)


class FrozenNorms:
    """Forward hooks that hold the frozen channels of every unit layer's BatchNorms at their running
    statistics while the model trains (:meth:`hold`; :meth:`release` removes them).

    ``enabled=False`` hooks nothing: frozen channels train on batch statistics, as BatchNorm does by
    itself (the benchmarks' ablation of this mechanism).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._handles: list[RemovableHandle] = []

    def hold(self, model: nn.Module, layers: Sequence[UnitLayer], freeze: FreezeState) -> None:
        """Hook the BatchNorms of ``layers`` that have frozen channels in ``freeze`` (replacing earlier hooks)."""
        self.release()
        for layer in layers if self.enabled else ():
            for norm in layer.norms:
                mean, var = f"{norm}.running_mean", f"{norm}.running_var"
                if mean not in freeze.values or var not in freeze.values:
                    continue  # no running statistics, or none of its channels frozen
                module = model.get_submodule(norm)
                rows = freeze.frozen_rows(mean, cast(Tensor, module.running_mean)).clone()
                if rows.numel():
                    hook: Any = partial(_held, rows, freeze.values[mean].clone(), freeze.values[var].clone())
                    self._handles.append(module.register_forward_hook(hook))

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __len__(self) -> int:
        return len(self._handles)
