"""Freezing that holds exactly: frozen unit masks and the values their tensors must keep.

Masking gradients alone does not keep weights fixed: momentum, weight decay, Adam and AdamW
move them anyway. :class:`FreezeState` therefore keeps a copy of every frozen value and writes
it back after each optimizer step (:meth:`FreezeState.restore`), and zeroes frozen gradients
before the step so that optimizer statistics and gradient clipping see only the free units
(:meth:`FreezeState.mask_grads`). A unit owns whole rows (dimension 0) of its tensors, so both
are one indexed row copy or fill per tensor, over the frozen rows only.

Everything is keyed by name, never by tensor object: Avalanche's dynamic modules replace their
``nn.Linear`` when they grow. A layer that grew keeps its frozen units, and its new units are free.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import UnitLayer, n_units


def tensor_by_name(model: nn.Module, name: str) -> Tensor:
    """The parameter or buffer of ``model`` called ``name`` (e.g. ``"features.1.running_mean"``)."""
    owner, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(owner), attr)


class FreezeState:
    """Frozen units per layer (boolean masks) and the frozen values of every tensor they own."""

    def __init__(self) -> None:
        self.unit_masks: dict[str, Tensor] = {}
        """Layer name -> boolean mask over its units (True: frozen)."""
        self.values: dict[str, Tensor] = {}
        """Tensor name -> its frozen entries, ``tensor[mask]`` in row-major order."""
        self.owners: dict[str, str] = {}
        """Tensor name -> name of the layer whose units index its dimension 0."""
        self.shapes: dict[str, tuple[int, ...]] = {}
        """Tensor name -> its shape past dimension 0 (only dimension 0 may grow)."""
        self._rows: dict[str, tuple[int, Tensor]] = {}

    def frozen_units(self, layer: str, n_units: int) -> Tensor:
        """Frozen-unit mask of ``layer``, extended with free units if the layer has grown to ``n_units``."""
        mask = self.unit_masks.get(layer)
        if mask is None:
            return torch.zeros(n_units, dtype=torch.bool)
        if n_units < mask.numel():
            raise RuntimeError(
                f"Layer {layer!r} shrank from {mask.numel()} to {n_units} units, but its units are frozen by "
                "RNF. Layers may grow (new units are free) but must not shrink or be rebuilt."
            )
        if n_units > mask.numel():
            mask = torch.cat([mask, mask.new_zeros(n_units - mask.numel())])
            self.unit_masks[layer] = mask
        return mask

    def frozen_fraction(self, layer: str) -> float:
        mask = self.unit_masks.get(layer)
        return 0.0 if mask is None or mask.numel() == 0 else float(mask.float().mean())

    def entry_mask(self, name: str, tensor: Tensor) -> Tensor:
        """Boolean mask of the frozen entries of ``tensor`` (whole rows)."""
        self._check_shape(name, tensor)
        units = self.frozen_units(self.owners[name], tensor.shape[0]).to(tensor.device)
        return units.view(-1, *([1] * (tensor.dim() - 1))).expand_as(tensor)

    def frozen_rows(self, name: str, tensor: Tensor) -> Tensor:
        """Indices of the frozen rows (units) of ``tensor``, ascending, cached per device and row count."""
        self._check_shape(name, tensor)
        cached = self._rows.get(name)
        if cached is not None and cached[0] == tensor.shape[0] and cached[1].device == tensor.device:
            return cached[1]
        units = self.frozen_units(self.owners[name], tensor.shape[0])  # raises if the layer shrank
        rows = units.nonzero().flatten().to(tensor.device)
        self._rows[name] = (tensor.shape[0], rows)
        return rows

    def _check_shape(self, name: str, tensor: Tensor) -> None:
        if tensor.shape[1:] != self.shapes[name]:
            raise RuntimeError(
                f"{name} changed shape from (*, {', '.join(map(str, self.shapes[name]))}) to {tuple(tensor.shape)} "
                "but holds units frozen by RNF. Only dimension 0 (the units) may grow."
            )

    @torch.no_grad()
    def freeze(self, model: nn.Module, layer: UnitLayer, new_units: Tensor, norms: bool = True) -> None:
        """Add ``new_units`` to the layer's frozen set and record the current values of all frozen units
        (``norms=False``: not those of its BatchNorms, which each task keeps instead)."""
        old = self.frozen_units(layer.name, new_units.numel())
        self.unit_masks[layer.name] = old | new_units.cpu().bool()
        for name in layer.tensor_names(model, norms):
            self.owners[name] = layer.name
            self._rows.pop(name, None)
            tensor = tensor_by_name(model, name)
            self.shapes[name] = tuple(tensor.shape[1:])
            if tensor.shape[0] != new_units.numel():
                raise RuntimeError(f"{name} has {tensor.shape[0]} rows but {layer.name} has {new_units.numel()} units")
            self.values[name] = tensor.detach()[self.frozen_rows(name, tensor)].reshape(-1).clone()

    def release(self, layer: str) -> None:
        """Unfreeze every unit of ``layer``."""
        self.unit_masks.pop(layer, None)
        for name in [n for n, owner in self.owners.items() if owner == layer]:
            for table in (self.values, self.owners, self.shapes, self._rows):
                table.pop(name, None)

    @torch.no_grad()
    def restore(self, model: nn.Module) -> None:
        """Write every frozen value back into ``model`` (bit-exact)."""
        for name, values in self.values.items():
            tensor = tensor_by_name(model, name)
            if values.device != tensor.device:
                values = self.values[name] = values.to(tensor.device)
            rows = self.frozen_rows(name, tensor)
            tensor.index_copy_(0, rows, values.view(rows.numel(), *tensor.shape[1:]))

    @torch.no_grad()
    def overall_fraction(self, model: nn.Module, layers: Iterable[str]) -> float:
        """Frozen fraction over all units of ``layers``."""
        layers = list(layers)
        total = sum(self.unit_masks[n].sum().item() for n in layers if n in self.unit_masks)
        units = sum(n_units(model.get_submodule(n)) for n in layers)
        return total / units if units else 0.0

    def mask_grads(self, model: nn.Module) -> None:
        """Zero the gradients of frozen entries, so only free units drive the optimizer."""
        for name in self.values:
            tensor = tensor_by_name(model, name)
            if isinstance(tensor, nn.Parameter) and tensor.grad is not None:
                tensor.grad.index_fill_(0, self.frozen_rows(name, tensor), 0)

    def nbytes(self) -> int:
        """Bytes kept between experiences: the unit masks and the frozen values."""
        tensors = list(self.unit_masks.values()) + list(self.values.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def state_dict(self) -> dict[str, Any]:
        return {
            "unit_masks": {k: v.cpu().clone() for k, v in self.unit_masks.items()},
            "values": {k: v.cpu().clone() for k, v in self.values.items()},
            "owners": dict(self.owners),
            "shapes": dict(self.shapes),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.unit_masks = {k: v.clone().bool() for k, v in state["unit_masks"].items()}
        self.values = {k: v.clone() for k, v in state["values"].items()}
        self.owners = dict(state["owners"])
        self.shapes = {k: tuple(v) for k, v in state["shapes"].items()}
        self._rows = {}


class EntryFreeze:
    """Frozen entries of single tensors, by boolean mask, for weights no unit owns whole rows of.

    A domain-incremental output layer is shared by every task, so its rows (the classes) cannot be
    frozen per task; what belongs to a task are its *columns*, the weights from the units it kept
    (:mod:`avalanche_rnf.isolation`). Those tensors are small, so a masked copy per step is cheap.
    """

    def __init__(self) -> None:
        self.masks: dict[str, Tensor] = {}
        """Tensor name -> boolean mask of its frozen entries (the tensor's shape)."""
        self.values: dict[str, Tensor] = {}
        """Tensor name -> its frozen entries, ``tensor[mask]``."""

    def _mask(self, name: str, tensor: Tensor) -> Tensor:
        mask = self.masks[name]
        if mask.shape != tensor.shape:
            raise RuntimeError(
                f"{name} changed shape from {tuple(mask.shape)} to {tuple(tensor.shape)} but holds entries frozen "
                "by RNF (a shared output layer must keep its size)."
            )
        if mask.device != tensor.device:
            mask = self.masks[name] = mask.to(tensor.device)
        return mask

    @torch.no_grad()
    def freeze(self, model: nn.Module, name: str, entries: Tensor) -> None:
        """Add ``entries`` (a boolean mask broadcastable to the tensor) to the frozen entries of ``name``."""
        tensor = tensor_by_name(model, name)
        entries = entries.to(tensor.device).bool().expand_as(tensor)
        mask = self._mask(name, tensor) | entries if name in self.masks else entries.clone()
        self.masks[name] = mask
        self.values[name] = tensor.detach()[mask].clone()

    @torch.no_grad()
    def restore(self, model: nn.Module) -> None:
        """Write every frozen entry back into ``model`` (bit-exact)."""
        for name, values in self.values.items():
            tensor = tensor_by_name(model, name)
            mask = self._mask(name, tensor)
            if values.device != tensor.device:
                values = self.values[name] = values.to(tensor.device)
            tensor.masked_scatter_(mask, values)

    @torch.no_grad()
    def mask_grads(self, model: nn.Module) -> None:
        """Zero the gradients of frozen entries."""
        for name in self.values:
            tensor = tensor_by_name(model, name)
            if tensor.grad is not None:
                tensor.grad.masked_fill_(self._mask(name, tensor), 0)

    def nbytes(self) -> int:
        tensors = list(self.masks.values()) + list(self.values.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def state_dict(self) -> dict[str, Any]:
        return {
            "masks": {k: v.cpu().clone() for k, v in self.masks.items()},
            "values": {k: v.cpu().clone() for k, v in self.values.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masks = {k: v.clone().bool() for k, v in state["masks"].items()}
        self.values = {k: v.clone() for k, v in state["values"].items()}
