"""Unit relevance by Layer-wise Relevance Propagation, computed with zennit.

One batched LRP pass per reference batch: the model runs in eval mode under a zennit
composite, the starting relevance is each sample's true-label logit (a one-hot, optionally
scaled by the logit), and a hook on every unit layer reads the gradient arriving at the
layer's output, which under the composite *is* the relevance of that output. A unit's
relevance for one sample is that relevance summed over spatial positions.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Sequence, cast

import torch
from torch import Tensor, nn
from zennit.attribution import Gradient
from zennit.canonizers import Canonizer
from zennit.composites import COMPOSITES, SpecialFirstLayerMapComposite
from zennit.core import Composite

from avalanche_rnf.canonizers import default_canonizers
from avalanche_rnf.layers import UnitLayer, evaluating, unit_hooks

Forward = Callable[[nn.Module, Tensor, Tensor], Tensor]
"""``forward(model, x, task_labels) -> logits``; how a (possibly multi-task) model is called."""

Start = Literal["onehot", "logit"]
Reduction = Literal["abs", "positive"]


def plain_forward(model: nn.Module, x: Tensor, task_labels: Tensor) -> Tensor:
    """Call a single-task model, ignoring task labels."""
    return model(x)


def make_composite(
    composite: str | Composite = "epsilon_plus_flat", canonizers: Sequence[Canonizer] | None = None
) -> Composite:
    """Return a zennit composite from a registered name (``zennit.composites.COMPOSITES``) or as given.

    Named composites get ``canonizers`` (default: BatchNorm merged into the preceding layer, residual
    sums conserved: :func:`~avalanche_rnf.canonizers.default_canonizers`).
    """
    if isinstance(composite, Composite):
        return composite
    if composite not in COMPOSITES:
        raise ValueError(
            f"Unknown zennit composite {composite!r}. Use one of {sorted(COMPOSITES)} "
            "or pass a zennit.core.Composite instance."
        )
    if canonizers is None:
        canonizers = default_canonizers()
    return COMPOSITES[composite](canonizers=list(canonizers))


@dataclass
class UnitScores:
    """Relevance and activation magnitude per unit, summed over the reference samples."""

    relevance: dict[str, Tensor] = field(default_factory=dict)
    activation: dict[str, Tensor] = field(default_factory=dict)
    n_samples: int = 0


class _TaskBound(nn.Module):
    """Present ``forward(model, x, task_labels)`` as the one-argument module zennit expects."""

    def __init__(self, model: nn.Module, forward: Forward):
        super().__init__()
        self.model = model
        self.call = forward
        self.task_labels: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.call(self.model, x, cast(Tensor, self.task_labels))


def _per_unit(t: Tensor, module: nn.Module) -> Tensor:
    """Sum a layer output (or its relevance) over all but the batch and unit axes: ``-> [B, U]``.

    Conv2d units are channels (dimension 1); Linear units are the last dimension.
    """
    if isinstance(module, nn.Linear) and t.dim() > 2:
        t = t.movedim(-1, 1)
    return t.flatten(2).sum(-1) if t.dim() > 2 else t


def _start_relevance(targets: Tensor, start: Start) -> Callable[[Tensor], Tensor]:
    def attr_output(out: Tensor) -> Tensor:
        if targets.max() >= out.shape[-1]:
            raise ValueError(
                f"Target label {int(targets.max())} is outside the model output of width {out.shape[-1]}. "
                "Labels must index the logits of the (task's) head."
            )
        onehot = torch.nn.functional.one_hot(targets, out.shape[-1]).to(out.dtype)
        return onehot * out.detach() if start == "logit" else onehot

    return attr_output


ACTIVATION_BUDGET = 8 * 2**20
"""Bytes of unit-layer outputs per LRP pass: batches of large activations are attributed in chunks,
as LRP keeps every intermediate tensor (and zennit's modified copies) until the backward pass."""


def lean_batch_size(model: nn.Module, layers: Sequence[UnitLayer], forward: Forward, x: Tensor, t: Tensor) -> int:
    """Samples per pass such that the unit layers' outputs stay within :data:`ACTIVATION_BUDGET`
    (measured on two samples of ``x``, in eval mode)."""
    sizes: list[int] = []
    with unit_hooks(model, layers, lambda _name: lambda _m, _i, out: sizes.append(out.numel() * out.element_size())), \
            torch.no_grad(), evaluating(model):
        # two samples: models that squeeze their features lose a batch of one
        forward(model, x[:2], t[:2] if t is not None else t)
    return max(1, ACTIVATION_BUDGET * len(x[:2]) // max(sum(sizes), 1))


def unit_relevance(
    model: nn.Module,
    layers: Sequence[UnitLayer],
    batches: Iterable[tuple[Tensor, Tensor, Tensor]],
    *,
    composite: Composite | None,
    forward: Forward = plain_forward,
    start: Start = "onehot",
    reduction: Reduction = "abs",
    times_output: bool = False,
) -> UnitScores:
    """Score every unit of ``layers`` by LRP over ``batches`` of ``(x, y, task_labels)``.

    ``reduction`` turns a sample's signed unit relevance into a non-negative score: ``"abs"``
    (default: a unit that argues strongly against the wrong classes matters as much as one that
    argues for the right one) or ``"positive"``. With ``composite=None`` and ``times_output`` the
    score is gradient times activation (a first-order Taylor score) instead. The model's
    train/eval flags and parameters are left as they were.
    """
    scores = UnitScores()
    bound = _TaskBound(model, forward)
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return scores
    chunk = lean_batch_size(model, layers, forward, first[0], first[2])
    first_run: list[str] = []  # the unit layer that runs first

    def hook(name: str):
        def on_forward(module: nn.Module, _inp, out: Tensor) -> None:
            if not first_run:
                first_run.append(name)
            act = _per_unit(out.detach().abs(), module).sum(0)
            scores.activation[name] = scores.activation.get(name, 0) + act

            output = out.detach() if times_output else None  # not ``out``: a hook holding it is a cycle

            def on_relevance(rel: Tensor) -> None:
                unit = _per_unit(rel.detach() * output if output is not None else rel.detach(), module)
                unit = unit.abs() if reduction == "abs" else unit.clamp(min=0)
                scores.relevance[name] = scores.relevance.get(name, 0) + unit.sum(0)

            if out.requires_grad:
                out.register_hook(on_relevance)

        return on_forward

    # a group's units: relevance summed over its coupled modules
    with unit_hooks(model, layers, hook), evaluating(model), torch.enable_grad(), \
            Gradient(model=bound, composite=composite) as attributor:
        for x, y, t in itertools.chain([first], batches):
            labels = t.split(chunk) if t is not None else [None] * len(x)
            for xs, ys, ts in zip(x.split(chunk), y.split(chunk), labels):
                bound.task_labels = ts
                attributor(xs.detach().requires_grad_(True), _start_relevance(ys, start))
                scores.n_samples += len(ys)
    if isinstance(composite, SpecialFirstLayerMapComposite) and first_run and first_run[0] != layers[0].name:
        warnings.warn(
            f"zennit applies its first-layer rule to {layers[0].name!r}, the first unit layer registered in the "
            f"model, but {first_run[0]!r} runs first. Register modules in the order they run (or pass a composite "
            "that names its layers) so the input layer gets the first-layer rule.",
            stacklevel=2,
        )
    return scores


def normalized_scores(scores: UnitScores) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Per-layer scores that sum to 1 over the layer's units.

    A layer whose relevance is NaN, infinite or all zero falls back to the units' mean activation
    magnitude; if that is unusable too, all its scores are 0 (a selection rule then freezes nothing
    there). Returns the scores and, per layer that fell back, the reason.
    """
    out: dict[str, Tensor] = {}
    fallbacks: dict[str, str] = {}
    for name, act in scores.activation.items():
        rel = scores.relevance.get(name)
        reason = _unusable(rel)
        if rel is not None and reason is None:
            out[name] = rel / rel.sum()
            continue
        fallbacks[name] = str(reason)
        act_reason = _unusable(act)
        out[name] = torch.zeros_like(act) if act_reason is not None else act / act.sum()
        if act_reason is not None:
            fallbacks[name] += f"; activations are {act_reason} too, so nothing is frozen in it"
    return out, fallbacks


def _unusable(t: Tensor | None) -> str | None:
    if t is None:
        return "missing (no gradient reached the layer)"
    if not torch.isfinite(t).all():
        return "NaN or infinite"
    if t.sum() <= 0:
        return "all zero"
    return None


def scored_units(
    model: nn.Module,
    layers: Sequence[UnitLayer],
    batches: Iterable[tuple[Tensor, Tensor, Tensor]],
    **options: Any,
) -> tuple[dict[str, Tensor], dict[str, Tensor], float]:
    """:func:`unit_relevance` (``options`` are its keywords), :func:`summarized`."""
    start = time.perf_counter()
    scores = unit_relevance(model, layers, batches, **options)
    return summarized(scores, time.perf_counter() - start)


def summarized(scores: UnitScores, seconds: float) -> tuple[dict[str, Tensor], dict[str, Tensor], float]:
    """The mean relevance per unit and sample, the normalized scores a selection rule sees, and the
    seconds the pass took; warns about each layer whose scores fell back to activation magnitude."""
    normalized, fallbacks = normalized_scores(scores)
    for name, reason in fallbacks.items():
        warnings.warn(
            f"RNF: relevance of layer {name!r} is {reason}; scoring its units by activation magnitude "
            "instead. Check the model for NaNs or dead layers, or try another composite.",
            stacklevel=4,
        )
    relevance = {k: v / max(scores.n_samples, 1) for k, v in scores.relevance.items()}
    return relevance, normalized, seconds
