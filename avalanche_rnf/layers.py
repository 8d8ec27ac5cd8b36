"""Find the units RNF scores and freezes: ``nn.Linear`` neurons and ``nn.Conv2d`` filters.

A *unit layer* is a Linear or Conv2d module; its units are the output neurons / filters.
A BatchNorm that is the very next module (in registration order, as zennit's
``SequentialMergeBatchNorm`` sees it, with one channel per unit) belongs to it: the
BatchNorm's affine parameters and running statistics of a frozen unit's channel are frozen
together with the unit. Read from the model's data flow (:mod:`~avalanche_rnf.graph`), a unit
layer is a group of coupled modules whose output channels are the same units. Every tensor RNF
freezes is indexed by unit along dimension 0, so one boolean vector per layer describes all of them.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence, cast

from torch import Tensor, nn

UNIT_TYPES = (nn.Linear, nn.Conv2d)
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
_UNIT_PARAMS = ("weight", "bias")
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")
"""A BatchNorm's tensors whose dimension 0 indexes its channels."""


class UnsupportedModelError(ValueError):
    """The model cannot be frozen unit by unit (no unit layer, or parameters RNF cannot own)."""


@dataclass(frozen=True)
class Source:
    """The unit layer feeding a module, and how many input features each of its units provides.

    ``more``: the further ``(layer, group)`` parts of a concatenated input, in channel order after
    ``layer``'s. ``groups``: a grouped convolution's groups (each output channel reads only its
    group's share of the inputs).
    """

    layer: str
    group: int
    more: tuple[tuple[str, int], ...] = ()
    groups: int = 1

    @property
    def parts(self) -> tuple[tuple[str, int], ...]:
        """``(layer, features per unit)`` of every part of the input, in order."""
        return ((self.layer, self.group), *self.more)

    def only(self, module: str) -> str:
        """The one layer feeding ``module``; raises where its input is concatenated from several."""
        if self.more:
            raise UnsupportedModelError(
                f"RNF needs {module!r} to read one unit layer, but its input is concatenated from "
                f"{[layer for layer, _ in self.parts]}; put a Linear/Conv2d in front of it.")
        return self.layer


@dataclass(frozen=True)
class UnitLayer:
    """A Linear/Conv2d module (by name) and the BatchNorm that normalises its channels, if any.

    Read from the model's data flow (:mod:`~avalanche_rnf.graph`), a unit layer is a group of
    coupled channels: ``coupled`` lists the other modules (with their norms) whose output channels
    are the same units, e.g. every conv adding into a residual stream, and ``reads`` the
    :class:`Source` of every module of the group (``None``: reads the model input, or its own
    channels, as a depthwise conv). Without it (``reads is None``) the layer stands alone and its
    source is read from registration order.
    """

    name: str
    norm: str | None = None
    coupled: tuple[tuple[str, str | None], ...] = ()
    reads: tuple[tuple[str, Source | None], ...] | None = None

    @property
    def modules(self) -> tuple[tuple[str, str | None], ...]:
        """``(module, norm)`` of every module whose output channels are this layer's units."""
        return ((self.name, self.norm), *self.coupled)

    @property
    def norms(self) -> tuple[str, ...]:
        """Names of the BatchNorms that normalise this layer's units (one per module that has one)."""
        return tuple(norm for _, norm in self.modules if norm is not None)

    def tensor_names(self, model: nn.Module, norms: bool = True) -> Iterator[str]:
        """Names of the parameters and buffers whose dimension 0 indexes this layer's units
        (``norms=False``: without its BatchNorms' tensors)."""
        owners: list[tuple[str, tuple[str, ...]]] = []
        for unit, norm in self.modules:
            owners.append((unit, _UNIT_PARAMS))
            if norm is not None and norms:
                owners.append((norm, NORM_TENSORS))
        for owner, attrs in owners:
            module = model.get_submodule(owner)
            for attr in attrs:
                if getattr(module, attr, None) is not None:
                    yield f"{owner}.{attr}"


def n_units(module: nn.Module) -> int:
    """Number of units of a Linear (out features) or Conv2d (out channels) module."""
    return int(module.out_features if isinstance(module, nn.Linear) else module.out_channels)  # type: ignore[arg-type]


def weight_of(module: nn.Module) -> Tensor:
    """The weight of a Linear or Conv2d module."""
    return cast(Tensor, module.weight)


