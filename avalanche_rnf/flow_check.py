"""Check a traced data flow numerically: does each module read the units the trace says it reads?

The tracer follows channels through the ops it knows. An op it cannot follow (an index
permutation, a channel shuffle, a reduction over channels) leaves channels where they were in
its eyes, and isolation would then cut the wrong weights without a word. Two forward passes tell:
one with the outputs of every unit layer outside a random half of its units set to zero (after
their BatchNorms), one with all of them zero. Wherever a module's input comes only from zeroed
units, as the trace maps it, it must then equal that input in the all-zero pass, exactly.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import Source, UnitLayer, UnsupportedModelError, evaluating, n_units

Forward = Callable[[nn.Module, Tensor, Tensor], Tensor]


def _channel_view(module: nn.Module, mask: Tensor, dims: int) -> Tensor:
    """``mask`` over a module's channels, shaped to broadcast over an input or output of ``dims`` dimensions:
    channels are dimension 1 of a conv's maps and the last dimension of a Linear's features."""
    if isinstance(module, nn.Linear):
        return mask
    return mask.view([1, -1] + [1] * (dims - 2))


def _inputs_with(model: nn.Module, layers: list[UnitLayer], live: dict[str, Tensor],
                 readers: list[str], example: tuple[Tensor, Tensor], forward: Forward) -> dict[str, Tensor]:
    """The inputs of ``readers`` in one forward pass with each unit layer's outputs outside ``live`` zeroed."""
    seen: dict[str, Tensor] = {}
    handles = []

    def zero(mask: Tensor):
        return lambda module, _inputs, output: output * _channel_view(module, mask, output.dim()).to(output)

    def record(name: str):
        return lambda _module, inputs: seen.__setitem__(name, inputs[0].detach())

    try:
        for layer in layers:
            for module, norm in layer.modules:
                target = model.get_submodule(norm or module)
                handles.append(target.register_forward_hook(zero(live[layer.name])))
        for name in readers:
            handles.append(model.get_submodule(name).register_forward_pre_hook(record(name)))
        with evaluating(model), torch.no_grad():
            forward(model, *example)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def check_sources(model: nn.Module, layers: list[UnitLayer], sources: dict[str, Source | None],
                  example: tuple[Tensor, Tensor], forward: Forward) -> None:
    """Raise :class:`UnsupportedModelError` where a module's input changes with units the traced
    ``sources`` say it does not read."""
    readers = [name for name, source in sources.items() if source is not None]
    if not readers:
        return
    generator = torch.Generator().manual_seed(0)
    live = {layer.name: torch.rand(n_units(model.get_submodule(layer.name)), generator=generator) < 0.5
            for layer in layers}
    dead = {name: torch.zeros_like(mask) for name, mask in live.items()}
    half = _inputs_with(model, layers, live, readers, example, forward)
    none = _inputs_with(model, layers, dead, readers, example, forward)
    for name in readers:
        if name not in half:  # did not run: another task's head
            continue
        source = sources[name]
        assert source is not None
        module = model.get_submodule(name)
        zeroed = torch.cat([~live[layer].repeat_interleave(group) for layer, group in source.parts])
        where = _channel_view(module, zeroed, half[name].dim()).to(half[name].device)
        if not torch.allclose(half[name] * where, none[name] * where, rtol=0, atol=0, equal_nan=True):
            raise UnsupportedModelError(
                f"RNF cannot isolate {name!r}: traced, it reads the units of "
                f"{[layer for layer, _ in source.parts]} in order, but a forward pass shows inputs that change "
                "with units it should not read (a channel permutation, shuffle or mix the tracer cannot follow). "
                "RNF supports models that keep their channels in order from layer to layer (concatenating "
                "whole layers is fine)."
            )
