"""Units read from the model's data flow: coupled channel groups and which group feeds which.

Registration order is not the data flow: residual additions, shortcuts, depthwise convolutions
and squeeze-and-excitation gates tie the channels of several layers together. RNF traces one
forward pass with Torch-Pruning's ``DependencyGraph`` (the tracer structured pruning relies on;
it follows the autograd graph of a real call, so models with task labels and data-dependent
control flow trace too) and turns its channel groups into :class:`~avalanche_rnf.layers.UnitLayer`
groups:

- a unit is a channel shared by every Linear/Conv2d (and its BatchNorm) whose outputs are coupled,
  e.g. the convs adding into one residual stream; it is scored, frozen and isolated as one;
- each module's :class:`~avalanche_rnf.layers.Source` is the group its input channels come from
  (``None`` for the model input, and for a depthwise conv, which reads its own units), or the
  groups of a concatenation one after the other; a grouped conv's outputs read their group's share.

The sources are then checked numerically (:mod:`~avalanche_rnf.flow_check`), so an op the tracer
cannot follow (a channel shuffle) is an error, not a wrong isolation.

:class:`DataFlow` caches the result per model structure, so a plugin may ask every time.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Iterable, cast

import torch
from torch import Tensor, nn

from avalanche_rnf.flow_check import check_sources
from avalanche_rnf.layers import Source, UnitLayer, UnsupportedModelError, evaluating, n_inputs, n_units
from avalanche_rnf.relevance import Forward, lean_batch_size

UNIT_TYPES = (nn.Linear, nn.Conv2d)


def _dependency_graph(model: nn.Module, example: tuple[Tensor, Tensor], forward: Forward) -> Any:
    import torch_pruning as tp  # imported here: it is only needed once a model is traced

    logging.getLogger("torch_pruning").setLevel(logging.ERROR)
    try:
        with evaluating(model), torch.enable_grad():
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example, forward_fn=lambda m, ex: forward(m, *ex), verbose=False)
    except Exception as error:  # the tracer's own errors name no module the user knows
        raise UnsupportedModelError(
            f"RNF could not trace the data flow of {type(model).__name__} on one input of the experience "
            f"({type(error).__name__}: {error}). RNF reads which channels feed which from one forward pass; "
            "make the model callable as model(x) (or model(x, task_labels) for multi-task models) with "
            "Linear/Conv2d/BatchNorm layers and tensor operations in between."
        ) from error


def _groups(model: nn.Module, graph: Any) -> list[list[tuple[str, str, list[int], list[int]]]]:
    """Per coupled group: ``(module, "out"|"in", indices, root indices)`` of its Linear/Conv2d/BatchNorm members."""
    names = {module: name for name, module in model.named_modules()}
    out = []
    for group in graph.get_all_groups(root_module_types=UNIT_TYPES):
        members = []
        for item in group.items:
            module = item.dep.target.module
            if not isinstance(module, (*UNIT_TYPES, nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            kind = "out" if graph.is_out_channel_pruning_fn(item.dep.handler) else "in"
            members.append((names[module], kind, [int(i) for i in item.idxs], [int(i) for i in item.root_idxs]))
        out.append(members)
    return out


def _source(model: nn.Module, name: str, reads: list[tuple[str, list[int], list[int]]]) -> Source | None:
    """The :class:`Source` of module ``name`` from the groups its input channels belong to: one unit
    layer, or several concatenated one after the other, each unit's features side by side."""
    module = model.get_submodule(name)
    if not reads:
        return None
    width = n_inputs(module)
    layer_of: list[str | None] = [None] * width
    unit = torch.full((width,), -1, dtype=torch.long)
    for layer, idxs, roots in reads:
        for i, root in zip(idxs, roots):
            layer_of[i], unit[i] = layer, root
    parts: list[tuple[str, int]] = []
    start = 0
    while start < width:
        part = layer_of[start]
        end = start
        while end < width and layer_of[end] == part:
            end += 1
        units = n_units(model.get_submodule(part)) if part is not None else 0
        group = (end - start) // units if units and (end - start) % units == 0 else 0
        if not group or not torch.equal(unit[start:end], torch.arange(units).repeat_interleave(group)):
            origin = f"the units of {part!r} in order" if part is not None else "any unit layer the trace follows"
            raise UnsupportedModelError(
                f"RNF cannot isolate {name!r}: its inputs {start}-{end - 1} do not read {origin} (each unit's "
                "features side by side, as torch.flatten lays out NCHW, and concatenated layers one after the "
                "other); RNF cannot tell which units feed which of its inputs. Flatten channels first (NCHW) "
                "before a Linear layer, and concatenate whole layers."
            )
        parts.append((cast(str, part), group))
        start = end
    groups = module.groups if isinstance(module, nn.Conv2d) else 1
    return Source(parts[0][0], parts[0][1], tuple(parts[1:]), groups)


