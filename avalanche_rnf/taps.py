"""The features that recognise a task, read at the inputs of chosen layers.

:class:`FeatureTap` records, on every forward pass, what a layer reads from each unit feeding it
(:func:`unit_statistics`: a unit's value, or for a conv channel its mean and spread over
positions) and tells which of those features a task's kept units provide.
:func:`recognition_taps` chooses the layers (``TaskInference.layers``): ``"last"``, the output
layer's input; ``"all"``, the input of every layer that its units feed; ``"input"``, what the
first unit layer reads (the model's input when that layer comes first), shared by every task;
``"all+input"``, ``"all"`` and the model's input values (:func:`~avalanche_rnf.pooled.input_values`,
read at the model itself, so images stay images even where the model flattens them) for
:class:`~avalanche_rnf.pooled.JointRecognizer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from avalanche_rnf.isolation import unit_sources
from avalanche_rnf.layers import UnitLayer, n_inputs, n_units
from avalanche_rnf.pooled import input_values


def unit_statistics(inputs: Tensor, units: int) -> Tensor:
    """What a layer reads from each of the ``units`` units feeding it, one row per input.

    A unit read at one position (a Linear unit) gives its value: ``[N, units]``. A unit read at
    several positions (a conv channel, or a flattened channel read by a Linear) gives the mean and
    the standard deviation over them: ``[N, 2 * units]``, all means first.
    """
    x = inputs.detach().reshape(len(inputs), units, -1).float()
    if x.shape[-1] == 1:
        return x[..., 0]
    return torch.cat([x.mean(-1), x.std(-1)], 1)


@dataclass(frozen=True)
class Tap:
    """Read the input of ``layer``, which ``units`` units of the layer ``source`` provide.

    ``source`` ``None``: ``layer`` reads the model's input (``units`` its input features or
    channels; ``layer`` ``""`` is the model itself), which no task owns: every task's statistics
    use all of it.
    """

    layer: str
    source: str | None
    units: int
    read: Callable[[Tensor], Tensor] | None = None  # the features from the layer's input; None: unit_statistics


class FeatureTap:
    """Records :func:`unit_statistics` at the inputs of some layers on every forward pass.

    Use as a context manager (the hooks are removed on exit); :meth:`pop` gives the last forward
    pass's features, the taps' statistics side by side in the order given.
    """

    def __init__(self, model: nn.Module, taps: Sequence[Tap]) -> None:
        if not taps:
            raise ValueError("a FeatureTap needs at least one layer to read")
        self.taps = list(taps)
        self.widths: dict[str, int] = {}
        self._parts: dict[str, Tensor] = {}
        self._handles = [model.get_submodule(tap.layer).register_forward_pre_hook(self._hook(tap)) for tap in self.taps]

    def _hook(self, tap: Tap) -> Any:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            if not inputs or not isinstance(inputs[0], Tensor):
                where = repr(tap.layer) if tap.layer else "the model"
                raise TypeError(f"task inference reads the tensor passed first to {where}, but it got "
                                f"{type(inputs[0]).__name__ if inputs else 'no argument'}; pass the input as a "
                                "tensor, or TaskInference(layers='all') to recognise tasks from the units alone")
            part = tap.read(inputs[0].detach()) if tap.read else unit_statistics(inputs[0], tap.units)
            self.widths[tap.layer] = part.shape[1]
            self._parts[tap.layer] = part

        return hook

    def pop(self) -> Tensor:
        """``[N, features]`` of the last forward pass (every tapped layer must have run)."""
        missing = [tap.layer for tap in self.taps if tap.layer not in self._parts]
        if missing:
            raise RuntimeError(f"the forward pass did not run {', '.join(map(repr, missing))}")
        parts, self._parts = self._parts, {}
        return torch.cat([parts[tap.layer] for tap in self.taps], 1)

    def shared(self) -> Tensor:
        """Indices of the features of the taps no task owns (the model's input; after a forward pass)."""
        nothing = {t.source: torch.zeros(t.units, dtype=torch.bool) for t in self.taps if t.source is not None}
        return self.columns(nothing)

    def columns(self, keep: dict[str, Tensor]) -> Tensor:
        """Indices of the features that the ``keep`` units (per source layer) provide (after a forward
        pass); all of a tap of the model's input."""
        columns, offset = [], 0
        for tap in self.taps:
            width = self.widths[tap.layer]
            if tap.source is None:
                columns.append(torch.arange(offset, offset + width))
            else:
                units = keep[tap.source].flatten().bool().cpu().nonzero().flatten()
                columns += [units + offset + block * tap.units for block in range(width // tap.units)]
            offset += width
        return torch.cat(columns) if columns else torch.zeros(0, dtype=torch.long)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def recognition_taps(model: nn.Module, layers: list[UnitLayer], which: str) -> list[Tap]:
    """The layers whose inputs recognise a task (``which``: ``TaskInference.layers``), with the units feeding them."""
    sources = unit_sources(model, layers, set())
    output = layers[-1].name
    last = sources[output]
    if last is None:
        raise ValueError("task_inference needs a hidden layer in front of the output layer")
    first = layers[0].name
    if which == "input":
        return [Tap(first, None, n_inputs(model.get_submodule(first)))]
    # a tap reads a layer's input: inputs concatenated from several layers are left out, so units that only
    # feed concatenations take no part in recognition
    fed = {name: source.layer for name, source in sources.items() if source is not None and not source.more}
    if which == "last":
        last.only(output)
    names = [output] if which == "last" else [layer.name for layer in layers if layer.name in fed]
    own = [Tap(n, fed[n], n_units(model.get_submodule(fed[n]))) for n in names]
    if which != "all+input":
        return own
    # the model's own input, not the first layer's: a flattening model (an MLP) still shows images as images
    return own + [Tap("", None, n_inputs(model.get_submodule(first)), read=input_values)]
