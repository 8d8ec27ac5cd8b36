"""Task heads of multi-head models: which units below a head it may read (``head_transfer``)."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
from torch import Tensor, nn

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.isolation import Source, sever
from avalanche_rnf.layers import UnsupportedModelError, n_units


class HeadTransfer:
    """Per task head, the units below it frozen before its task first came.

    With ``transfer=False`` a head's weights from those units are held at zero, so the earlier
    tasks' features reach its task only through its own hidden units. The record is kept whatever
    ``transfer`` is, so the option may change between experiences.
    """

    def __init__(self, transfer: bool, warned: set[str]) -> None:
        if not isinstance(transfer, bool):
            raise ValueError(f"head_transfer must be True or False, got {transfer!r}.")
        self.transfer = transfer
        self.unread: dict[str, Tensor] = {}
        self.whole: set[str] = set()
        """Head layers frozen whole because their task finished."""
        self._warned = warned

    def check(self, has_heads: bool) -> None:
        """``transfer=False`` needs task heads to cut."""
        if not self.transfer and not has_heads:
            raise ValueError(
                "head_transfer=False cuts task heads (a MultiHeadClassifier) off the units earlier tasks froze, "
                "but this model has none. A single output layer reads each task's own units with "
                "task_inference='domain'."
            )

    def begin(self, model: nn.Module, heads: set[str], freeze: FreezeState,
              sources: Callable[[], dict[str, Source | None]]) -> dict[str, Tensor]:
        """The experience of the tasks with these ``heads`` begins: a returning task's head trains
        again (and is frozen whole once more afterwards); returns the head weights to hold at zero."""
        returning = heads & self.whole
        for head in returning:
            freeze.release(head)
            self.whole.discard(head)
        freeze.restore(model)
        if not heads:
            return {}
        found = sources()
        self.note_unread(model, heads - returning, found, freeze)
        return self.cuts(model, heads, found) if not self.transfer else {}

    def note_unread(self, model: nn.Module, heads: set[str], sources: dict[str, Source | None],
                    freeze: FreezeState) -> None:
        """On a task head's first experience: the units below it frozen by then."""
        for head in heads:
            source = sources[head]
            if head not in self.unread and source is not None:  # over the units of every part, in input order
                self.unread[head] = torch.cat([freeze.frozen_units(layer, n_units(model.get_submodule(layer)))
                                               for layer, _ in source.parts])

    def cuts(self, model: nn.Module, heads: set[str], sources: dict[str, Source | None]) -> dict[str, Tensor]:
        """Zero the weights of these task heads from their unread units, and return those entries
        (to hold at zero while the task trains)."""
        cuts = {}
        for head in sorted(heads):
            source = sources[head]
            if source is None:
                continue
            if head not in self.unread:  # trained before, by a plugin state that did not note its units
                if f"unread:{head}" not in self._warned:
                    self._warned.add(f"unread:{head}")
                    warnings.warn(
                        f"RNF: head {head!r} trained before, but the plugin state (from an older version) does not say "
                        "which units were frozen before its task first came; it reads every unit below it.",
                        stacklevel=4,
                    )
                continue
            sizes = [n_units(model.get_submodule(layer)) for layer, _ in source.parts]
            unread = self.unread[head]
            if len(sizes) == 1:
                unread = torch.cat([unread, unread.new_zeros(sizes[0] - unread.numel())])  # units added since are free
            elif unread.numel() != sum(sizes):
                raise UnsupportedModelError(
                    f"RNF: the layers {[layer for layer, _ in source.parts]} concatenated in front of head {head!r} "
                    "changed width since its task came; growing layers are supported in front of a head that reads "
                    "one layer.")
            rows = torch.ones(n_units(model.get_submodule(head)), dtype=torch.bool)
            keep = {layer: ~part for (layer, _), part in zip(source.parts, unread.split(sizes))}
            cut = sever(model, head, source, rows, keep)
            if cut is not None and cut.any():
                cuts[f"{head}.weight"] = cut
        return cuts

    def state_dict(self) -> dict[str, Any]:
        return {"whole_heads": sorted(self.whole), "unread": {k: v.clone() for k, v in self.unread.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.whole = set(state["whole_heads"])
        self.unread = {k: v.clone().bool() for k, v in state.get("unread", {}).items()}

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.unread.values())
