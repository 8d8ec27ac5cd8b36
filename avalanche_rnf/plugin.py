"""RNF as an Avalanche plugin: wires Avalanche's callbacks to the algorithm's parts.

After each training experience the plugin scores every unit by LRP on a class-balanced reference
set of that experience (:mod:`~avalanche_rnf.relevance`), chooses the units to keep
(:mod:`~avalanche_rnf.choosing`), cuts them off the free units and freezes them bit for bit
(:mod:`~avalanche_rnf.keeping`). Retraining, task heads and task inference are parts of their own
(:mod:`~avalanche_rnf.evaluating` holds the evaluation callbacks). All state lives in the plugin,
so it works inside any strategy next to any other plugin.
"""

from __future__ import annotations

from typing import Any, Literal

from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from avalanche_rnf import glue
from avalanche_rnf.choosing import Choice, Chooser, budgets, keeps_all
from avalanche_rnf.cuts import WeightCuts
from avalanche_rnf.evaluating import EvaluationCallbacks
from avalanche_rnf.experience_access import ExperienceAccess
from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.graph import DataFlow
from avalanche_rnf.heads import HeadTransfer
from avalanche_rnf.history import History
from avalanche_rnf.inference import TaskInferrer
from avalanche_rnf.isolation import unit_sources
from avalanche_rnf.keeping import freeze_units, isolate
from avalanche_rnf.layers import UnitLayer
from avalanche_rnf.norms import FrozenNorms
from avalanche_rnf.options import Capacity, Relevance, Retraining, Share, TaskInference, Tolerance, as_option
from avalanche_rnf.output_layer import check_output_layer
from avalanche_rnf.reservoir import OnlineData
from avalanche_rnf.retraining import RetrainingSchedule
from avalanche_rnf.scenario import Mode, Scenario, default_retraining, default_tolerance
from avalanche_rnf.selection import RelevanceMass, SelectionRule
from avalanche_rnf.state import KeptState
from avalanche_rnf.task_norms import TaskNorms
from avalanche_rnf.tolerance import ToleranceSearch

DEFAULT_SELECTION = RelevanceMass(0.95)
DEFAULT_RESERVOIR = 1000
"""Online streams: samples kept of an origin experience when ``Relevance.reference_size`` is None."""


