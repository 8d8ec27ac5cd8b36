"""BatchNorm statistics recomputed for the network as isolation leaves it, within a memory budget.

Isolation changes what a newly frozen channel sums up, so the running mean and variance it was
trained with no longer fit. Each norm's statistics are measured on the calibration samples from
the input it sees at inference (eval mode), after every earlier norm has its new statistics:

- where the largest norm input of all calibration samples fits the budget, in one forward pass (a
  hook sets each norm's statistics from its input just before it normalises);
- otherwise norm by norm, in the order they run, each over the samples in chunks whose norm inputs
  fit :data:`CALIBRATION_BUDGET` (the pass stops at the norm), with sums accumulated in float64.

The budget follows what the strategy already holds: the largest norm input of one evaluation
mini-batch (an evaluation pass is a pass without gradients in eval mode, as the one pass is, so
calibration samples no more than the evaluation batch never raise the peak evaluation sets), or
what a training step holds for its backward pass, half of all norms' inputs for one training
mini-batch, whichever is larger, and at least :data:`CALIBRATION_BUDGET`. A pass without gradients
holds several tensors as large as its largest norm input, and the halving keeps the one pass below
the training step's memory peak (on Avalanche's SlimResNet18 with 32x32 inputs, 512 samples take
the one pass from a training batch of 110 on, or from an evaluation batch of 512; a no-gradient pass
over them peaks at 258 MiB, a training step of 128 samples at 353 MiB). Both ways give the same
statistics; the one pass runs the network once instead of once per norm (there, 1.1 s instead of
6-10 s on two CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, cast

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import evaluating, pre_hooks

Call = Callable[[nn.Module, dict[str, Tensor], tuple[Tensor, ...]], Tensor]
CALIBRATION_BUDGET = 4 * 2**20
"""Bytes of the largest norm input: the smallest budget for the one pass, and a chunk's size norm by norm."""
_CHANNEL_BLOCK = 16
"""Channels whose statistics are computed at once (each as a float64 copy), at most."""
_BLOCK_BYTES = 4 * 2**20
"""Bytes of a block's float64 copy, at most (fewer channels where one channel's values take more; one at least)."""


@dataclass(frozen=True)
class Calibration:
    """The samples BatchNorm statistics are measured on, and the training and evaluation mini-batch
    sizes that set the memory budget (``0``: not known)."""

    batches: Sequence[tuple[Tensor, ...]]
    train_batch: int = 0
    eval_batch: int = 0


class _Stop(Exception):
    """Raised by a hook to end a forward pass at the norm being measured (an ``Exception``, so the
    model's ``always_call`` hooks still run)."""


