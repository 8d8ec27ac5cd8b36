"""``RNF``: a supervised Avalanche strategy with an :class:`~avalanche_rnf.plugin.RNFPlugin` attached."""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins.evaluation import EvaluationPlugin, default_evaluator
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.optim import Optimizer
from zennit.canonizers import Canonizer
from zennit.core import Composite

from avalanche_rnf.layers import find_unit_layers
from avalanche_rnf.plugin import RNFPlugin, TaskInference
from avalanche_rnf.recognition import POWER, SHRINKAGE, View
from avalanche_rnf.relevance import Reduction, Start
from avalanche_rnf.selection import SelectionRule


class RNF(SupervisedTemplate):
    """Relevance-based Neural Freezing, with the conventions of ``avalanche.training.EWC``.

    The RNF arguments are those of :class:`~avalanche_rnf.plugin.RNFPlugin`; the plugin is
    available as ``strategy.rnf``. The user's ``plugins`` and ``evaluator`` are kept (the list
    passed in is not modified).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: Optimizer,
        criterion: Callable[..., torch.Tensor] | None = None,
        selection: SelectionRule | None = None,
        reference_size: int | None = 1000,
        composite: str | Composite = "epsilon_plus_flat",
        canonizers: Sequence[Canonizer] | None = None,
        start: Start = "onehot",
        reduction: Reduction = "abs",
        relevance_batch_size: int = 256,
        seed: int = 0,
        strict: bool = True,
        max_drop: float | None = None,
        holdout: float = 0.1,
        search_steps: int = 7,
        isolate: bool | None = None,
        capacity: Literal["fair", "unlimited"] | float = "fair",
        n_experiences: int | None = None,
        keep_last: bool = False,
        task_inference: TaskInference = False,
        retrain_epochs: float = 0,
        recognition_layers: Literal["all", "last", "input"] = "all",
        recognition_samples: int | None = 3000,
        recognition_shrinkage: float = SHRINKAGE,
        recognition_power: float = POWER,
        task_posterior: float | None = None,
        recognition_views: Sequence[str | View] = (),
        retrain_lr_scale: float = 1.0,
        head_transfer: bool = True,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: str | torch.device = "cpu",
        plugins: Sequence[SupervisedPlugin] | None = None,
        evaluator: EvaluationPlugin | Callable[[], EvaluationPlugin] = default_evaluator,
        eval_every: int = -1,
        **base_kwargs: Any,
    ):
        find_unit_layers(model, strict=strict)
        self.rnf = RNFPlugin(
            selection=selection,
            reference_size=reference_size,
            composite=composite,
            canonizers=canonizers,
            start=start,
            reduction=reduction,
            batch_size=relevance_batch_size,
            seed=seed,
            strict=strict,
            max_drop=max_drop,
            holdout=holdout,
            search_steps=search_steps,
            isolate=isolate,
            capacity=capacity,
            n_experiences=n_experiences,
            keep_last=keep_last,
            task_inference=task_inference,
            retrain_epochs=retrain_epochs,
            recognition_layers=recognition_layers,
            recognition_samples=recognition_samples,
            recognition_shrinkage=recognition_shrinkage,
            recognition_power=recognition_power,
            task_posterior=task_posterior,
            recognition_views=recognition_views,
            retrain_lr_scale=retrain_lr_scale,
            head_transfer=head_transfer,
        )
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion if criterion is not None else nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*(plugins or []), self.rnf],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )
