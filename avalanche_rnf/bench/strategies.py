"""Build Avalanche's strategies (and RNF) by name, with the hyperparameter table's values.

The baselines are Avalanche's own classes and plugins; nothing is reimplemented. Three upstream
bugs are worked around, the first two by building the strategy as a ``SupervisedTemplate`` with
Avalanche's plugin, as the strategy class itself does:

- ``avalanche.training.PackNet`` drops the user's plugins (it nests them in a list): PackNet is
  ``PackNetPlugin`` next to them.
- ``SynapticIntelligence`` does nothing on CPU (see :mod:`avalanche_rnf.bench.fixes`): ``si`` uses
  :class:`~avalanche_rnf.bench.fixes.CopyingSIPlugin`; ``si_upstream`` is Avalanche's class unchanged.
- ``ClassBalancedBuffer`` nests its task labels one level per update until reading a sample exceeds
  the recursion limit: ER-ACE and online Replay keep
  :class:`~avalanche_rnf.bench.fixes.FlatClassBalancedBuffer` instead.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models.packnet import PackNetModel, PackNetPlugin
from avalanche.training import (
    ER_ACE,
    EWC,
    MAS,
    JointTraining,
    LwF,
    Naive,
    Replay,
    SynapticIntelligence,
)
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from avalanche_rnf import RNF, Capacity, Relevance, RelevanceMass, Retraining, TaskInference, Tolerance
from avalanche_rnf.bench.fixes import CopyingSIPlugin, FlatClassBalancedBuffer
from avalanche_rnf.bench.generative import generative_replay
from avalanche_rnf.bench.hparams import Training
from avalanche_rnf.bench.online import BoundaryEWCPlugin, not_applicable_online
from avalanche_rnf.bench.slda import SLDA_STRATEGIES, streaming_lda
from avalanche_rnf.bench.streams import Normalization
from avalanche_rnf.norms import FrozenNorms

_CLASSES = {"naive": Naive, "ewc": EWC, "si_upstream": SynapticIntelligence, "lwf": LwF, "mas": MAS, "er_ace": ER_ACE,
            "replay": Replay, "joint": JointTraining}


def not_applicable(strategy: str, scenario: str, training: Training, family: str) -> str | None:
    """Why ``strategy`` cannot run in this setting (None when it can)."""
    if training.online:
        reason = not_applicable_online(strategy)
        if reason:
            return reason
    if strategy in SLDA_STRATEGIES and scenario == "task":
        return "Streaming LDA keeps one classifier over all classes: no task heads to pick by task label"
    if strategy == "generative_replay" and scenario == "task":
        return "Avalanche's Generative Replay labels its samples without task labels: class or domain scenarios only"
    if strategy == "packnet":
        if scenario != "task":
            return "PackNet selects a sub-network by task label: task-incremental only"
        if family == "image":
            return "Avalanche's PackNet does not support BatchNorm, which the image models have"
        if training.epochs < 2:
            return "PackNet needs at least 2 epochs (train, prune, fine-tune)"
    return None


def make_optimizer(training: Training, model: nn.Module) -> torch.optim.Optimizer:
    if training.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=training.lr)
    if training.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=training.lr, momentum=training.momentum)
    raise ValueError(f"unknown optimizer {training.optimizer!r}: use 'sgd' or 'adam'")


class ResetOptimizerPlugin(SupervisedPlugin):
    """Clear the optimizer's state before each experience, as Avalanche did before 0.4.

    Avalanche 0.6 keeps the optimizer's state (Adam's moments, SGD's momentum) from one experience
    to the next; the published reference results (the presets) were made with the state cleared.
    """

    def before_training_exp(self, strategy, **kwargs):
        strategy.make_optimizer(reset_optimizer_state=True)


class ShrinkingCrossEntropyPlugin(SupervisedPlugin):
    """Scale the cross-entropy by 1/t in experience t (counted from 1), as in van de Ven et al. 2019.

    continual-learning-baselines' LwF on SplitMNIST trains on ``CE / t + alpha_t * distillation``.
    Placed before Avalanche's ``LwFPlugin``, it scales the loss before the distillation is added.
    """

    def before_backward(self, strategy, **kwargs):
        strategy.loss = strategy.loss / (strategy.clock.train_exp_counter + 1)


RNF_GROUPS: dict[str, tuple[type, str | None, dict[str, str]]] = {
    # option: (its class, the flat name that turns it on ("": always made, None: made when any of
    # its names is given), flat name -> field)
    "tolerance": (Tolerance, "max_drop", {"max_drop": "max_drop", "holdout": "holdout", "search_steps": "steps"}),
    "capacity": (Capacity, None, {"capacity": "share", "n_experiences": "n_experiences", "keep_last": "keep_last",
                                  "capacity_flex": "flex"}),
    "retraining": (Retraining, "retrain_epochs", {"retrain_epochs": "epochs", "retrain_lr_scale": "lr_scale"}),
    "task_inference": (TaskInference, "task_inference", {
        "task_inference": "mode", "recognition_layers": "layers", "recognition_samples": "samples",
        "recognition_shrinkage": "shrinkage", "recognition_power": "power", "task_posterior": "posterior",
        "recognition_views": "views", "own_classes": "own_classes"}),
    "relevance": (Relevance, "", {"composite": "composite", "start": "start", "reduction": "reduction",
                                  "reference_size": "reference_size", "relevance_batch_size": "batch_size",
                                  "unit_scores": "method"}),
}


def rnf_options(params: dict[str, Any]) -> dict[str, Any]:
    """RNF's keywords from the harness's flat parameter names (``max_drop``, ``retrain_epochs``,
    ``recognition_layers``, ...; ``mass`` for the selection's relevance mass): each group becomes
    its option object, made only where the flat name that turns it on has a value (capacity: where
    any of its names is given)."""
    params = dict(params)
    mass = params.pop("mass", None)
    out: dict[str, Any] = {"selection": RelevanceMass(mass) if mass is not None else None}
    for option, (cls, switch, fields) in RNF_GROUPS.items():
        values = {field: params.pop(flat) for flat, field in fields.items() if flat in params}
        if (switch is None and not values) or (switch and not values.get(fields[switch])):
            if option in ("task_inference", "tolerance", "retraining"):
                out[option] = None  # the harness names these: off unless asked for
            continue
        if values.get("mode") is True:
            values["mode"] = "class"
        out[option] = cls(**values)
    return {**out, **params}


def build_strategy(
    name: str,
    model: nn.Module,
    training: Training,
    params: dict[str, Any],
    *,
    evaluator,
    plugins: list | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    input_shape: tuple[int, ...] | None = None,
    normalization: Normalization | None = None,
):
    """Strategy ``name`` training ``model`` with ``training`` and the strategy's ``params`` (``input_shape``:
    of one input, and ``normalization``: the per-channel mean and std the inputs were normalised with, for
    strategies that read or generate inputs themselves). A strategy's ``lr`` is ``training``'s already
    (:func:`~avalanche_rnf.bench.planning.make_plan`)."""
    params = {key: value for key, value in params.items() if key != "lr"}
    if name in SLDA_STRATEGIES:
        if input_shape is None and name == "slda":
            raise ValueError("slda reads the raw inputs: pass input_shape")
        return streaming_lda(name, model, training, params, input_shape, evaluator=evaluator, plugins=plugins,
                             device=device, optimizer_for=lambda network: make_optimizer(training, network))
    if training.reset_optimizer:
        plugins = [*(plugins or []), ResetOptimizerPlugin()]
    if name == "generative_replay":
        if input_shape is None or normalization is None:
            raise ValueError("generative_replay generates inputs: pass input_shape and normalization")
        return generative_replay(model, training, params, input_shape, normalization, evaluator=evaluator,
                                 optimizer=make_optimizer(training, model), plugins=list(plugins or []), device=device)
    if name == "packnet":
        model = PackNetModel(model)
        plugins = [*(plugins or []), PackNetPlugin(params.pop("post_prune_epochs"), params.pop("prune_proportion"))]
        cls: Any = SupervisedTemplate
    elif name == "si":
        plugins = [*(plugins or []), CopyingSIPlugin(si_lambda=params.pop("si_lambda"), eps=params.pop("eps"))]
        cls = SupervisedTemplate
    elif name == "replay" and training.online:  # one buffer share per class, not per sub-experience
        mem_size = params.pop("mem_size")
        plugins = [*(plugins or []), ReplayPlugin(mem_size, storage_policy=FlatClassBalancedBuffer(mem_size, True))]
        cls = Naive
    elif name == "ewc" and training.online:  # consolidate when a task ends, not after each sub-experience
        params.pop("mode", None)
        plugins = [*(plugins or []), BoundaryEWCPlugin(params.pop("ewc_lambda"), params.pop("decay_factor", 1.0))]
        cls = Naive
    elif name == "lwf" and params.pop("shrink_ce", False):
        plugins = [*(plugins or []), ShrinkingCrossEntropyPlugin()]
        cls = LwF
    elif name == "rnf":
        held = params.pop("frozen_norms", "running")
        if held not in ("running", "batch"):
            raise ValueError(f"rnf frozen_norms must be 'running' or 'batch', got {held!r}")
        norms = FrozenNorms(enabled=held == "running")
        params = {**rnf_options(params), "seed": seed}
        cls = RNF
    else:
        cls = _CLASSES[name]
    strategy = cls(
        model=model,
        optimizer=make_optimizer(training, model),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=training.batch_size,
        train_epochs=training.epochs,
        eval_mb_size=training.eval_batch_size,
        device=device,
        plugins=plugins,
        evaluator=evaluator,
        **params,
    )
    if name == "er_ace":  # its buffer, with task labels that do not nest (see the fixes module)
        if type(strategy.storage_policy) is not ClassBalancedBuffer or strategy.storage_policy.buffer_groups:
            raise RuntimeError("ER_ACE no longer starts with an empty ClassBalancedBuffer: revisit the buffer fix")
        strategy.storage_policy = FlatClassBalancedBuffer(max_size=strategy.mem_size, adaptive_size=True)
    if name == "rnf":  # "batch": frozen BatchNorm channels train on batch statistics (an ablation)
        strategy.rnf.norms = norms
    return strategy
