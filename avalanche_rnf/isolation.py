"""Isolation: frozen units read only frozen units, so a finished task's function never changes.

Freezing a unit fixes its own weights, but its inputs come from the layer below, whose free units
keep training for later tasks. When a unit is frozen, its weights from the units of the layer
below that are not frozen (by then) are set to zero and frozen with it. A task-incremental task's
sub-network (its frozen units plus its frozen head) then reads nothing that trains later: its
outputs stay bit-for-bit what they were when the task finished, for every input. This is the
per-task inference mask of "units still free after task k are switched off when evaluating task k",
stored in the weights themselves, so evaluation needs no task-dependent masking and Avalanche's
forward and metrics run unchanged.

Which layer feeds which is read from the model's data flow (:mod:`~avalanche_rnf.graph`), or,
before a trace, from registration order: a unit layer's *source* is then the nearest earlier unit
layer that is not a task head. ``Conv2d -> Conv2d`` maps channels to channels, and a
``Linear`` after a flatten reads ``in_features / units`` consecutive features per source unit
(channel-major, as ``torch.flatten`` lays out ``NCHW``).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import Source, UnitLayer, UnsupportedModelError, n_inputs, n_units, weight_of


def unit_sources(model: nn.Module, layers: list[UnitLayer], heads: set[str]) -> dict[str, Source | None]:
    """Map each module of the unit layers to its :class:`Source` (``None`` for modules that read
    the model input, or only their own channels).

    Layers read from the data flow (:mod:`~avalanche_rnf.graph`) carry their sources. Otherwise
    they are read from registration order; then :class:`~avalanche_rnf.layers.UnsupportedModelError`
    is raised when a layer's input width does not match the layer before it.
    """
    if layers and all(layer.reads is not None for layer in layers):
        return {module: source for layer in layers for module, source in layer.reads or ()}
    sources: dict[str, Source | None] = {}
    previous: UnitLayer | None = None
    for layer in layers:
        module = model.get_submodule(layer.name)
        if previous is None:
            sources[layer.name] = None
        else:
            src = model.get_submodule(previous.name)
            sources[layer.name] = Source(previous.name, _group(layer.name, module, previous.name, src))
        if layer.name not in heads:
            previous = layer
    return sources


def _group(name: str, module: nn.Module, src_name: str, src: nn.Module) -> int:
    units = n_units(src)
    if isinstance(module, nn.Conv2d):
        if module.groups == 1 and isinstance(src, nn.Conv2d) and module.in_channels == units:
            return 1
    elif n_inputs(module) % units == 0:
        return n_inputs(module) // units
    raise UnsupportedModelError(
        f"RNF isolation cannot tell which units feed {name!r}: it does not read the {units} units of {src_name!r}, "
        "the unit layer registered before it, and the model's data flow was not traced (RNF traces it from each "
        "experience's first sample once training starts)."
    )


def input_mask(module: nn.Module, source: Source, keep: Mapping[str, Tensor]) -> Tensor:
    """Boolean mask over ``module.weight``'s input axis: True for inputs from kept source units
    (``keep``: per source layer), broadcastable to the weight; per output row for a grouped conv."""
    weight = weight_of(module)
    cols = torch.cat([keep[layer].to(weight.device).repeat_interleave(group) for layer, group in source.parts])
    tail = [1] * (weight.dim() - 2)
    if source.groups == 1:
        return cols.view([1, -1, *tail])
    rows = cols.view(source.groups, -1).repeat_interleave(weight.shape[0] // source.groups, 0)
    return rows.view([*rows.shape, *tail])


def isolated_weights(model: nn.Module, sources: dict[str, Source | None], keep: dict[str, Tensor]) -> dict[str, Tensor]:
    """Weights of every layer with its inputs from non-kept source units zeroed (nothing in place).

    With these weights (e.g. through ``torch.func.functional_call``), the output of a kept unit,
    and of a head, depends on kept units only: the model as the kept sub-network computes it.
    """
    out: dict[str, Tensor] = {}
    for name, source in sources.items():
        if source is None:
            continue
        module = model.get_submodule(name)
        out[f"{name}.weight"] = weight_of(module) * input_mask(module, source, keep)
    return out


@torch.no_grad()
def sever(model: nn.Module, name: str, source: Source | None, rows: Tensor,
          keep: Mapping[str, Tensor]) -> Tensor | None:
    """Zero the weights of units ``rows`` of layer ``name`` from source units outside ``keep`` (per
    source layer; in place).

    Returns the boolean mask of the zeroed weight entries (``None`` when nothing is cut), so a
    caller that keeps training those units can hold the entries at zero.
    """
    if source is None or not rows.any():
        return None
    weight = weight_of(model.get_submodule(name))
    cut = ~input_mask(model.get_submodule(name), source, keep) & rows.to(weight.device).view(
        [-1] + [1] * (weight.dim() - 1)
    )
    weight.masked_fill_(cut, 0)
    return cut
