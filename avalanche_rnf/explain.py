"""Input-level LRP explanations (heatmaps), and how far two sets of heatmaps have drifted apart.

:func:`heatmaps` runs the same zennit LRP pass as RNF's unit scores
(:func:`~avalanche_rnf.relevance.unit_relevance`): the model in eval mode, a zennit composite with
:func:`~avalanche_rnf.canonizers.default_canonizers`, the starting relevance a one-hot of each
sample's true label at the logits (of its task's head in a multi-head model), and reads the
relevance that arrives at the input. :func:`cosine_similarity` and :func:`rank_correlation`
compare the heatmaps of the same probe images made at two points in time; :func:`probe_indices`
picks a seeded, class-balanced probe set. This module imports torch and zennit only.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import Tensor, nn
from zennit.attribution import Gradient
from zennit.core import Composite
from zennit.types import Convolution

from avalanche_rnf import task_norms
from avalanche_rnf.layers import evaluating
from avalanche_rnf.relevance import Forward, _start_relevance, _TaskBound, make_composite

"""``forward(model, x, task_labels) -> logits``, as in :mod:`avalanche_rnf.relevance`."""
CompositeSpec = Union[str, Composite, None]

RNF_COMPOSITE = "epsilon_plus_flat"
"""The composite RNF scores units with by default."""
LINEAR_FIRST_COMPOSITE = "epsilon_plus"
"""The default for models whose first layer is ``nn.Linear`` (see :func:`default_composite`)."""


def _first_layer(model: nn.Module) -> nn.Module | None:
    """The module zennit's first-layer rule applies to: the first Linear or Conv layer registered."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, Convolution)):
            return module
    return None


def default_composite(model: nn.Module) -> Composite:
    """The composite :func:`heatmaps` uses when none is given, with the default canonizers.

    RNF's own composite, ``epsilon_plus_flat`` (the flat rule for the first layer, z+ for the
    other conv layers, epsilon for the other Linear layers), except when the model's first layer
    is ``nn.Linear``: there the flat rule spreads every unit's relevance evenly over all inputs,
    so every heatmap would be constant. Such models get ``epsilon_plus`` (the epsilon rule for
    the first layer too). Both give every unit the same relevance, so RNF's unit scores are
    unchanged: a layer's rule only shapes the relevance passed on to its input.
    """
    first = _first_layer(model)
    return make_composite(LINEAR_FIRST_COMPOSITE if isinstance(first, nn.Linear) else RNF_COMPOSITE)


def _default_forward(model: nn.Module, x: Tensor, task_labels: Tensor | None) -> Tensor:
    return model(x) if task_labels is None else model(x, task_labels)


def heatmaps(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    task_labels: Tensor | None = None,
    composite: CompositeSpec = None,
    forward: Forward | None = None,
    *,
    batch_size: int = 256,
) -> Tensor:
    """LRP relevance of every input feature for each sample's true label: a tensor shaped like ``x``.

    :param model: the model; its train/eval flags and parameters are left as they were.
    :param x: inputs ``[N, ...]``.
    :param y: true labels ``[N]``, indexing the logits (of the sample's task head).
    :param task_labels: task label per sample, for multi-head models (``None``: single-task).
    :param composite: a zennit composite, or the name of a registered one (with the default
        canonizers); ``None``: :func:`default_composite`.
    :param forward: ``forward(model, x, task_labels) -> logits``; default: ``model(x)``, or
        ``model(x, task_labels)`` when task labels are given (as for Avalanche's
        ``MultiTaskModule``; pass ``avalanche.models.utils.avalanche_forward`` for mixed models).
    :param batch_size: samples per LRP pass.

    The starting relevance is a one-hot of ``y`` at the logits, so for a bias-free network of
    Linear layers and ReLUs under the epsilon rule each map sums to 1 (up to the epsilon). Where RNF
    keeps each task's BatchNorms (:mod:`~avalanche_rnf.task_norms`), each task's samples are
    explained with its own values in place.
    """
    if len(x) != len(y) or (task_labels is not None and len(task_labels) != len(y)):
        raise ValueError(f"x, y and task_labels need one entry per sample, got {len(x)}, {len(y)} and "
                         f"{None if task_labels is None else len(task_labels)}.")
    if composite is None:
        composite = default_composite(model)
    elif isinstance(composite, str):
        composite = make_composite(composite)
    call: Forward = forward if forward is not None else _default_forward
    if task_labels is None or task_norms.of(model) is None:
        return _heatmaps(model, x, y, task_labels, composite, call, batch_size)
    maps = torch.zeros_like(x)
    for task in task_labels.unique():  # each task with its own BatchNorm values, before canonizers merge them
        mask = task_labels == task
        rows = mask.to(x.device)
        with task_norms.using_task(model, int(task)):
            maps[rows] = _heatmaps(model, x[rows], y[mask.to(y.device)], task_labels[mask], composite, call,
                                   batch_size).to(x.device)
    return maps


