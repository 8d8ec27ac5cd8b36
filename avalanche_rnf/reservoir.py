"""A bounded, class-balanced sample of a stream that is seen once (online continual learning).

RNF scores units on a class-balanced reference set of the experience it just learned. In an
online stream each sample passes once, in small sub-experiences; :class:`ClassReservoir` keeps a
uniform sample of each class's items as they stream past (reservoir sampling, Vitter's
algorithm R), with an equal share of its capacity per class seen, so the reference set, the
held-out data of the tolerance search and the task statistics can be drawn from it at the task
boundary without reading the experience again.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterator

import torch
from torch import Tensor

from avalanche_rnf.reference import balanced_indices


class ClassReservoir:
    """At most ``capacity`` items ``(x, y, t)``; each class seen keeps ``capacity // classes`` of them."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if not (isinstance(capacity, int) and capacity > 0):
            raise ValueError(f"reservoir capacity must be a positive number of samples, got {capacity!r}.")
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed)
        self.x: dict[int, Tensor] = {}
        self.t: dict[int, Tensor] = {}
        self.seen: dict[int, int] = {}

    def __len__(self) -> int:
        return sum(len(x) for x in self.x.values())

    @property
    def quota(self) -> int:
        return max(1, self.capacity // max(1, len(self.x)))

    def add(self, x: Tensor, y: Tensor, t: Tensor) -> None:
        """Offer a batch of items; each is kept with its class's reservoir probability."""
        x, y, t = x.detach().cpu(), y.cpu(), t.cpu()
        new = sorted(set(y.tolist()) - set(self.x))
        for c in new:
            self.x[c], self.t[c], self.seen[c] = x[:0].clone(), t[:0].clone(), 0
        if new:
            self._trim()
        quota = self.quota
        for i, c in enumerate(y.tolist()):
            self.seen[c] += 1
            if len(self.x[c]) < quota:
                self.x[c] = torch.cat([self.x[c], x[i : i + 1]])
                self.t[c] = torch.cat([self.t[c], t[i : i + 1]])
                continue
            j = int(torch.randint(self.seen[c], (1,), generator=self.generator))
            if j < quota:
                self.x[c][j], self.t[c][j] = x[i], t[i]

    def _trim(self) -> None:
        """Keep a uniform ``quota`` of each class (a class's share shrinks as classes arrive)."""
        quota = self.quota
        for c in self.x:
            if len(self.x[c]) > quota:
                keep = torch.randperm(len(self.x[c]), generator=self.generator)[:quota].sort().values
                self.x[c], self.t[c] = self.x[c][keep], self.t[c][keep]

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """All items kept, as ``(x, y, t)``, class by class."""
        if not self.x:
            raise ValueError("the reservoir holds no samples yet")
        classes = sorted(self.x)
        y = torch.cat([torch.full((len(self.x[c]),), c, dtype=torch.long) for c in classes])
        return torch.cat([self.x[c] for c in classes]), y, torch.cat([self.t[c] for c in classes])

    def batches(self, size: int | None, batch_size: int, generator: torch.Generator,
                device: Any = "cpu") -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Batches of a class-balanced sample of ``size`` items (``None``: all of them)."""
        x, y, t = self.tensors()
        order = balanced_indices(y, size, generator) if size is not None else torch.arange(len(y))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield x[index].to(device), y[index].to(device), t[index].to(device)

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for part in (self.x, self.t) for v in part.values())

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "x": dict(self.x), "t": dict(self.t), "seen": dict(self.seen),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.x, self.t, self.seen = dict(state["x"]), dict(state["t"]), dict(state["seen"])
        self.generator.set_state(state["generator"])


class OnlineData:
    """An origin experience's data as RNF reads it in an online stream: reservoirs of the samples
    trained on and of those held out for the tolerance search (``held_capacity``; 0: none),
    filled as the sub-experiences stream past and read at the task boundary."""

    def __init__(self, capacity: int, held_capacity: int, *, seed: int, sample_seed: int, batch_size: int,
                 device: Any) -> None:
        self.train = ClassReservoir(capacity, seed)
        self.held = ClassReservoir(held_capacity, seed + 1) if held_capacity else None
        self.sample_seed, self.batch_size, self.device = sample_seed, batch_size, device
        self.parts = 0
        """Sub-experiences offered so far."""
        self._held_out: list[tuple[Tensor, Tensor, Tensor]] | None = None

    def offered(self) -> tuple[int, int]:
        """Samples offered to the reservoirs so far, and how many of them were held out."""
        held = sum(self.held.seen.values()) if self.held is not None else 0
        return sum(self.train.seen.values()) + held, held

    def hold_out(self, size: int, fraction: float) -> int:
        """How many samples of the next sub-experience (``size`` samples) to hold out: as many as
        keep the origin experience's held-out share at ``fraction`` of what streamed past, leaving
        at least one to train on (a sub-experience of one sample is trained on, and the share is
        made up later)."""
        seen, held = self.offered()
        return max(0, min(size - 1, math.floor(fraction * (seen + size)) - held))

    @property
    def held_out_part(self) -> ClassReservoir | None:
        return self.held if self.held is not None and len(self.held) else None

    def batches(self, size: int | None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Batches of a class-balanced sample of ``size`` reservoir items (``None``: all of them)."""
        generator = torch.Generator().manual_seed(self.sample_seed)
        return self.train.batches(size, self.batch_size, generator, self.device)

    def held_out(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        if self._held_out is None:
            held = self.held_out_part if self.held_out_part is not None else self.train
            if self.held is not None and held is self.train:
                warnings.warn("RNF: no sample of this experience could be held out (its sub-experiences were too small "
                              "to hold one out and train on the rest); the tolerance search scores units on samples "
                              "trained on.", stacklevel=2)
            self._held_out = list(held.batches(None, self.batch_size, torch.Generator(), self.device))
        return self._held_out

    def nbytes(self) -> int:
        return self.train.nbytes() + (self.held.nbytes() if self.held is not None else 0)

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train.state_dict(), "held": self.held.state_dict() if self.held is not None else None,
                "sample_seed": self.sample_seed, "parts": self.parts}

    @classmethod
    def from_state(cls, state: dict[str, Any], batch_size: int, device: Any = "cpu") -> OnlineData:
        held = state["held"]
        data = cls(state["train"]["capacity"], held["capacity"] if held is not None else 0, seed=0,
                   sample_seed=state["sample_seed"], batch_size=batch_size, device=device)
        data.train.load_state_dict(state["train"])
        data.parts = state.get("parts", 0)
        if data.held is not None:
            data.held.load_state_dict(held)
        return data
