"""Check a traced data flow numerically: does each module read the units the trace says it reads?

The tracer follows channels through the ops it knows. An op it cannot follow (an index
permutation, a channel shuffle, a normalisation or gate computed over channels) leaves channels
where they were in its eyes, and isolation would then cut the wrong weights without a word.

The check replaces the output of every unit layer (after its BatchNorm) by random values, so
what a module reads depends on nothing but the parameter-free operations between unit layers,
the part the trace describes. After a base pass, the units are split into two sets by one bit of
their index, for every bit (so any two units fall into different sets at least once), and two
passes run per split: one with only the second set's values changed, one with only the first's.
An input that the trace maps to a unit of the first set must not move when only the second set
changes, and the reverse.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import Source, UnitLayer, UnsupportedModelError, evaluating, n_units, pre_hooks
from avalanche_rnf.relevance import Forward


def _channels(module: nn.Module, x: Tensor, picked: Tensor) -> Tensor:
    """``x``'s channels ``picked`` (dimension 1 of a conv's maps, the last of a Linear's features)."""
    return x.index_select(x.dim() - 1 if isinstance(module, nn.Linear) else 1, picked.to(x.device))


def _inputs(model: nn.Module, layers: list[UnitLayer], values: dict[str, Tensor], readers: list[str],
            example: tuple[Tensor, Tensor], forward: Forward) -> dict[str, Tensor]:
    """The inputs of ``readers`` in one forward pass with each unit layer's outputs replaced: channel
    ``u`` of layer ``L`` takes the value ``values[L][u]`` at every position."""
    seen: dict[str, Tensor] = {}

    def replace(module: nn.Module, unit_values: Tensor):
        def hook(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            view = [1] * output.dim()
            view[output.dim() - 1 if isinstance(module, nn.Linear) else 1] = -1
            return unit_values.view(view).to(output).expand_as(output).contiguous()
        return hook

    def record(name: str):
        return lambda _module, inputs: seen.__setitem__(name, inputs[0].detach().clone())

    with ExitStack() as stack:
        for layer in layers:
            for module, norm in layer.modules:
                stack.enter_context(model.get_submodule(norm or module).register_forward_hook(
                    replace(model.get_submodule(module), values[layer.name])))
        stack.enter_context(pre_hooks(model, {name: record(name) for name in readers}))
        with evaluating(model), torch.no_grad():
            forward(model, *example)
    return seen


def check_sources(model: nn.Module, layers: list[UnitLayer], sources: dict[str, Source],
                  example: tuple[Tensor, Tensor], forward: Forward) -> None:
    """Raise :class:`UnsupportedModelError` where an input of a module of ``sources`` moves with units
    other than the ones the traced source maps it to."""
    if not sources:
        return
    widths = {layer.name: n_units(model.get_submodule(layer.name)) for layer in layers}
    generator = torch.Generator().manual_seed(0)

    def draw() -> dict[str, Tensor]:
        return {name: torch.rand(width, generator=generator, dtype=torch.float64) + 0.5
                for name, width in widths.items()}

    readers = list(sources)
    base, other = draw(), draw()
    seen = _inputs(model, layers, base, readers, example, forward)
    for bit in range(max(1, (max(widths.values()) - 1).bit_length())):
        first = {name: (torch.arange(width) >> bit) & 1 == 1 for name, width in widths.items()}
        mixed = [{name: torch.where(first[name] == keep_first, base[name], other[name]) for name in widths}
                 for keep_first in (True, False)]
        changed = [_inputs(model, layers, values, readers, example, forward) for values in mixed]
        for name, source in sources.items():
            if name not in seen:  # did not run: another task's head
                continue
            module = model.get_submodule(name)
            in_first = torch.cat([first[layer].repeat_interleave(group) for layer, group in source.parts])
            for keep_first, after in zip((True, False), changed):
                stays = (in_first == keep_first).nonzero().flatten()
                before, now = _channels(module, seen[name], stays), _channels(module, after[name], stays)
                if not torch.allclose(before, now, rtol=0, atol=0, equal_nan=True):
                    raise UnsupportedModelError(
                        f"RNF cannot isolate {name!r}: traced, it reads the units of "
                        f"{[layer for layer, _ in source.parts]} in order, but a forward pass shows inputs that "
                        "change with units it should not read (a channel permutation, shuffle, or a normalisation "
                        "or gate computed over channels, which the tracer cannot follow). RNF supports models that "
                        "keep their channels apart and in order from layer to layer (concatenating whole layers is "
                        "fine)."
                    )
