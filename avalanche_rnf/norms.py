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

import contextlib
from typing import Sequence, cast

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.layers import UnitLayer


class _Held:
    """Forward hook: in training mode, the ``rows`` channels of a BatchNorm's output computed from its
    input with the frozen running statistics, as ``input * scale + shift`` (written into the output).

    ``detach``: the held channels are written without autograd, so their gradient flows back as
    BatchNorm's own. With isolation a frozen channel reads only frozen channels, so that gradient
    reaches only frozen entries, which are zeroed anyway, and the free entries' gradients are the
    same; writing without autograd spares a copy of the output's gradient in every training step.
    """

    def __init__(self, rows: Tensor, scale: Tensor, shift: Tensor, detach: bool) -> None:
        self.rows, self.scale, self.shift, self.detach = rows, scale, shift, detach

    def __call__(self, module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        if not module.training:
            return None
        x = args[0]
        if self.rows.device != x.device:
            self.rows, self.scale, self.shift = (t.to(x.device) for t in (self.rows, self.scale, self.shift))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        # BatchNorm's backward reads neither its output nor what is written here
        with torch.no_grad() if self.detach else contextlib.nullcontext():
            held = torch.addcmul(self.shift.to(x.dtype).view(shape), x.index_select(1, self.rows),
                                 self.scale.to(x.dtype).view(shape))
            return output.index_copy_(1, self.rows, held)


class FrozenNorms:
    """Forward hooks that hold the frozen channels of every unit layer's BatchNorms at their running
    statistics while the model trains (:meth:`hold`; :meth:`release` removes them).

    ``enabled=False`` hooks nothing: frozen channels train on batch statistics, as BatchNorm does by
    itself (the benchmarks' ablation of this mechanism).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._handles: list[RemovableHandle] = []

    def hold(self, model: nn.Module, layers: Sequence[UnitLayer], freeze: FreezeState, isolated: bool = False) -> None:
        """Hook the BatchNorms of ``layers`` that have frozen channels in ``freeze`` (replacing earlier
        hooks); ``isolated``: frozen channels read only frozen channels, so no gradient need flow
        through them."""
        self.release()
        for layer in layers if self.enabled else ():
            for norm in layer.norms:
                mean, var = f"{norm}.running_mean", f"{norm}.running_var"
                if mean not in freeze.values or var not in freeze.values:
                    continue  # no running statistics, or none of its channels frozen
                module = model.get_submodule(norm)
                rows = freeze.frozen_rows(mean, cast(Tensor, module.running_mean)).clone()
                if not rows.numel():
                    continue
                scale = torch.rsqrt(freeze.values[var].float() + cast(float, module.eps))
                shift = -freeze.values[mean].float() * scale
                if f"{norm}.weight" in freeze.values:
                    weight = freeze.values[f"{norm}.weight"].float()
                    scale, shift = scale * weight, shift * weight + freeze.values[f"{norm}.bias"].float()
                self._handles.append(module.register_forward_hook(_Held(rows, scale, shift, isolated)))

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __len__(self) -> int:
        return len(self._handles)