def n_inputs(module: nn.Module) -> int:
    """Number of inputs of a Linear (in features) or Conv2d (in channels) module."""
    return int(module.in_features if isinstance(module, nn.Linear) else module.in_channels)  # type: ignore[arg-type]


def find_unit_layers(model: nn.Module, strict: bool = True) -> list[UnitLayer]:
    """List the unit layers of ``model`` in registration order.

    Raises :class:`UnsupportedModelError` when the model has no Linear/Conv2d layer, or (with
    ``strict``) when it holds parameters that RNF cannot assign to units: modules such as
    ``nn.LSTM``, ``nn.LayerNorm`` or ``nn.Conv1d``, or a BatchNorm that is not the module right
    after a unit layer of the same width (zennit could not merge it, and LRP would pass through it
    as a plain gradient). Their weights would keep training and change what old tasks
    compute; with ``strict=False`` they are left trainable (the caller decides whether to warn).
    """
    layers: list[UnitLayer] = []
    unsupported: list[str] = []
    previous_leaf: nn.Module | None = None
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:  # containers: only their own parameters matter
            if any(p.requires_grad for p in module.parameters(recurse=False)):
                unsupported.append(f"{name or '<root>'} ({type(module).__name__} own parameters)")
            continue
        if isinstance(module, UNIT_TYPES):
            layers.append(UnitLayer(name))
        elif isinstance(module, NORM_TYPES):
            follows = isinstance(previous_leaf, UNIT_TYPES) and n_units(previous_leaf) == module.num_features
            if follows and module.affine and module.track_running_stats:
                layers[-1] = UnitLayer(layers[-1].name, norm=name)
            else:
                unsupported.append(
                    f"{name} ({type(module).__name__} must come right after a Linear/Conv2d with "
                    f"{module.num_features} units, with affine parameters and running statistics)"
                )
        elif any(p.requires_grad for p in module.parameters(recurse=False)):
            unsupported.append(f"{name or '<root>'} ({type(module).__name__})")
        previous_leaf = module
    if not layers:
        raise UnsupportedModelError(
            f"{type(model).__name__} has no nn.Linear or nn.Conv2d layer, so RNF has no units to score "
            "and freeze. RNF needs a model built from Linear/Conv2d layers (plus BatchNorm, activations, "
            "pooling, dropout)."
        )
    if unsupported and strict:
        raise UnsupportedModelError(
            "RNF cannot freeze the parameters of: " + "; ".join(unsupported) + ". RNF freezes units of "
            "nn.Linear and nn.Conv2d layers and BatchNorm1d/2d layers placed right after them; other "
            "trainable parameters would keep changing what old tasks compute. Replace these modules, freeze "
            "them yourself (requires_grad=False), or pass strict=False to leave them trainable."
        )
    return layers


def unsupported_parameters(model: nn.Module, layers: list[UnitLayer]) -> list[str]:
    """Names of trainable parameters that belong to no unit layer (left to train with ``strict=False``)."""
    owned = {n for layer in layers for n in layer.tensor_names(model)}
    return [n for n, p in model.named_parameters() if p.requires_grad and n not in owned]


def scan(model: nn.Module, strict: bool, warned: set[str]) -> list[UnitLayer]:
    """:func:`find_unit_layers`, warning once (noted in ``warned``) about parameters left trainable."""
    layers = find_unit_layers(model, strict=strict)
    loose = unsupported_parameters(model, layers)
    if loose and "unsupported" not in warned:
        warned.add("unsupported")
        warnings.warn(f"RNF leaves these parameters trainable (strict=False): {', '.join(loose)}", stacklevel=4)
    return layers


@contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode (BatchNorm statistics untouched), then restore every module's mode."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


@contextmanager
def pre_hooks(model: nn.Module, hooks: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """Each ``hooks[name]`` as a forward pre-hook on module ``name`` for the ``with`` block, removed however
    it ends."""
    with ExitStack() as stack:
        for name, hook in hooks.items():
            stack.enter_context(model.get_submodule(name).register_forward_pre_hook(hook))
        yield


@contextmanager
def unit_hooks(model: nn.Module, layers: Sequence[UnitLayer], hook: Callable[[str], Any]) -> Iterator[None]:
    """``hook(layer.name)`` as a forward hook on each module of every unit layer (a coupled group's
    modules share their layer's name) for the ``with`` block, removed however it ends."""
    with ExitStack() as stack:
        for layer in layers:
            for module, _ in layer.modules:
                stack.enter_context(model.get_submodule(module).register_forward_hook(hook(layer.name)))
        yield
