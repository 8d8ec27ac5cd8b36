"""``RNF``: a supervised Avalanche strategy with an :class:`~avalanche_rnf.plugin.RNFPlugin` attached."""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins.evaluation import EvaluationPlugin, default_evaluator
from avalanche.training.templates import SupervisedTemplate
from torch import nn
from torch.optim import Optimizer

from avalanche_rnf.layers import find_unit_layers
from avalanche_rnf.options import Capacity, Relevance, Retraining, Share, TaskInference, Tolerance
from avalanche_rnf.plugin import RNFPlugin
from avalanche_rnf.scenario import Mode
from avalanche_rnf.selection import SelectionRule


class RNF(SupervisedTemplate):
    """Relevance-based Neural Freezing, with the conventions of ``avalanche.training.EWC``.

    The RNF arguments (``selection`` to ``strict``) are those of
    :class:`~avalanche_rnf.plugin.RNFPlugin`; the plugin is available as ``strategy.rnf``. The
    user's ``plugins`` and ``evaluator`` are kept (the list passed in is not modified).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: Optimizer,
        criterion: Callable[..., torch.Tensor] | None = None,
        selection: SelectionRule | None = None,
        relevance: Relevance | None = None,
        tolerance: Tolerance | float | Literal["auto"] | None = "auto",
        capacity: Capacity | Share = "fair",
        retraining: Retraining | float | Literal["auto"] | None = "auto",
        isolate: bool | None = None,
        head_transfer: bool = True,
        task_norms: bool = True,
        task_inference: TaskInference | Mode | Literal["auto"] | bool | None = "auto",
        seed: int = 0,
        strict: bool = True,
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
            relevance=relevance,
            tolerance=tolerance,
            capacity=capacity,
            retraining=retraining,
            isolate=isolate,
            head_transfer=head_transfer,
            task_norms=task_norms,
            task_inference=task_inference,
            seed=seed,
            strict=strict,
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