def _heatmaps(model: nn.Module, x: Tensor, y: Tensor, task_labels: Tensor | None, composite: Composite,
              call: Forward, batch_size: int) -> Tensor:
    bound = _TaskBound(model, call)
    device = next((p.device for p in model.parameters()), x.device)
    parts: list[Tensor] = []
    with evaluating(model), torch.enable_grad(), Gradient(model=bound, composite=composite) as attributor:
        for start in range(0, len(x), batch_size):
            xb = x[start: start + batch_size].detach().to(device).requires_grad_(True)
            yb = y[start: start + batch_size].to(device)
            bound.task_labels = None if task_labels is None else task_labels[start: start + batch_size].to(device)
            _, relevance = attributor(xb, _start_relevance(yb, "onehot"))
            parts.append(relevance.detach())
    return torch.cat(parts) if parts else torch.zeros_like(x)


def pixel_maps(maps: Tensor) -> Tensor:
    """Image heatmaps ``[N, C, H, W]`` summed over channels to ``[N, H, W]``; others unchanged."""
    return maps.sum(1) if maps.dim() == 4 else maps


def _flat(maps: Tensor) -> Tensor:
    return maps.detach().reshape(len(maps), -1).double()


def cosine_similarities(reference: Tensor, current: Tensor) -> Tensor:
    """Cosine similarity per sample of two sets of heatmaps of the same inputs, in float64.

    Identical maps give exactly 1.0; two all-zero maps count as identical (1.0), an all-zero map
    against a non-zero one as unrelated (0.0). A map with a non-finite value (a model that
    diverged) gives NaN: it is no explanation, so it is not counted as drift either.
    """
    if reference.shape != current.shape:
        raise ValueError(f"Heatmaps to compare must have the same shape, got {tuple(reference.shape)} "
                         f"and {tuple(current.shape)}.")
    a, b = _flat(reference), _flat(current)
    dot, aa, bb = (a * b).sum(1), (a * a).sum(1), (b * b).sum(1)
    norm = torch.sqrt(aa * bb)
    both_zero = (aa == 0) & (bb == 0)
    cos = torch.where(norm > 0, dot / norm.clamp(min=torch.finfo(torch.float64).tiny), torch.zeros_like(dot))
    cos = torch.where(both_zero, torch.ones_like(cos), cos).clamp(-1.0, 1.0)
    cos = torch.where(torch.eq(a, b).all(1), torch.ones_like(cos), cos)
    return torch.where(_finite(a) & _finite(b), cos, torch.full_like(cos, math.nan))


def _finite(maps: Tensor) -> Tensor:
    """Per sample: whether every value of its map is finite."""
    return torch.isfinite(maps).all(1)


def cosine_similarity(reference: Tensor, current: Tensor) -> float:
    """Mean over samples of :func:`cosine_similarities`: 1.0 means no drift."""
    return float(cosine_similarities(reference, current).mean())


def _ranks(v: Tensor) -> Tensor:
    """Ranks from 1, ties given their average rank (as in Spearman's correlation)."""
    ordered, order = torch.sort(v, stable=True)
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).to(v.dtype)  # the highest rank in each group of ties
    ranks = torch.empty_like(v)
    ranks[order] = (last - (counts.to(v.dtype) - 1) / 2)[group]
    return ranks


def _spearman(a: Tensor, b: Tensor) -> float:
    if torch.equal(a, b):
        return 1.0
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(torch.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / denominator if denominator > 0 else 0.0


def rank_correlations(reference: Tensor, current: Tensor, top_k: int) -> Tensor:
    """Spearman's rank correlation per sample over the ``top_k`` most relevant input features of
    the reference map (highest relevance first; all features if there are fewer).

    It asks whether the features that mattered most still matter in the same order. Identical
    maps give exactly 1.0; if either side is constant over those features, 0.0 (unless identical);
    a map with a non-finite value gives NaN.
    """
    if reference.shape != current.shape:
        raise ValueError(f"Heatmaps to compare must have the same shape, got {tuple(reference.shape)} "
                         f"and {tuple(current.shape)}.")
    if top_k < 2:
        raise ValueError(f"top_k must be at least 2 (a rank correlation of fewer values is undefined), got {top_k}.")
    a, b = _flat(reference), _flat(current)
    finite = _finite(a) & _finite(b)
    k = min(top_k, a.shape[1])
    top = torch.topk(a.nan_to_num(), k, dim=1).indices
    a, b = a.gather(1, top), b.gather(1, top)
    return torch.tensor([_spearman(a[i], b[i]) if finite[i] else math.nan for i in range(len(a))],
                        dtype=torch.float64)


def rank_correlation(reference: Tensor, current: Tensor, top_k: int) -> float:
    """Mean over samples of :func:`rank_correlations`: 1.0 means no drift."""
    return float(rank_correlations(reference, current, top_k).mean())


def probe_indices(targets: Sequence[int] | Tensor, per_class: int, seed: int | torch.Generator = 0) -> Tensor:
    """Indices of a seeded probe set: ``per_class`` random samples of every class (all of a class
    that has fewer), grouped by class in ascending order, ascending within a class.

    The global random state is not touched.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class <= 0:
        raise ValueError(f"per_class must be a positive number of samples, got {per_class!r}.")
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    targets = torch.as_tensor(targets).reshape(-1)
    picked = []
    for c in targets.unique(sorted=True):
        where = (targets == c).nonzero().squeeze(1)
        chosen = where[torch.randperm(len(where), generator=generator)[:per_class]]
        picked.append(chosen.sort().values)
    return torch.cat(picked) if picked else torch.zeros(0, dtype=torch.long)
