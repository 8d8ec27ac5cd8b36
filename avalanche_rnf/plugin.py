"""RNF as an Avalanche plugin: the only module that glues the algorithm to Avalanche.

After each training experience the plugin scores every unit by LRP on a class-balanced
reference set of that experience, freezes the units a selection rule picks (plus the whole
head of a finished task in multi-head models), and from then on keeps them bit-for-bit fixed.
All state lives here, so the plugin works inside any strategy next to any other plugin.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Iterator, Sequence

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import MetricValue
from avalanche.models import MultiHeadClassifier
from avalanche.models.utils import avalanche_forward
from torch import Tensor, nn
from torch.utils.data import DataLoader
from zennit.canonizers import Canonizer
from zennit.core import Composite

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.layers import UnitLayer, find_unit_layers, n_units, unsupported_parameters
from avalanche_rnf.reference import balanced_indices, check_reference_size
from avalanche_rnf.relevance import Reduction, Start, make_composite, normalized_scores, unit_relevance
from avalanche_rnf.selection import RelevanceMass, SelectionRule

DEFAULT_SELECTION = RelevanceMass(0.95)


class RNFPlugin(SupervisedPlugin):
    """Relevance-based Neural Freezing (Ede et al. 2022, arXiv 2205.01929).

    :param selection: rule choosing which free units of a layer to freeze after an experience
        (:class:`~avalanche_rnf.selection.RelevanceMass` or
        :class:`~avalanche_rnf.selection.TopFraction`, or any callable ``(scores, frozen) -> new``).
    :param reference_size: number of training samples (class-balanced) of the experience to run
        LRP on; ``None`` for all of them.
    :param composite: zennit composite, by registered name or as an instance.
    :param canonizers: zennit canonizers for a named composite (default: merge BatchNorm layers).
    :param start: starting relevance at the true-label logit: ``"onehot"`` (1 per sample) or
        ``"logit"`` (the logit's value).
    :param reduction: ``"abs"`` or ``"positive"`` relevance counts towards a unit's score.
    :param batch_size: batch size of the relevance pass.
    :param seed: seed of the reference-set sampling.
    :param strict: raise on trainable parameters RNF cannot freeze (``False``: warn, leave them).
    """

    def __init__(
        self,
        *,
        selection: SelectionRule | None = None,
        reference_size: int | None = 1000,
        composite: str | Composite = "epsilon_plus_flat",
        canonizers: Sequence[Canonizer] | None = None,
        start: Start = "onehot",
        reduction: Reduction = "abs",
        batch_size: int = 256,
        seed: int = 0,
        strict: bool = True,
    ):
        super().__init__()
        if start not in ("onehot", "logit"):
            raise ValueError(f"start must be 'onehot' or 'logit', got {start!r}.")
        if reduction not in ("abs", "positive"):
            raise ValueError(f"reduction must be 'abs' or 'positive', got {reduction!r}.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}.")
        make_composite(composite, canonizers)  # fail early on an unknown name
        self.selection = selection if selection is not None else DEFAULT_SELECTION
        self.reference_size = check_reference_size(reference_size)
        self.composite = composite
        self.canonizers = canonizers
        self.start: Start = start
        self.reduction: Reduction = reduction
        self.batch_size = batch_size
        self.seed = seed
        self.strict = strict

        self.freeze = FreezeState()
        self.layers: list[UnitLayer] = []
        self.raw_scores: list[dict[str, Tensor]] = []
        """Per experience: mean relevance per unit over the reference set, per layer."""
        self.scores: list[dict[str, Tensor]] = []
        """Per experience: the scores the selection rule saw (per layer, summing to 1)."""
        self.frozen_fractions: list[dict[str, float]] = []
        self.relevance_seconds: list[float] = []
        self.whole_heads: set[str] = set()
        """Head layers frozen whole because their task finished (multi-head models)."""
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ callbacks
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        self._scan(strategy.model)

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        experience = strategy.experience
        if len(experience.dataset) == 0:
            raise ValueError(
                f"Training experience {experience.current_experience} has no samples. RNF needs the "
                "experience's training data to find the units that matter for it; remove empty "
                "experiences from the stream."
            )

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._scan(strategy.model)
        # a task that comes back trains its own head again; it is frozen whole once more afterwards
        for head in self._task_heads(strategy.model, strategy.experience) & self.whole_heads:
            self.freeze.release(head)
            self.whole_heads.discard(head)
        self.freeze.restore(strategy.model)

    def after_backward(self, strategy: Any, **kwargs: Any) -> None:
        self.freeze.mask_grads(strategy.model)

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        self.freeze.restore(strategy.model)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        model = strategy.model
        self.freeze.restore(model)
        self._scan(model)
        start = time.perf_counter()
        scores = unit_relevance(
            model,
            self.layers,
            self._reference_batches(strategy),
            composite=make_composite(self.composite, self.canonizers),
            forward=avalanche_forward,
            start=self.start,
            reduction=self.reduction,
        )
        seconds = time.perf_counter() - start
        normalized, fallbacks = normalized_scores(scores)
        for name, reason in fallbacks.items():
            warnings.warn(
                f"RNF: relevance of layer {name!r} is {reason}; scoring its units by activation magnitude "
                "instead. Check the model for NaNs or dead layers, or try another composite.",
                stacklevel=2,
            )
        self._select_and_freeze(model, normalized, self._task_heads(model, strategy.experience))
        self.raw_scores.append({k: (v / max(scores.n_samples, 1)).cpu() for k, v in scores.relevance.items()})
        self.scores.append({k: v.cpu() for k, v in normalized.items()})
        self.relevance_seconds.append(seconds)
        self.frozen_fractions.append({layer.name: self.freeze.frozen_fraction(layer.name) for layer in self.layers})
        self._publish(strategy)

    # ------------------------------------------------------------------ helpers
    def _scan(self, model: nn.Module) -> None:
        self.layers = find_unit_layers(model, strict=self.strict)
        loose = unsupported_parameters(model, self.layers)
        if loose and "unsupported" not in self._warned:
            self._warned.add("unsupported")
            warnings.warn(f"RNF leaves these parameters trainable (strict=False): {', '.join(loose)}", stacklevel=3)

    def _reference_batches(self, strategy: Any) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        experience = strategy.experience
        dataset = experience.dataset.eval()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + experience.current_experience)
        indices = balanced_indices(torch.as_tensor(list(dataset.targets)), self.reference_size, generator)
        subset = dataset.subset(indices.tolist())
        loader = DataLoader(subset, batch_size=self.batch_size, shuffle=False, collate_fn=subset.collate_fn)
        for x, y, t, *_ in loader:
            yield x.to(strategy.device), y.to(strategy.device), t.to(strategy.device)

    @staticmethod
    def _task_heads(model: nn.Module, experience: Any) -> set[str]:
        """Unit layers inside the ``MultiHeadClassifier`` heads of the experience's tasks."""
        heads: set[str] = set()
        for name, module in model.named_modules():
            if isinstance(module, MultiHeadClassifier):
                for task in experience.task_labels:
                    prefix = f"{name}.classifiers.{task}".lstrip(".")
                    head = module.classifiers[str(task)]
                    heads |= {
                        f"{prefix}.{sub}".rstrip(".") for sub, m in head.named_modules() if isinstance(m, nn.Linear)
                    }
        return heads

    def _select_and_freeze(self, model: nn.Module, scores: dict[str, Tensor], heads: set[str]) -> None:
        for layer in self.layers:
            size = n_units(model.get_submodule(layer.name))
            frozen = self.freeze.frozen_units(layer.name, size)
            if layer.name in heads:
                new = ~frozen
                self.whole_heads.add(layer.name)
            elif layer.name in scores:
                new = self.selection(scores[layer.name].cpu(), frozen) & ~frozen
            else:
                continue
            if new.any():
                self.freeze.freeze(model, layer, new)
            if layer.name not in heads and bool(self.freeze.frozen_units(layer.name, size).all()):
                if layer.name not in self._warned:
                    self._warned.add(layer.name)
                    warnings.warn(
                        f"RNF: all {size} units of layer {layer.name!r} are frozen, so later experiences cannot "
                        "train it (capacity exhausted). Use a smaller selection fraction/mass or a wider layer.",
                        stacklevel=3,
                    )

    def _publish(self, strategy: Any) -> None:
        evaluator = getattr(strategy, "evaluator", None)
        if evaluator is None:
            return
        x = strategy.clock.train_exp_counter
        fractions = self.frozen_fractions[-1]
        for name, fraction in fractions.items():
            evaluator.publish_metric_value(MetricValue(self, f"RNF/FrozenFraction/{name}", fraction, x))
        overall = self.overall_frozen_fraction(strategy.model)
        evaluator.publish_metric_value(MetricValue(self, "RNF/FrozenFraction", overall, x))
        evaluator.publish_metric_value(MetricValue(self, "RNF/RelevanceTime_s", self.relevance_seconds[-1], x))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything RNF keeps between experiences, as CPU tensors and plain Python values."""
        return {
            "freeze": self.freeze.state_dict(),
            "raw_scores": [dict(s) for s in self.raw_scores],
            "scores": [dict(s) for s in self.scores],
            "frozen_fractions": [dict(f) for f in self.frozen_fractions],
            "relevance_seconds": list(self.relevance_seconds),
            "whole_heads": sorted(self.whole_heads),
            "warned": sorted(self._warned),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.freeze.load_state_dict(state["freeze"])
        self.raw_scores = [dict(s) for s in state["raw_scores"]]
        self.scores = [dict(s) for s in state["scores"]]
        self.frozen_fractions = [dict(f) for f in state["frozen_fractions"]]
        self.relevance_seconds = list(state["relevance_seconds"])
        self.whole_heads = set(state["whole_heads"])
        self._warned = set(state["warned"])

    def overall_frozen_fraction(self, model: Any) -> float:
        """Frozen fraction over all units of the layers scored after the last experience."""
        fractions = self.frozen_fractions[-1] if self.frozen_fractions else {}
        total = sum(self.freeze.unit_masks[n].sum().item() for n in fractions if n in self.freeze.unit_masks)
        units = sum(n_units(model.get_submodule(n)) for n in fractions)
        return total / units if units else 0.0

    def state_nbytes(self) -> int:
        """Bytes RNF keeps between experiences to enforce freezing (masks and frozen values)."""
        return self.freeze.nbytes()