def _rows(x: Tensor, channels: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    """``(channel indices, their values as float64 rows)`` for the ``channels`` of ``x``, one block at a
    time (a consumer drops each block before asking for the next). A block holds at most
    :data:`_CHANNEL_BLOCK` channels and, where a channel's values are many (a large pass over large
    feature maps), only as many as fit :data:`_BLOCK_BYTES`, so the copies stay small next to ``x``."""
    picked = channels.to(x.device).nonzero().flatten()
    per_channel = 8 * (x.numel() // max(x.shape[1], 1))
    for block in picked.split(max(1, min(_CHANNEL_BLOCK, _BLOCK_BYTES // max(per_channel, 1)))):
        yield block, x.transpose(0, 1).index_select(0, block).flatten(1).double()


def _set_from(mean: Tensor, var: Tensor, channels: Tensor) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
    """Forward pre-hook writing the input's per-channel mean and (unbiased) variance into ``channels``, on the
    norm's first call in the pass (as the norm-by-norm measurement does)."""
    done = False

    def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        nonlocal done
        if done:
            return
        done = True
        for block, rows in _rows(inputs[0], channels):
            mean[block] = rows.mean(1).to(mean)
            var[block] = rows.var(1, correction=min(1, rows.shape[1] - 1)).to(var)
            del rows

    return hook


class _Sums:
    """Per-channel count, sum and sum of squares of a norm's inputs over several passes (float64)."""

    def __init__(self, channels: Tensor) -> None:
        self.channels = channels
        self.n = 0
        self.sum = torch.zeros(channels.numel(), dtype=torch.float64, device=channels.device)
        self.squares = torch.zeros_like(self.sum)

    def hook(self, _module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0]
        for block, rows in _rows(x, self.channels):
            self.sum[block] += rows.sum(1)
            self.squares[block] += rows.square().sum(1)
            del rows
        self.n += x.numel() // x.shape[1]  # samples x positions per channel
        raise _Stop

    def write(self, mean: Tensor, var: Tensor) -> None:
        if self.n == 0:  # the norm did not run
            return
        picked = self.channels.nonzero().flatten()
        m = self.sum[picked] / self.n
        mean[picked] = m.to(mean)
        var[picked] = ((self.squares[picked] - self.n * m.square()).clamp_min(0) / max(1, self.n - 1)).to(var)


def _per_sample_bytes(model: nn.Module, names: Sequence[str], targets: Sequence[str], tensors: dict[str, Tensor],
                      call: Call, probe: tuple[Tensor, ...]) -> tuple[list[str], int, int]:
    """The norms ``targets`` in the order they first run, and the bytes per sample of their largest input
    and of the inputs of all norms ``names`` together (``probe``: a few samples)."""
    order: list[str] = []
    size = total = 0

    def note(name: str):
        def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            nonlocal size, total
            nbytes = inputs[0].numel() * inputs[0].element_size()
            total += nbytes
            if name in targets:
                size = max(size, nbytes)
                if name not in order:
                    order.append(name)
        return hook

    with pre_hooks(model, {name: note(name) for name in names}), evaluating(model), torch.no_grad():
        call(model, tensors, probe)
    n = max(1, len(probe[0]))
    return order, size // n, total // n


@torch.no_grad()
def calibrated_norms(
    model: nn.Module,
    weights: dict[str, Tensor],
    norms: list[tuple[str, Tensor]],
    batches: Sequence[tuple[Tensor, ...]],
    call: Call,
    *,
    train_batch: int = 0,
    eval_batch: int = 0,
    budget: int | None = None,
) -> dict[str, Tensor]:
    """``weights`` and, for each ``(norm layer name, channels to recompute)`` of ``norms``, its running
    statistics measured on ``batches`` in eval mode for the network with those tensors (other channels
    keep theirs). ``call(model, tensors, batch)`` runs the model with ``tensors`` swapped in.

    ``budget``: bytes of the largest norm input that take the one pass (and at most of a chunk); by
    default the largest norm input of an evaluation mini-batch of ``eval_batch`` samples or half of
    all norms' inputs for a training mini-batch of ``train_batch`` samples, whichever is larger, and
    at least :data:`CALIBRATION_BUDGET`."""
    tensors = dict(weights)
    targets = {name: channels for name, channels in norms if channels.any()}
    if not targets:
        return tensors
    for name in targets:
        module = model.get_submodule(name)
        tensors[f"{name}.running_mean"] = cast(Tensor, module.running_mean).clone()
        tensors[f"{name}.running_var"] = cast(Tensor, module.running_var).clone()
    joined = tuple(torch.cat(parts) for parts in zip(*batches))
    probe = tuple(t[:2] for t in joined)
    order, per_sample, all_norms = _per_sample_bytes(model, [name for name, _ in norms], list(targets), tensors,
                                                     call, probe)
    if budget is None:
        budget = max(CALIBRATION_BUDGET, all_norms * train_batch // 2, per_sample * eval_batch)
    with evaluating(model):
        if per_sample * len(joined[0]) <= budget:
            _one_pass(model, tensors, targets, joined, call)
        else:
            chunk = min(budget, CALIBRATION_BUDGET) // max(per_sample, 1)
            chunks = list(zip(*(t.split(max(1, chunk)) for t in joined)))
            for name in order:
                _measure_alone(model, tensors, name, targets[name], chunks, call)
    return tensors


def _one_pass(model: nn.Module, tensors: dict[str, Tensor], targets: dict[str, Tensor],
              joined: tuple[Tensor, ...], call: Call) -> None:
    hooks = {}
    for name, channels in targets.items():
        mean, var = tensors[f"{name}.running_mean"], tensors[f"{name}.running_var"]
        hooks[name] = _set_from(mean, var, channels.to(mean.device))
    with pre_hooks(model, hooks):
        call(model, tensors, joined)


def _measure_alone(model: nn.Module, tensors: dict[str, Tensor], name: str, channels: Tensor,
                   chunks: list[tuple[Tensor, ...]], call: Call) -> None:
    sums = _Sums(channels.to(tensors[f"{name}.running_mean"].device))
    with pre_hooks(model, {name: sums.hook}):
        for chunk in chunks:
            try:
                call(model, tensors, chunk)
            except _Stop:
                pass
    sums.write(tensors[f"{name}.running_mean"], tensors[f"{name}.running_var"])