def traced_layers(model: nn.Module, found: list[UnitLayer], example: tuple[Tensor, Tensor],
                  forward: Forward, strict: bool = True) -> list[UnitLayer]:
    """``found`` (unit layers in registration order, with their norms) grouped and connected by the
    data flow of ``forward(model, *example)``. A group is named after its first registered module;
    modules that did not run (other tasks' heads) read what a sibling head of the same width reads.
    A BatchNorm that belongs to no unit layer (left trainable with ``strict=False``) is passed over. The
    sources are checked (:func:`~avalanche_rnf.flow_check.check_sources`): an error, or with ``strict=False``
    (other trainable or mixing modules between unit layers are then accepted) a warning."""
    norms = {layer.name: layer.norm for layer in found}
    norm_of = {norm: name for name, norm in norms.items() if norm is not None}  # BatchNorm -> its layer
    order = {layer.name: i for i, layer in enumerate(found)}
    groups = _groups(model, _dependency_graph(model, example, forward))
    owner: dict[str, str] = {}  # module -> name of its group
    members: dict[str, list[str]] = {}
    reads: dict[str, list[tuple[str, list[int], list[int]]]] = {}
    own: dict[str, list[tuple[str, list[int], list[int]]]] = {}  # depthwise convs: their own group's channels
    for group in groups:
        outs = sorted({m for m, kind, _, _ in group if kind == "out" and m in order}, key=order.__getitem__)
        if not outs:
            continue
        name = outs[0]
        for module, kind, idxs, roots in group:
            if kind == "out" and module in order:
                if idxs != roots or n_units(model.get_submodule(module)) != n_units(model.get_submodule(name)):
                    raise UnsupportedModelError(_uncoupled(model, module, name))
                owner[module] = name
                if _depthwise(model.get_submodule(module)):  # reads the channels of its own group, one to one
                    own[module] = [(name, idxs, roots)]
            elif kind == "out" and module in norm_of and norm_of[module] not in outs:
                raise UnsupportedModelError(
                    f"RNF cannot freeze {module!r}: it normalises channels of {name!r} but does not follow a "
                    "Linear/Conv2d directly. Place each BatchNorm right after the layer it normalises."
                )
            elif kind == "in" and module in order and not _reads_itself(model, module, group):
                reads.setdefault(module, []).append((name, idxs, roots))
        members[name] = outs
    layers = []
    for layer in found:
        if layer.name in owner and owner[layer.name] != layer.name:
            continue  # coupled into an earlier group
        if layer.name not in owner:  # did not run: another task's head
            sibling = _sibling(model, layer.name, owner, order)
            reads[layer.name] = reads.get(sibling, [])
            members[layer.name] = [layer.name]
        coupled = members[layer.name]
        layers.append(UnitLayer(
            layer.name, layer.norm, tuple((m, norms[m]) for m in coupled[1:]),
            tuple((m, _source(model, m, reads.get(m, []))) for m in coupled)))
    checked = {m: source for layer in layers for m, source in layer.reads or () if source is not None}
    checked.update({m: cast(Source, _source(model, m, parts)) for m, parts in own.items()})
    try:
        check_sources(model, layers, checked, example, forward)
    except UnsupportedModelError as error:
        if strict:
            raise
        warnings.warn(f"{error} With strict=False RNF goes on; isolation there is not exact.", stacklevel=2)
    return layers


def _depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and 1 < module.groups == module.in_channels == module.out_channels


def _reads_itself(model: nn.Module, module: str, group: Iterable[Any]) -> bool:
    """A depthwise conv whose output channels are in the same group as its input channels."""
    return _depthwise(model.get_submodule(module)) and any(m == module and kind == "out" for m, kind, _, _ in group)


def _uncoupled(model: nn.Module, module: str, name: str) -> str:
    """Why the output channels of ``module`` cannot be the units of group ``name``."""
    for member in (module, name):
        conv = model.get_submodule(member)
        if isinstance(conv, nn.Conv2d) and 1 < conv.groups and not _depthwise(conv):
            return (f"RNF cannot read the units of the grouped convolution {member!r} (groups={conv.groups}, "
                    f"{conv.in_channels} -> {conv.out_channels} channels): the tracer couples its channels as if it "
                    "were depthwise. Grouped convolutions with several output channels per group are supported.")
    return (f"RNF cannot couple the output channels of {module!r} with those of {name!r} one to one "
            "(split or concatenated channels); such models are not supported yet.")


def _sibling(model: nn.Module, name: str, owner: dict[str, str], order: dict[str, int]) -> str:
    parent = name.rsplit(".classifiers.", 1)[0] if ".classifiers." in name else None
    width = n_inputs(model.get_submodule(name))
    for other in order:
        if other in owner and parent is not None and other.startswith(f"{parent}.classifiers.") and \
                n_inputs(model.get_submodule(other)) == width:
            return other
    raise UnsupportedModelError(
        f"RNF traced one forward pass of the model, and {name!r} did not run in it. RNF can only keep modules "
        "whose inputs it can trace; modules that run only for some inputs are supported as the task heads of "
        "Avalanche's MultiHeadClassifier."
    )


class DataFlow:
    """:func:`traced_layers`, cached per model structure (parameter names and shapes)."""

    def __init__(self, forward: Forward, strict: bool = True) -> None:
        self.forward, self.strict = forward, strict
        self.example: tuple[Tensor, Tensor] | None = None
        """Inputs and task labels of the current experience to trace with; ``None``: not traced."""
        self._key: Any = None
        self._layers: list[UnitLayer] = []

    def layers(self, model: nn.Module, found: list[UnitLayer]) -> list[UnitLayer]:
        """``found`` as traced from :attr:`example` (as found, before an example is known)."""
        if self.example is None:
            return found
        key = (tuple((n, tuple(p.shape)) for n, p in model.named_parameters()), tuple(self.example[0].shape),
               tuple(found))
        if key != self._key:
            self._layers = traced_layers(model, found, self.example, self.forward, self.strict)
            self._key = key
        return self._layers

    def lean(self, model: nn.Module, layers: list[UnitLayer], limit: int) -> int:
        """``limit`` samples per batch, or fewer where the model's activations are large
        (:func:`~avalanche_rnf.relevance.lean_batch_size` on :attr:`example`)."""
        return limit if self.example is None else min(limit, lean_batch_size(model, layers, self.forward,
                                                                             *self.example))