class RNFPlugin(KeptState, ExperienceAccess, EvaluationCallbacks, SupervisedPlugin):
    """Relevance-based Neural Freezing (Ede et al. 2022, arXiv 2205.01929).

    Every option has a default; the grouped ones are documented in :mod:`avalanche_rnf.options`.

    :param selection: rule choosing which free units of a layer to freeze after an experience
        (:class:`~avalanche_rnf.selection.RelevanceMass` (default ``0.95``),
        :class:`~avalanche_rnf.selection.TopFraction`, or any callable ``(scores, frozen) -> new``).
    :param relevance: how units are scored (:class:`~avalanche_rnf.options.Relevance`).
    :param tolerance: search the relevance mass per experience on held-out training data
        (:class:`~avalanche_rnf.options.Tolerance` or its ``max_drop``); ``None``: freeze what
        ``selection`` picks; ``"auto"`` (default): the scenario's, ``max_drop=0.005`` with class
        inference, none otherwise (:data:`~avalanche_rnf.scenario.DEFAULT_MAX_DROP`).
    :param capacity: how many units an experience may freeze (:class:`~avalanche_rnf.options.Capacity`
        or its ``share``: ``"fair"``, ``"unlimited"`` or a fraction).
    :param retraining: train the kept sub-network alone for the experience's last epochs
        (:class:`~avalanche_rnf.options.Retraining` or its ``epochs``); ``None``: off; ``"auto"``
        (default): 0.9 epochs at twice the optimizer's rate wherever isolation is on (task heads, task
        inference); off without isolation and in online streams
        (:data:`~avalanche_rnf.scenario.DEFAULT_RETRAINING`).
    :param isolate: cut newly frozen units and a finished task's head off the free units, so each
        task's function is kept exactly (:mod:`~avalanche_rnf.isolation`). ``None``: on for
        multi-head (task-incremental) models.
    :param head_transfer: ``False``: a task's head does not read the units frozen before its task
        first came (:class:`~avalanche_rnf.heads.HeadTransfer`).
    :param task_norms: in task-incremental models with isolation, each task keeps its own BatchNorms,
        and later tasks train every BatchNorm channel, frozen ones included
        (:mod:`~avalanche_rnf.task_norms`); ``False``: BatchNorm channels are frozen with their units.
    :param task_inference: recognise each input's task in evaluation, for streams without task
        labels (:class:`~avalanche_rnf.options.TaskInference` or its mode); turns isolation on.
        ``"auto"`` (default): chosen when training starts from the model and the stream
        (:mod:`~avalanche_rnf.scenario`): none for multi-head models, ``"class"`` where each
        experience brings classes of its own, ``"domain"`` where all hold the same classes.
        ``None``: off.
    :param seed: seed of the reference-set and held-out sampling.
    :param strict: raise on trainable parameters RNF cannot freeze (``False``: warn, leave them).
    """

    def __init__(
        self,
        *,
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
    ):
        super().__init__()
        relevance = relevance if relevance is not None else Relevance()
        if not isinstance(relevance, Relevance):
            raise ValueError(f"relevance must be a Relevance, got {relevance!r}.")
        inference: TaskInference | None = as_option(task_inference, TaskInference, "task_inference")
        if inference is not None and inference.mode != "auto" and isolate is False:
            raise ValueError("task_inference needs isolation (each task's function kept exactly): drop isolate=False.")
        self.selection = selection if selection is not None else DEFAULT_SELECTION
        self.relevance = relevance
        self._auto = {name for name, value in (("tolerance", tolerance), ("retraining", retraining))
                      if isinstance(value, str) and value == "auto"}
        """Options still to be chosen from the scenario."""
        self.tolerance: Tolerance | None = None if "tolerance" in self._auto else as_option(tolerance, Tolerance,
                                                                                           "tolerance")
        self.capacity: Capacity = as_option(capacity, Capacity, "capacity")
        self.retraining = RetrainingSchedule(None if "retraining" in self._auto else
                                             as_option(retraining, Retraining, "retraining"))
        self.isolate = True if inference is not None and inference.mode != "auto" else isolate
        self.seed = seed
        self.strict = strict
        self._warned: set[str] = set()
        self.heads = HeadTransfer(head_transfer, self._warned)
        self.inference = TaskInferrer(inference, glue.forward)
        self.task_inference: Mode | None = self.inference.mode if self.inference.mode != "auto" else None
        self._explicit_inference = isinstance(task_inference, TaskInference)
        self.scenario: Scenario | None = None
        """What ``task_inference="auto"`` found the stream to be (``None``: not asked, or not yet)."""

        self.freeze = FreezeState()
        self.norms = FrozenNorms()
        """Frozen BatchNorm channels held at their running statistics while the model trains."""
        self.task_norms = TaskNorms(task_norms)
        """Each task's own BatchNorms (task-incremental models)."""
        self.layers: list[UnitLayer] = []
        self.flow = DataFlow(glue.forward, strict)
        self.history = History()
        self.cuts = WeightCuts()
        """Weight entries held at zero for the rest of the experience."""
        self._data: glue.ExperienceData | OnlineData | None = None
        """The experience's data as RNF reads it (online: reservoirs of the origin experience's samples)."""
        self._in_experience = False
        self._pending: Choice | None = None

    @property
    def search(self) -> ToleranceSearch | None:
        """Each experience's tolerance search (None: the selection alone decides)."""
        return self.tolerance.search() if self.tolerance is not None else None

    # ------------------------------------------------------------------ training
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        self._scan(strategy.model)
        if self.task_inference:
            check_output_layer(strategy.model, self.layers, bool(glue.heads(strategy.model)))
        self.heads.check(bool(glue.heads(strategy.model)))

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        glue.check_not_empty(strategy.experience)
        glue.origin(strategy.experience)  # an online stream must show its task boundaries
        if self.inference.mode == "auto":
            self._resolve_scenario(strategy, glue.origin(strategy.experience))
        self.inference.settle_views(lambda: glue.mirrors_images(strategy.experience.dataset))
        if "tolerance" in self._auto:  # the scenario's defaults, once its task inference is known
            self.tolerance = default_tolerance(self.task_inference)
        if "retraining" in self._auto:
            self.retraining = RetrainingSchedule(default_retraining(self._isolated(strategy.model),
                                                                    glue.is_online(strategy.experience)))
        self._auto = set()

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Hold out part of the experience's training data for the tolerance search."""
        holdout = self.tolerance.holdout if self.tolerance is not None else None
        if glue.is_online(strategy.experience):
            self._data, strategy.adapted_dataset = glue.stream_past(
                self._online(), strategy, holdout, capacity=self.relevance.reference_size or DEFAULT_RESERVOIR,
                seed=self.seed, batch_size=self.relevance.batch_size)
        else:
            strategy.adapted_dataset = self._data_of(strategy, strategy.adapted_dataset, holdout).train

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        model, experience = strategy.model, glue.origin(strategy.experience)
        self.retraining.begin(strategy, glue.is_online(strategy.experience), self._warned)  # online: one pass
        self._in_experience = True
        self._pending = None
        self.cuts.clear()
        self._scan(model, strategy.experience, strategy.device)
        if names := self._task_norm_names(model):
            self.task_norms.attach(model, names)
            self.task_norms.begin(model, glue.task_labels(experience))
        self.norms.hold(model, self.layers, self.freeze, self._isolated(model))
        heads = glue.heads(model, glue.task_labels(experience))
        self.cuts.add(self.heads.begin(model, heads, self.freeze,
                                       lambda: unit_sources(model, self.layers, glue.heads(model))))
        domain = self.inference.begin(model, self.layers, experience)
        if domain:
            self.cuts.add(domain)
            self.cuts.hold(model)

    def after_forward(self, strategy: Any, **kwargs: Any) -> None:
        strategy.mb_output = self.inference.training_output(strategy.mb_output, strategy.mb_y)

    def after_backward(self, strategy: Any, **kwargs: Any) -> None:
        self.freeze.mask_grads(strategy.model)
        self.inference.entries.mask_grads(strategy.model)
        self.cuts.mask_grads(strategy.model)

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        if self._pending is not None:
            self.retraining.scale_lrs(strategy.optimizer.param_groups)
        else:
            self.retraining.give_back_lrs(strategy.optimizer.param_groups)

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        self.retraining.give_back_lrs(strategy.optimizer.param_groups)
        self.freeze.restore(strategy.model)
        self.inference.entries.restore(strategy.model)
        self.cuts.hold(strategy.model)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        if self.retraining.iteration_done():
            self._start_retraining(strategy)

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        if self.retraining.epoch_done(getattr(strategy, "train_epochs", 0)):
            self._start_retraining(strategy)

    def _start_retraining(self, strategy: Any) -> None:
        """Choose the units to keep, and retrain them alone from here on."""
        self.freeze.restore(strategy.model)
        self._pending = self._choose(strategy)  # norms measured at the freeze, or now if evaluations read them
        self.cuts.add(self._isolate(strategy.model, self._pending, retraining=True,
                                    recalibrate=glue.evaluates_while_training(strategy)))

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        online = self._online()
        if glue.is_online(strategy.experience) and not glue.ends_origin(strategy.experience,
                                                                        online.parts if online else 0):
            return  # RNF acts when the origin experience ends
        self._in_experience = False
        self.norms.release()
        model = strategy.model
        self.freeze.restore(model)
        retrained = self._pending is not None
        choice = self._pending if self._pending is not None else self._choose(strategy)
        self._pending = None
        self.cuts.clear()
        self._freeze(model, choice)
        if names := self._task_norm_names(model):
            self.task_norms.keep(model, names, glue.task_labels(strategy.experience))
        data = self._data_of(strategy)
        if retrained and self.search is not None and self.searches:
            self.history.retrained(self.inference.kept_accuracy(model, self.layers, data.held_out(), glue.call))
        if self.task_inference:
            index = glue.origin(strategy.experience).current_experience
            self.inference.learn_task(model, self.layers, self.freeze, index, data.batches(self.inference.samples),
                                      data.held_out if data.held_out_part is not None else None)
        fractions = {layer.name: self.freeze.frozen_fraction(layer.name) for layer in self.layers}
        self.history.record(choice.relevance, choice.normalized, choice.seconds, fractions)
        values = self.history.metric_values(self.overall_frozen_fraction(model), self.search is not None)
        glue.publish(strategy, self, values, strategy.clock.train_exp_counter)
        self._data = None

    def _choose(self, strategy: Any) -> Choice:
        """Score the units by LRP and choose the ones this experience keeps (within the budget)."""
        model, experience = strategy.model, glue.origin(strategy.experience)
        self._scan(model)
        data = self._data_of(strategy)
        relevance, normalized, seconds = self.relevance.score(
            model, self.layers, data.batches(self.relevance.reference_size), glue.forward,
            glue.sample_seed(self.seed, experience))
        heads = glue.heads(model, glue.task_labels(experience))
        rows = self.inference.class_rows(model, self.layers, experience) if self.task_inference == "class" else {}
        self.inference.rows = rows
        sources = unit_sources(model, self.layers, glue.heads(model))
        left = glue.experiences_left(experience, self.capacity.n_experiences)
        last = keeps_all(self.capacity, self.task_inference, left)
        chooser = Chooser(model, self.layers, self.freeze, normalized, heads,
                          budgets(model, self.layers, self.freeze, self.capacity, left, last), rows,
                          self.layers[-1].name if self.task_inference == "domain" else None,
                          *glue.mini_batch_sizes(strategy))
        new, calibration, result = chooser.choose(self.selection, self.search, data, sources, glue.call, last)
        if result is not None:
            self.searches.append(result)
        return Choice(new, heads, sources, calibration, relevance, normalized, seconds, last)

    def _isolated(self, model: nn.Module) -> bool:
        """Whether frozen units are cut off the free ones (``isolate``, or by default with task heads)."""
        return self.isolate if self.isolate is not None else bool(glue.heads(model))

    def _task_norm_names(self, model: nn.Module) -> list[str]:
        """The BatchNorms each task keeps (where the model reads task labels and isolates frozen units)."""
        possible = not self.task_inference and self._isolated(model) and glue.reads_task_labels(model)
        return self.task_norms.decide(model, [norm for layer in self.layers for norm in layer.norms], possible)

    def _isolate(self, model: nn.Module, choice: Choice, retraining: bool = False,
                 recalibrate: bool = True) -> dict[str, Tensor]:
        """With isolation, cut the newly kept units off the free ones (before retraining in
        ``"domain"`` mode, the shared output layer too, so the kept sub-network trains as the
        recognised task will compute it); returns the cut entries."""
        if not self._isolated(model):
            return {}
        whole = self.layers[-1].name if retraining and self.task_inference == "domain" else None
        return isolate(model, self.layers, self.freeze, choice.new, choice.sources, choice.calibration, glue.call,
                       whole, recalibrate)

    def _freeze(self, model: nn.Module, choice: Choice) -> None:
        """Isolate and freeze the choice's units; whole task heads are remembered."""
        self._isolate(model, choice)
        if self.task_inference == "domain":
            self.inference.freeze_columns(model, self.layers, choice.new)
        self.heads.whole |= {layer.name for layer in self.layers if layer.name in choice.heads}
        expected = {layer.name for layer in self.layers} if choice.keeps_all else self.heads.whole | set(
            self.inference.rows)
        freeze_units(model, self.layers, self.freeze, choice.new, expected, self._warned, not self.task_norms.enabled)
