"""The output layer task inference works on: the last unit layer registered, a Linear over all classes,
and the columns of its weight that read given units of the layer feeding it."""

from __future__ import annotations

from torch import Tensor, nn

from avalanche_rnf.isolation import Source, input_mask, unit_sources
from avalanche_rnf.layers import UnitLayer, weight_of


def check_output_layer(model: nn.Module, layers: list[UnitLayer], multi_head: bool) -> nn.Linear:
    """Task inference needs a single head: the last unit layer registered, a Linear over all classes."""
    name = layers[-1].name
    module = model.get_submodule(name)
    if not isinstance(module, nn.Linear) or multi_head:
        raise ValueError(
            "task_inference needs a single-head model whose last layer is a Linear over all classes "
            f"(class-incremental); {name!r} is {type(module).__name__}"
            + (" inside a multi-head classifier: task labels are given, use task_inference=False." if
               multi_head else ".")
        )
    return module


def output_source(model: nn.Module, layers: list[UnitLayer]) -> Source:
    """The layer (and channel grouping) feeding the output layer: one layer, not a concatenation."""
    source = unit_sources(model, layers, set())[layers[-1].name]
    if source is None:
        raise ValueError("task_inference needs a hidden layer in front of the output layer")
    source.only(layers[-1].name)
    return source


def output_columns(model: nn.Module, layers: list[UnitLayer], units: Tensor) -> Tensor:
    """Boolean mask over the output layer's weight: its columns from ``units`` of the layer feeding it."""
    module = model.get_submodule(layers[-1].name)
    source = output_source(model, layers)
    return input_mask(module, source, {source.layer: units}).expand_as(weight_of(module))


def check_single_head(model: nn.Module, layers: list[UnitLayer]) -> None:
    """Raise unless task inference can work on ``model``: a Linear output layer over all classes with a
    hidden layer in front of it."""
    check_output_layer(model, layers, False)
    output_source(model, layers)
