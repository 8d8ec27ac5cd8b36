"""Unit scores other than LRP, to test whether relevance earns its place: the same selection,
budget and freezing, with the units ranked by

- ``"random"``: a seeded random score per unit;
- ``"activation"``: the unit's mean absolute output on the reference set;
- ``"weight"``: the L1 norm of the unit's incoming weights (PackNet's magnitude criterion);
- ``"taylor"``: |gradient of the true-label logit times the unit's output| (first-order Taylor).

Each returns :class:`~avalanche_rnf.relevance.UnitScores` with the activations filled in, as LRP's
pass does, so :func:`~avalanche_rnf.relevance.normalized_scores` treats every method alike.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, Sequence, get_args

import torch
from torch import Tensor, nn

from avalanche_rnf.layers import UnitLayer, evaluating, unit_hooks, weight_of
from avalanche_rnf.relevance import UnitScores, _per_unit, plain_forward, unit_relevance

Method = Literal["lrp", "random", "activation", "weight", "taylor"]
METHODS: tuple[str, ...] = get_args(Method)


@torch.no_grad()
def activations(model: nn.Module, layers: Sequence[UnitLayer], batches: Iterable[tuple[Tensor, Tensor, Tensor]],
                forward: Any = plain_forward) -> UnitScores:
    """Summed absolute outputs per unit over ``batches`` (eval mode), relevance left empty."""
    scores = UnitScores()

    def hook(name: str) -> Any:
        def on_forward(module: nn.Module, _inp: Any, out: Tensor) -> None:
            scores.activation[name] = scores.activation.get(name, 0) + _per_unit(out.abs(), module).sum(0)

        return on_forward

    with unit_hooks(model, layers, hook), evaluating(model):
        for x, y, t in batches:
            forward(model, x, t)
            scores.n_samples += len(y)
    return scores


def alternative_scores(method: Method, model: nn.Module, layers: Sequence[UnitLayer],
                       batches: Iterable[tuple[Tensor, Tensor, Tensor]], *, seed: int = 0,
                       forward: Any = plain_forward, **options: Any) -> UnitScores:
    """Scores by ``method`` (one of :data:`METHODS` but ``"lrp"``); ``options`` are
    :func:`~avalanche_rnf.relevance.unit_relevance`'s (only ``"taylor"`` reads ``start`` and ``reduction``)."""
    if method == "taylor":
        options.pop("composite", None)
        return unit_relevance(model, layers, batches, composite=None, forward=forward, times_output=True, **options)
    if method not in METHODS or method == "lrp":
        raise ValueError(f"Unknown scoring method {method!r}: use one of {', '.join(METHODS)}.")
    scores = activations(model, layers, batches, forward)
    generator = torch.Generator().manual_seed(seed)
    for layer in layers:
        act = scores.activation.get(layer.name)
        if act is None:
            continue
        if method == "activation":
            scores.relevance[layer.name] = act.clone()
        elif method == "random":
            scores.relevance[layer.name] = torch.rand(act.shape, generator=generator).to(act) * scores.n_samples
        else:
            norms = [weight_of(model.get_submodule(module)).detach().abs().flatten(1).sum(1)
                     for module, _ in layer.modules]
            scores.relevance[layer.name] = torch.stack(norms).sum(0).to(act) * scores.n_samples
    return scores
