"""Keeping chosen units exactly: cut them off free units (isolation), recalibrate their
BatchNorm statistics, freeze them, and measure the sub-network they form."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from avalanche_rnf.calibration import Calibration, Call, calibrated_norms
from avalanche_rnf.freezing import FreezeState, tensor_by_name
from avalanche_rnf.isolation import Source, isolated_weights, sever
from avalanche_rnf.layers import UnitLayer, evaluating

Batch = tuple[Tensor, Tensor, Tensor]
"""``call(model, tensors, batch)``: logits on ``batch`` with ``tensors`` swapped into the model."""


def kept(freeze: FreezeState, new: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per layer, the units frozen once ``new`` is frozen too."""
    return {name: freeze.frozen_units(name, units.numel()) | units for name, units in new.items()}


def calibrated(model: nn.Module, layers: list[UnitLayer], weights: dict[str, Tensor], new: dict[str, Tensor],
               calibration: Calibration, call: Call) -> dict[str, Tensor]:
    """BatchNorm statistics of the ``new`` units, measured on ``calibration`` with ``weights`` swapped in."""
    norms = [(norm, new[layer.name]) for layer in layers for norm in layer.norms]
    tensors = calibrated_norms(model, weights, norms, calibration.batches, call,
                               train_batch=calibration.train_batch, eval_batch=calibration.eval_batch)
    return {k: v for k, v in tensors.items() if k not in weights}


def isolated(model: nn.Module, layers: list[UnitLayer], sources: dict[str, Source | None], keep: dict[str, Tensor],
             new: dict[str, Tensor], calibration: Calibration, call: Call) -> dict[str, Tensor]:
    """Weights (and recalibrated BatchNorm statistics) of the sub-network of the ``keep`` units."""
    weights = isolated_weights(model, sources, keep)
    return {**weights, **calibrated(model, layers, weights, new, calibration, call)}


@torch.no_grad()
def accuracy(model: nn.Module, weights: dict[str, Tensor], batches: list[Batch], call: Call,
             classes: Tensor | None = None) -> float:
    """Accuracy of ``model`` with ``weights`` swapped in (eval mode; the model is left as it was),
    over the outputs ``classes`` (a boolean mask; ``None``: all)."""
    correct = total = 0
    with evaluating(model):
        for batch in batches:
            logits = call(model, weights, batch)
            if classes is not None:
                logits = logits.masked_fill(~classes.to(logits.device), float("-inf"))
            correct += int((logits.argmax(-1) == batch[1]).sum())
            total += len(batch[1])
    return correct / max(total, 1)


def isolate(model: nn.Module, layers: list[UnitLayer], freeze: FreezeState, new: dict[str, Tensor],
            sources: dict[str, Source | None], calibration: Calibration, call: Call,
            whole_rows: str | None = None, recalibrate: bool = True) -> dict[str, Tensor]:
    """Cut the newly kept units off the free ones and recalibrate their norms; returns the cut weight
    entries by tensor name. The layer ``whole_rows`` is cut off the free units in every row.
    ``recalibrate=False`` leaves the norms as they are for units that retrain before they are
    frozen, unless a norm is in eval mode: training mode normalises by each batch's statistics, and
    freezing measures them anew."""
    keep = kept(freeze, new)
    cuts = {}
    for layer in layers:
        rows = new[layer.name] if layer.name != whole_rows else torch.ones_like(new[layer.name])
        for module, _ in layer.modules:
            source = sources.get(module)
            if source is not None:
                cut = sever(model, module, source, rows, keep)
                if cut is not None and cut.any():
                    cuts[f"{module}.weight"] = cut
    if not recalibrate and all(model.get_submodule(norm).training for layer in layers for norm in layer.norms):
        return cuts
    with torch.no_grad():
        for name, value in calibrated(model, layers, {}, new, calibration, call).items():
            tensor_by_name(model, name).copy_(value)
    return cuts


def freeze_units(model: nn.Module, layers: list[UnitLayer], freeze: FreezeState, new: dict[str, Tensor],
                 expected: set[str], warned: set[str], norms: bool = True) -> None:
    """Freeze the ``new`` units; warn once per layer whose units are all frozen, unless ``expected``.
    ``norms=False``: not their BatchNorms, which each task keeps instead."""
    keep = kept(freeze, new)
    for layer in layers:
        units = new[layer.name]
        if units.any():
            freeze.freeze(model, layer, units, norms)
        if layer.name not in expected and bool(keep[layer.name].all()) and layer.name not in warned:
            warned.add(layer.name)
            warnings.warn(
                f"RNF: all {units.numel()} units of layer {layer.name!r} are frozen, so later experiences cannot "
                "train it (capacity exhausted). Use a smaller selection fraction/mass, max_drop, "
                "capacity='fair' or a wider layer.",
                stacklevel=4,
            )
