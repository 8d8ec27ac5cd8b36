"""RNF as an Avalanche plugin: the only module that glues the algorithm to Avalanche.

After each training experience the plugin scores every unit by LRP on a class-balanced
reference set of that experience, freezes the units a selection rule picks (plus the whole
head of a finished task in multi-head models), and from then on keeps them bit-for-bit fixed.
With ``max_drop`` the rule's relevance mass is searched per experience on held-out data
(:mod:`avalanche_rnf.tolerance`); with isolation (:mod:`avalanche_rnf.isolation`) frozen units
stop reading free ones, so a finished task's function is kept exactly. All state lives here, so
the plugin works inside any strategy next to any other plugin.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Literal, Sequence, Union

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metric_results import MetricValue
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from avalanche.models.utils import avalanche_forward
from torch import Tensor, nn
from torch.utils.data import DataLoader
from zennit.canonizers import Canonizer
from zennit.core import Composite

from avalanche_rnf.freezing import EntryFreeze, FreezeState, tensor_by_name
from avalanche_rnf.isolation import Source, calibrated_norms, input_mask, isolated_weights, sever, unit_sources
from avalanche_rnf.layers import UnitLayer, evaluating, find_unit_layers, n_inputs, n_units, unsupported_parameters
from avalanche_rnf.recognition import (
    POWER,
    SHRINKAGE,
    FeatureTap,
    Tap,
    TaskRecognizer,
    View,
    recognised_task_logits,
    resolve_views,
    task_weighted_log_probs,
)
from avalanche_rnf.reference import balanced_indices, check_reference_size
from avalanche_rnf.relevance import Reduction, Start, make_composite, normalized_scores, unit_relevance
from avalanche_rnf.selection import KeepFree, RelevanceMass, SelectionRule, limit
from avalanche_rnf.tolerance import SearchResult, ToleranceSearch, fair_share

DEFAULT_SELECTION = RelevanceMass(0.95)
CALIBRATION_SAMPLES = 512
"""Training samples used to recompute the BatchNorm statistics of newly frozen, isolated channels."""
TaskInference = Union[bool, Literal["class", "domain"]]


@dataclass
class _Selection:
    """What an experience chose to keep, between choosing it and freezing it."""

    new: dict[str, Tensor]
    heads: set[str]
    sources: dict[str, Source | None]
    calibration: list[tuple[Tensor, Tensor, Tensor]]
    relevance: dict[str, Tensor]
    normalized: dict[str, Tensor]
    seconds: float
    keeps_all: bool = False
    """``keep_last`` on the stream's last experience: every free unit is kept, by design."""


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
    :param max_drop: accuracy tolerance. ``None``: freeze what ``selection`` picks. A fraction
        (e.g. ``0.01``): hold out ``holdout`` of each experience's training data, and search the
        smallest relevance mass whose kept units lose at most ``max_drop`` accuracy on it
        (:class:`~avalanche_rnf.tolerance.ToleranceSearch`, ``search_steps`` bisection steps).
    :param holdout: fraction of each experience's training data held out for the search.
    :param search_steps: bisection steps of the search.
    :param isolate: zero and freeze the weights from free units into newly frozen units and into a
        finished task's head, so each task's function is kept exactly
        (:mod:`~avalanche_rnf.isolation`). ``None``: on for multi-head (task-incremental) models.
    :param capacity: ``"fair"``: an experience may freeze at most an equal share of each layer's
        free units among the experiences left in the stream (:func:`~avalanche_rnf.tolerance.fair_share`);
        ``"unlimited"``: no cap; a fraction in ``(0, 1]``: at most that fraction of each layer's
        units (rounded up), whatever the stream's length, so a stream of known length can leave its
        last experience (``keep_last``) more than an equal share.
    :param n_experiences: stream length for the fair share and ``keep_last``; ``None``: read from
        the experience's origin stream (no cap if unknown).
    :param keep_last: on the last experience of the stream (its length known, see ``n_experiences``),
        keep every free unit instead of choosing (:class:`~avalanche_rnf.selection.KeepFree`; with
        ``max_drop`` no search is run): no later experience needs them, so the last task keeps the
        whole capacity left (with ``retrain_epochs`` it trains all of it for the whole experience).
        Training past the stream's end then finds no free unit.
    :param retrain_epochs: train the kept sub-network alone for this many of each experience's
        last epochs (PackNet's retraining after pruning, within the same epoch budget): the units
        are chosen after ``train_epochs - retrain_epochs`` epochs, isolated (their weights from
        free units held at zero) and trained on, then frozen at the end of the experience. It
        recovers what pruning cost, so a small capacity share keeps more accuracy. A fraction
        (e.g. ``0.5`` with one epoch) chooses the units after that share of the experience's
        training iterations. ``0``: choose and freeze at the end. Needs isolation to train a
        sub-network (otherwise the kept units simply train on with the rest).
    :param retrain_lr_scale: multiply the optimizer's learning rates by this factor for each step
        of the retraining (``retrain_epochs``), as learning-rate rewinding does after pruning
        (Renda et al. 2020): a pruned sub-network fine-tuned at the small learning rate that suits
        the whole network learns slowly. The rates are scaled just before each optimizer step and
        given back right after it, so learning-rate schedulers see and set the unscaled ones.
    :param head_transfer: ``True``: a task's head (in a ``MultiHeadClassifier``) reads every unit
        of the layer below it, those earlier tasks froze included. ``False``: it reads every unit
        except those frozen before its task first came (on a task's first visit: its own units
        only); its weights from those units are held at zero, so the earlier tasks' features reach
        the task through its own hidden units only, as the output layer of
        ``task_inference="domain"`` reads its task's units only. A new head starts from random
        weights over all its inputs, and the frozen units' activations on a new task are not tuned
        to it: on PermutedMNIST reading them held the task back more than they gave.
    :param task_inference: recognise the task of each input in evaluation, for streams without
        task labels, on a model whose last layer is a Linear over all classes (isolation is on). After
        each experience a :class:`~avalanche_rnf.recognition.TaskRecognizer` learns the task's
        feature statistics. ``"class"`` (or ``True``), class-incremental: each experience brings its
        own classes; their output rows are frozen whole and isolated, and in evaluation only the
        recognised task's classes can win. ``"domain"``, domain-incremental (e.g. PermutedMNIST):
        every experience shares the output layer's classes. Each task owns the units it keeps in the
        layer feeding the output layer: while a task trains, the output layer reads none of the
        earlier tasks' units there; afterwards the output layer's weights from its units (its
        columns) and the bias are frozen, and in evaluation the output layer reads only the
        recognised task's units, so that task's outputs are exactly what they were when it finished.
        Task-recognition accuracy per evaluated experience is published as
        ``RNF/TaskRecognition/eval_phase/<stream>_stream/Exp<k>`` (not during periodic evaluation
        inside an experience, whose task is not learned yet: outputs are left as they are then).
    :param recognition_layers: which features recognise a task: ``"all"``: what its kept units feed
        into every layer after the first (conv channels as mean and spread over positions,
        :class:`~avalanche_rnf.recognition.FeatureTap`); ``"last"``: only the output layer's input;
        ``"input"``: what the first unit layer reads (the model's input when that layer comes
        first), the same for every task (no training changes it; on PermutedMNIST each permutation
        shows in it). A conv first layer reads only each input channel's mean and spread. With
        ``recognition_shrinkage=1`` its statistics are each task's class means and one scale.
    :param recognition_samples: training samples (class-balanced) per task whose features give its
        recognition statistics; ``None``: all of them (more samples estimate the covariance of many
        conv features better; the statistics kept are the same size).
    :param recognition_shrinkage: weight of the scaled identity in each task's shrunk covariance
        (:class:`~avalanche_rnf.recognition.TaskRecognizer`): small values trust the features'
        correlations, large ones count every feature alike.
    :param recognition_power: exponent of the power transform applied to the recognition features
        before their statistics are fitted (``sign(x) * |x| ** power``). ``0.5`` suits conv
        channels' means and spreads, skewed and non-negative (SplitCIFAR-10); ``1`` leaves the
        features as they are, which suits MLP units (SplitMNIST). Measurements:
        ``benchmarks/results/recognizers-*``.
    :param task_posterior: with ``task_inference`` ``"class"``: ``None`` lets only the recognised
        task's classes win; a scale ``s`` instead scores each class by the log-probability of its
        task, a softmax of ``s`` times the recogniser's standardised scores, plus its
        log-probability among its task's classes
        (:func:`~avalanche_rnf.recognition.task_weighted_log_probs`), so a confident classifier
        can overrule a close second task. The outputs are then log-probabilities.
    :param recognition_views: with ``task_inference`` ``"class"``: views of each input whose
        recognition features are averaged with its own, when a task's statistics are fitted and
        in evaluation (names from :data:`~avalanche_rnf.recognition.VIEWS`, e.g. ``["hflip"]`` for
        a model trained on mirrored images, or callables on a batch): features that do not depend
        on the view. Each view costs one more forward pass; the class outputs still come from the
        input itself.
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
    ):
        super().__init__()
        if not (_is_number(retrain_epochs) and retrain_epochs >= 0):
            raise ValueError(f"retrain_epochs must be a non-negative number of epochs, got {retrain_epochs!r}.")
        if not (_is_number(retrain_lr_scale) and retrain_lr_scale > 0):
            raise ValueError(f"retrain_lr_scale must be a positive factor, got {retrain_lr_scale!r}.")
        if retrain_lr_scale != 1 and not retrain_epochs:
            raise ValueError("retrain_lr_scale scales the learning rate of the retraining: it needs retrain_epochs.")
        if recognition_layers not in ("all", "last", "input"):
            raise ValueError(f"recognition_layers must be 'all', 'last' or 'input', got {recognition_layers!r}.")
        check_reference_size(recognition_samples, "recognition_samples")
        if not (isinstance(recognition_shrinkage, (int, float)) and 0 < recognition_shrinkage <= 1):
            raise ValueError(f"recognition_shrinkage must be in (0, 1], got {recognition_shrinkage!r}.")
        if not (isinstance(recognition_power, (int, float)) and 0 < recognition_power <= 1):
            raise ValueError(f"recognition_power must be in (0, 1], got {recognition_power!r}.")
        if task_posterior is not None and not (isinstance(task_posterior, (int, float)) and task_posterior > 0):
            raise ValueError(f"task_posterior must be None or a positive scale, got {task_posterior!r}.")
        if task_posterior is not None and task_inference not in (True, "class"):
            raise ValueError("task_posterior weighs the classes of recognised tasks: it needs task_inference='class'.")
        views = resolve_views(recognition_views)
        if views and task_inference not in (True, "class"):
            raise ValueError("recognition_views average features for class inference: use task_inference='class'.")
        if task_inference not in (False, True, "class", "domain"):
            raise ValueError(f"task_inference must be False, True, 'class' or 'domain', got {task_inference!r}.")
        if task_inference and isolate is False:
            raise ValueError("task_inference needs isolation (each task's function kept exactly): drop isolate=False.")
        if not 0 < holdout < 1:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}.")
        if capacity not in ("fair", "unlimited") and not (_is_number(capacity) and 0 < capacity <= 1):
            raise ValueError(f"capacity must be 'fair', 'unlimited' or a fraction in (0, 1], got {capacity!r}.")
        if not isinstance(head_transfer, bool):
            raise ValueError(f"head_transfer must be True or False, got {head_transfer!r}.")
        if not isinstance(keep_last, bool):
            raise ValueError(f"keep_last must be True or False, got {keep_last!r}.")
        if n_experiences is not None and n_experiences < 1:
            raise ValueError(f"n_experiences must be positive, got {n_experiences!r}.")
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
        self.search = ToleranceSearch(max_drop, search_steps) if max_drop is not None else None
        self.holdout = holdout
        self.isolate = True if task_inference else isolate
        self.task_inference: Literal["class", "domain"] | None = (
            "class" if task_inference is True else task_inference or None
        )
        self.capacity = capacity
        self.n_experiences = n_experiences
        self.keep_last = keep_last
        self.retrain_epochs = retrain_epochs
        self.retrain_lr_scale = retrain_lr_scale
        self.head_transfer = head_transfer
        self.recognition_layers = recognition_layers
        self.recognition_samples = recognition_samples

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
        self.searches: list[SearchResult] = []
        """Per experience (with ``max_drop``): the mass chosen and the held-out accuracies."""
        self.recognizer = TaskRecognizer(recognition_shrinkage, recognition_power)
        """Per task (with ``task_inference``): the feature statistics that recognise it."""
        self.task_posterior = task_posterior
        self.recognition_views = views
        self.task_experiences: list[int] = []
        """Per task (with ``task_inference``): the experience it was learned in."""
        self.entries = EntryFreeze()
        """``task_inference="domain"``: the frozen columns and bias of the shared output layer."""
        self.task_inputs: list[Tensor] = []
        """``task_inference="domain"``: per task, its own units in the layer feeding the output layer."""
        self.unread: dict[str, Tensor] = {}
        """Per task head: the units below it frozen before its task first came (``head_transfer=False``
        keeps the head from reading them)."""
        self._warned: set[str] = set()
        self._train_part: Any = None
        self._holdout_part: Any = None
        self._held_out: list[tuple[Tensor, Tensor, Tensor]] | None = None
        self._rows: dict[str, Tensor] = {}
        self._tap: FeatureTap | None = None
        self._masking: Any = None
        self._predicted: Tensor | None = None
        self._recognised: list[int] = [0, 0]
        self._in_experience = False
        self._epochs = 0
        self._iterations = 0
        self._select_at: int | None = None
        self._pending: _Selection | None = None
        self._cuts: dict[str, Tensor] = {}
        self._unscaled_lrs: list[float] | None = None

    # ------------------------------------------------------------------ callbacks
    def before_training(self, strategy: Any, **kwargs: Any) -> None:
        self._scan(strategy.model)
        if self.task_inference:
            self._check_output_layer(strategy.model)
        if not self.head_transfer and not self._all_heads(strategy.model):
            raise ValueError(
                "head_transfer=False cuts task heads (a MultiHeadClassifier) off the units earlier tasks froze, "
                "but this model has none. A single output layer reads each task's own units with "
                "task_inference='domain'."
            )

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        experience = strategy.experience
        if len(experience.dataset) == 0:
            raise ValueError(
                f"Training experience {experience.current_experience} has no samples. RNF needs the "
                "experience's training data to find the units that matter for it; remove empty "
                "experiences from the stream."
            )

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        epochs = getattr(strategy, "train_epochs", None)
        if self.retrain_epochs and epochs is not None and self.retrain_epochs >= epochs:
            raise ValueError(
                f"retrain_epochs={self.retrain_epochs} leaves none of the strategy's {epochs} training epochs to "
                "train the whole network before choosing units: use fewer retrain_epochs or more train_epochs."
            )
        self._in_experience = True
        self._epochs, self._iterations, self._pending, self._cuts = 0, 0, None, {}
        self._select_at = self._selection_iteration(strategy)
        self._scan(strategy.model)
        if self.task_inference == "class":
            self._class_rows(strategy.model, strategy.experience)  # fails now, not after training, on shared classes
        # a task that comes back trains its own head again; it is frozen whole once more afterwards
        heads = self._task_heads(strategy.model, strategy.experience)
        returning = heads & self.whole_heads
        for head in returning:
            self.freeze.release(head)
            self.whole_heads.discard(head)
        self.freeze.restore(strategy.model)
        self.entries.restore(strategy.model)
        if heads:
            sources = unit_sources(strategy.model, self.layers, self._all_heads(strategy.model))
            self._note_unread(strategy.model, heads - returning, sources)
            if not self.head_transfer:
                self._cut(self._head_cuts(strategy.model, heads, sources))
        if self.task_inference == "domain" and self.task_inputs:
            self._cut({self._output_weight(): self._columns(strategy.model, torch.stack(self.task_inputs).any(0))})
            self._hold_cuts(strategy.model)

    def after_backward(self, strategy: Any, **kwargs: Any) -> None:
        self.freeze.mask_grads(strategy.model)
        self.entries.mask_grads(strategy.model)
        for name, cut in self._cuts.items():
            grad = tensor_by_name(strategy.model, name).grad
            if grad is not None:
                grad.masked_fill_(cut, 0)

    def before_update(self, strategy: Any, **kwargs: Any) -> None:
        self._give_back_lrs(strategy)  # a step that raised before after_update left its rates scaled
        if self._pending is not None and self.retrain_lr_scale != 1:
            groups = strategy.optimizer.param_groups
            self._unscaled_lrs = [group["lr"] for group in groups]
            for group in groups:
                group["lr"] = group["lr"] * self.retrain_lr_scale

    def _give_back_lrs(self, strategy: Any) -> None:
        """Put back the learning rates ``before_update`` scaled for a retraining step."""
        if self._unscaled_lrs is not None:
            for group, lr in zip(strategy.optimizer.param_groups, self._unscaled_lrs):
                group["lr"] = lr
            self._unscaled_lrs = None

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        self._give_back_lrs(strategy)
        self.freeze.restore(strategy.model)
        self.entries.restore(strategy.model)
        self._hold_cuts(strategy.model)

    @torch.no_grad()
    def _hold_cuts(self, model: nn.Module) -> None:
        """Write zeros into the cut weight entries."""
        for name, cut in self._cuts.items():
            tensor_by_name(model, name).masked_fill_(cut, 0)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        """With a fractional ``retrain_epochs``: choose the units after that share of the iterations."""
        self._iterations += 1
        if self._iterations == self._select_at:
            self._start_retraining(strategy)

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        """With ``retrain_epochs``: choose the units to keep, and retrain them alone from here on."""
        self._epochs += 1
        whole = self.retrain_epochs and self._select_at is None
        if whole and self._epochs == getattr(strategy, "train_epochs", 0) - self.retrain_epochs:
            self._start_retraining(strategy)

    def _selection_iteration(self, strategy: Any) -> int | None:
        """For a fractional ``retrain_epochs``, the training iteration after which the units are chosen."""
        if float(self.retrain_epochs).is_integer():
            return None
        try:
            per_epoch = len(strategy.dataloader)
        except TypeError as error:
            raise ValueError("a fractional retrain_epochs needs a training data loader with a length") from error
        return max(1, round((strategy.train_epochs - self.retrain_epochs) * per_epoch))

    def _start_retraining(self, strategy: Any) -> None:
        self.freeze.restore(strategy.model)
        self._pending = self._select(strategy)
        self._cut(self._isolate(strategy.model, self._pending, retraining=True))

    def _note_unread(self, model: nn.Module, heads: set[str], sources: dict[str, Source | None]) -> None:
        """On a task head's first experience: the units below it frozen by then, the ones
        ``head_transfer=False`` keeps it from reading. Noted whatever ``head_transfer`` is, so the
        option may change between experiences."""
        for head in heads:
            source = sources[head]
            if head not in self.unread and source is not None:
                below = n_units(model.get_submodule(source.layer))
                self.unread[head] = self.freeze.frozen_units(source.layer, below).clone()

    def _head_cuts(self, model: nn.Module, heads: set[str], sources: dict[str, Source | None]) -> dict[str, Tensor]:
        """``head_transfer=False``: zero the weights of these task heads from the units frozen before
        their task first came, and return them (to hold at zero while the task trains)."""
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
                        stacklevel=3,
                    )
                continue
            below = n_units(model.get_submodule(source.layer))
            unread = self.unread[head]
            unread = torch.cat([unread, unread.new_zeros(below - unread.numel())])  # units added since are free
            rows = torch.ones(n_units(model.get_submodule(head)), dtype=torch.bool)
            cut = sever(model, head, source, rows, ~unread)
            if cut is not None and cut.any():
                cuts[f"{head}.weight"] = cut
        return cuts

    def _cut(self, cuts: dict[str, Tensor]) -> None:
        """Hold these weight entries at zero for the rest of the experience (with those already held)."""
        for name, cut in cuts.items():
            self._cuts[name] = self._cuts[name] | cut if name in self._cuts else cut

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._recognised = [0, 0]
        self._untap()
        # during an experience (periodic evaluation) its task is not learned yet: plain outputs then
        if self.task_inference and len(self.recognizer) and not self._in_experience:
            if not self.layers:  # e.g. evaluating right after load_state_dict
                self._scan(strategy.model)
            self._tap = self._capture(strategy.model)
            if self.task_inference == "domain":
                self._masking = self._mask_output(strategy.model)

    def after_eval_forward(self, strategy: Any, **kwargs: Any) -> None:
        """Recognise each input's task and let only that task's classes win, or weigh each class by
        its task's probability (``"class"``, ``task_posterior``); count the inputs whose task was
        recognised."""
        if self._tap is None:
            return
        if self.task_inference == "domain":  # recognised, and outputs masked, inside the forward pass
            tasks, self._predicted = self._predicted, None
            true = torch.full_like(tasks, self._task_of_experience(strategy.experience))
        else:
            output = strategy.mb_output
            scores = self.recognizer.scores(self._viewed(strategy.model, self._tap, strategy.mb_x, strategy.mb_task_id))
            tasks = scores.argmax(-1)
            task_of_class = self.recognizer.task_of_class(output.shape[1])
            if self.task_posterior is None:
                strategy.mb_output = recognised_task_logits(output, tasks, self.recognizer.class_mask(output.shape[1]))
            else:
                strategy.mb_output = task_weighted_log_probs(output, scores, task_of_class, self.task_posterior)
            true = task_of_class[strategy.mb_y.cpu()]
        known = true >= 0
        self._recognised[0] += int((tasks.cpu() == true)[known].sum())
        self._recognised[1] += int(known.sum())

    @torch.no_grad()
    def _viewed(self, model: nn.Module, tap: FeatureTap, x: Tensor, t: Tensor) -> Tensor:
        """The features ``tap`` read in the forward pass of ``x``, averaged with those of its views."""
        features = tap.pop()
        for view in self.recognition_views:
            avalanche_forward(model, view(x), t)
            features = features + tap.pop()
        return features / (1 + len(self.recognition_views))

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self._tap is None:
            return
        self._untap()
        correct, total = self._recognised
        evaluator = getattr(strategy, "evaluator", None)
        if total and evaluator is not None:
            experience = strategy.experience
            stream = getattr(getattr(experience, "origin_stream", None), "name", "eval")
            stream = stream if stream.endswith("_stream") else f"{stream}_stream"
            name = f"RNF/TaskRecognition/eval_phase/{stream}/Exp{experience.current_experience:03d}"
            evaluator.publish_metric_value(MetricValue(self, name, correct / total, strategy.clock.train_iterations))

    def _untap(self) -> None:
        if self._tap is not None:
            self._tap.remove()
            self._tap = None
        if self._masking is not None:
            self._masking.remove()
            self._masking = None
        self._predicted = None

    def _mask_output(self, model: nn.Module) -> Any:
        """``"domain"``: a forward hook on the output layer that recognises each input's task (the tap
        has read every feature by then) and recomputes the output from that task's own units."""
        module = model.get_submodule(self._output_layer().name)
        masks = torch.stack([self._columns(model, units)[0] for units in self.task_inputs])

        def hook(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
            tasks = self.recognizer.predict(self._tap.pop()).cpu()
            self._predicted = tasks
            x = inputs[0]
            return nn.functional.linear(x * masks.to(x)[tasks.to(x.device)], layer.weight, layer.bias)

        return module.register_forward_hook(hook)

    def _task_of_experience(self, experience: Any) -> int:
        """The task learned in ``experience`` (the latest, if it was trained more than once); -1: none."""
        tasks = [i for i, e in enumerate(self.task_experiences) if e == experience.current_experience]
        return tasks[-1] if tasks else -1

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Hold out part of the experience's training data for the tolerance search."""
        dataset = strategy.adapted_dataset
        self._train_part, self._holdout_part, self._held_out = dataset, None, None
        if self.search is None:
            return
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + strategy.experience.current_experience)
        order = torch.randperm(len(dataset), generator=generator).tolist()
        n_holdout = max(1, round(self.holdout * len(dataset)))
        if n_holdout >= len(dataset):
            raise ValueError(
                f"Experience {strategy.experience.current_experience} has {len(dataset)} training samples: too few "
                f"to hold out {self.holdout:.0%} for the max_drop search and train on the rest."
            )
        self._holdout_part = dataset.subset(sorted(order[:n_holdout]))
        self._train_part = strategy.adapted_dataset = dataset.subset(sorted(order[n_holdout:]))

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._in_experience = False
        model = strategy.model
        self.freeze.restore(model)
        retrained = self._pending is not None
        selection = self._pending if retrained else self._select(strategy)
        self._pending, self._cuts = None, {}
        self._freeze(model, selection)
        if retrained and self.search is not None and self.searches:
            batches = self._holdout_batches(strategy)
            weights = {}
            if self.task_inference == "domain":  # the task reads its own units only (the others are frozen now)
                weight = model.get_submodule(self._output_layer().name).weight
                weights = {self._output_weight(): weight * self._columns(model, self.task_inputs[-1])}
            accuracy = self._accuracy(model, weights, batches, next(iter(self._rows.values()), None))
            self.searches[-1] = replace(self.searches[-1], retrained_accuracy=accuracy)
        if self.task_inference:
            self._learn_task(strategy, selection.sources)
        self.raw_scores.append({k: v.cpu() for k, v in selection.relevance.items()})
        self.scores.append({k: v.cpu() for k, v in selection.normalized.items()})
        self.relevance_seconds.append(selection.seconds)
        self.frozen_fractions.append({layer.name: self.freeze.frozen_fraction(layer.name) for layer in self.layers})
        self._publish(strategy)
        self._train_part = self._holdout_part = self._held_out = None

    def _select(self, strategy: Any) -> _Selection:
        """Score the units by LRP and choose the ones this experience keeps (within the budget)."""
        model = strategy.model
        self._scan(model)
        start = time.perf_counter()
        scores = unit_relevance(
            model,
            self.layers,
            self._batches(strategy, self._train_part, self.reference_size),
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
                stacklevel=3,
            )
        heads = self._task_heads(model, strategy.experience)
        self._rows = self._class_rows(model, strategy.experience) if self.task_inference == "class" else {}
        sources = unit_sources(model, self.layers, self._all_heads(model))
        last = self.keep_last and self._experiences_left(strategy.experience) == 1
        budgets = self._budgets(model, strategy.experience, last)
        calibration = self._calibration_batches(strategy)
        if self.search is None:
            new = self._new_units(model, normalized, heads, budgets, KeepFree() if last else self.selection)
        else:
            new = self._searched_units(strategy, normalized, heads, budgets, sources, calibration, last)
        relevance = {k: v / max(scores.n_samples, 1) for k, v in scores.relevance.items()}
        return _Selection(new, heads, sources, calibration, relevance, normalized, seconds, last)

    # ------------------------------------------------------------------ helpers
    def _scan(self, model: nn.Module) -> None:
        self.layers = find_unit_layers(model, strict=self.strict)
        loose = unsupported_parameters(model, self.layers)
        if loose and "unsupported" not in self._warned:
            self._warned.add("unsupported")
            warnings.warn(f"RNF leaves these parameters trainable (strict=False): {', '.join(loose)}", stacklevel=3)

    def _batches(self, strategy: Any, dataset: Any, size: int | None) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Batches of a class-balanced sample of ``size`` items of ``dataset`` (eval transforms)."""
        experience = strategy.experience
        dataset = (dataset if dataset is not None else experience.dataset).eval()
        if size is not None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + experience.current_experience)
            dataset = dataset.subset(balanced_indices(torch.as_tensor(list(dataset.targets)), size, generator).tolist())
        # a generator of its own: a loader draws its base seed from the global RNG otherwise, which would
        # shift the strategy's later shuffles away from those of the same run without RNF
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False, collate_fn=dataset.collate_fn,
                            generator=torch.Generator())
        for x, y, t, *_ in loader:
            yield x.to(strategy.device), y.to(strategy.device), t.to(strategy.device)

    def _holdout_batches(self, strategy: Any) -> list[tuple[Tensor, Tensor, Tensor]]:
        """The held-out part's batches, loaded once per experience: the search, the retrained
        accuracy and the recogniser's calibration all read them (loading through the dataset's
        transforms costs more than the forward passes on a small model)."""
        if self._held_out is None:
            self._held_out = list(self._batches(strategy, self._holdout_part, None))
        return self._held_out

    @staticmethod
    def _task_heads(model: nn.Module, experience: Any) -> set[str]:
        """Unit layers inside the ``MultiHeadClassifier`` heads of the experience's tasks."""
        return RNFPlugin._heads(model, experience.task_labels)

    @staticmethod
    def _all_heads(model: nn.Module) -> set[str]:
        return RNFPlugin._heads(model, None)

    @staticmethod
    def _heads(model: nn.Module, tasks: Any) -> set[str]:
        heads: set[str] = set()
        for name, module in model.named_modules():
            if isinstance(module, MultiHeadClassifier):
                for task in tasks if tasks is not None else list(module.classifiers.keys()):
                    prefix = f"{name}.classifiers.{task}".lstrip(".")
                    head = module.classifiers[str(task)]
                    heads |= {
                        f"{prefix}.{sub}".rstrip(".") for sub, m in head.named_modules() if isinstance(m, nn.Linear)
                    }
        return heads

    def _output_layer(self) -> UnitLayer:
        return self.layers[-1]

    def _check_output_layer(self, model: nn.Module) -> nn.Linear:
        """Task inference needs a single head: the last unit layer registered, a Linear over all classes."""
        layer = self._output_layer()
        module = model.get_submodule(layer.name)
        if not isinstance(module, nn.Linear) or self._all_heads(model):
            raise ValueError(
                "task_inference needs a single-head model whose last layer is a Linear over all classes "
                f"(class-incremental); {layer.name!r} is {type(module).__name__}"
                + (" inside a multi-head classifier: task labels are given, use task_inference=False." if
                   self._all_heads(model) else ".")
            )
        return module

    def _class_rows(self, model: nn.Module, experience: Any) -> dict[str, Tensor]:
        """Task inference: the output layer's rows of the experience's classes."""
        layer = self._output_layer()
        module = self._check_output_layer(model)
        rows = torch.zeros(module.out_features, dtype=torch.bool)
        rows[torch.as_tensor(list(experience.classes_in_this_experience), dtype=torch.long)] = True
        learned = rows & (self.recognizer.task_of_class(module.out_features) >= 0)
        if learned.any():
            raise ValueError(
                f"task_inference='class' gives each experience classes of its own, but experience "
                f"{experience.current_experience} has classes {learned.nonzero().flatten().tolist()} of an earlier "
                "one, whose output rows are frozen: for experiences that share classes use task_inference='domain'."
            )
        return {layer.name: rows}

    def _taps(self, model: nn.Module) -> list[Tap]:
        """The layers whose inputs recognise a task (``recognition_layers``), with the units feeding them."""
        sources = unit_sources(model, self.layers, set())
        output = self._output_layer().name
        if sources[output] is None:
            raise ValueError("task_inference needs a hidden layer in front of the output layer")
        if self.recognition_layers == "input":
            first = self.layers[0].name
            return [Tap(first, None, n_inputs(model.get_submodule(first)))]
        names = [layer.name for layer in self.layers if sources[layer.name] is not None]
        if self.recognition_layers == "last":
            names = [output]
        return [Tap(n, sources[n].layer, n_units(model.get_submodule(sources[n].layer))) for n in names]

    def _capture(self, model: nn.Module) -> FeatureTap:
        """Record the recognition features on every forward pass."""
        return FeatureTap(model, self._taps(model))

    @torch.no_grad()
    def _learn_task(self, strategy: Any, sources: dict[str, Source | None]) -> None:
        """Fit the recognizer's statistics of the finished task on its kept units' features; the
        held-out part (with ``max_drop``) calibrates the task's distance scale."""
        model = strategy.model
        with self._capture(model) as tap:
            features, labels = self._features_of(
                strategy, tap, self._batches(strategy, self._train_part, self.recognition_samples)
            )
            held_out = None
            if self._holdout_part is not None:
                held_out = self._features_of(strategy, tap, self._holdout_batches(strategy))[0]
        keep = {t.source: self.freeze.frozen_units(t.source, t.units) for t in tap.taps if t.source is not None}
        last = tap.taps[-1].source
        if last is not None and not keep[last].any():
            warnings.warn(
                f"RNF: task {len(self.recognizer)} keeps no unit of {last!r}, in front of the output layer; "
                "its recognition statistics use all of that layer's units, which later tasks change. "
                "A smaller max_drop keeps more units.",
                stacklevel=3,
            )
            keep[last] = torch.ones_like(keep[last])
        self.recognizer.add_task(tap.columns(keep), features, labels, held_out)
        self.task_experiences.append(strategy.experience.current_experience)

    def _features_of(
        self, strategy: Any, tap: FeatureTap, batches: Iterable[tuple[Tensor, Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor]:
        """The recognition features (read by ``tap``) and the labels of ``batches``."""
        model = strategy.model
        name = self._output_layer().name
        width = model.get_submodule(name).out_features
        features, labels = [], []
        with evaluating(model):
            for x, y, t in batches:
                logits = avalanche_forward(model, x, t)
                if logits.shape[-1] != width:
                    raise ValueError(
                        f"task_inference takes {name!r}, the last Linear registered, as the output layer, but it "
                        f"has {width} outputs and the model {logits.shape[-1]}: register the classifier last."
                    )
                features.append(self._viewed(model, tap, x, t))
                labels.append(y)
        return torch.cat(features), torch.cat(labels)

    def _budgets(self, model: nn.Module, experience: Any, last: bool = False) -> dict[str, int]:
        """Per layer: how many units this experience may newly freeze (the capacity budget; all free
        units on the stream's last experience with ``keep_last``)."""
        left = self._experiences_left(experience) if self.capacity == "fair" else None
        out = {}
        for layer in self.layers:
            size = n_units(model.get_submodule(layer.name))
            free = int((~self.freeze.frozen_units(layer.name, size)).sum())
            if last or isinstance(self.capacity, str):
                out[layer.name] = fair_share(free, left)
            else:
                out[layer.name] = min(free, math.ceil(self.capacity * size))
        return out

    def _experiences_left(self, experience: Any) -> int | None:
        """Experiences of the stream from this one to its end (``None``: the length is unknown)."""
        total = self.n_experiences if self.n_experiences is not None else _stream_length(experience)
        return None if total is None else total - experience.current_experience

    def _new_units(
        self,
        model: nn.Module,
        scores: dict[str, Tensor],
        heads: set[str],
        budgets: dict[str, int],
        rule: SelectionRule | None,
    ) -> dict[str, Tensor]:
        """Per layer, the free units to freeze now: ``rule``'s pick within the budget; whole task heads."""
        new: dict[str, Tensor] = {}
        shared = self._output_layer().name if self.task_inference == "domain" else None
        for layer in self.layers:
            frozen = self.freeze.frozen_units(layer.name, n_units(model.get_submodule(layer.name)))
            if layer.name == shared:  # its columns are frozen instead (_freeze_columns)
                new[layer.name] = torch.zeros_like(frozen)
            elif layer.name in heads:
                new[layer.name] = ~frozen
            elif layer.name in self._rows:
                new[layer.name] = self._rows[layer.name] & ~frozen
            elif layer.name in scores and rule is not None:
                score = scores[layer.name].cpu()
                new[layer.name] = limit(score, rule(score, frozen) & ~frozen, budgets[layer.name])
            else:
                new[layer.name] = torch.zeros_like(frozen)
        return new

    def _searched_units(
        self,
        strategy: Any,
        scores: dict[str, Tensor],
        heads: set[str],
        budgets: dict[str, int],
        sources: dict[str, Source | None],
        calibration: list[tuple[Tensor, Tensor, Tensor]],
        keep_all: bool = False,
    ) -> dict[str, Tensor]:
        """The smallest selection within ``max_drop`` held-out accuracy (:class:`ToleranceSearch`);
        with ``keep_all``, every free unit (recorded as mass 1 with its held-out accuracy)."""
        model = strategy.model
        batches = self._holdout_batches(strategy)
        cache: dict[bytes, float] = {}

        def pick(mass: float) -> dict[str, Tensor]:
            rule = (KeepFree() if keep_all else RelevanceMass(mass)) if mass > 0 else None
            return self._new_units(model, scores, heads, budgets, rule)

        def accuracy(mass: float) -> float:
            new = pick(mass)
            keep = self._kept(new)
            key = b"".join(k.numpy().tobytes() for k in keep.values())
            if key not in cache:
                weights = self._isolated(model, sources, keep, new, calibration)
                cache[key] = self._accuracy(model, weights, batches, classes)
            return cache[key]

        classes = next(iter(self._rows.values()), None)  # task inference: only the task's classes compete
        start = time.perf_counter()
        full = self._accuracy(model, {}, batches, classes)
        result = SearchResult(1.0, accuracy(1.0), full, 2) if keep_all else self.search(accuracy, full)
        self.searches.append(replace(result, seconds=time.perf_counter() - start))
        return pick(result.mass)

    def _kept(self, new: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per layer, the units frozen once ``new`` is frozen too."""
        return {name: self.freeze.frozen_units(name, units.numel()) | units for name, units in new.items()}

    def _calibration_batches(self, strategy: Any) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Training samples on which newly frozen BatchNorm channels get their statistics (isolation)."""
        if not any(layer.norm for layer in self.layers):
            return []
        return list(self._batches(strategy, self._train_part, CALIBRATION_SAMPLES))

    def _calibrated(
        self, model: nn.Module, weights: dict[str, Tensor], new: dict[str, Tensor], calibration: list
    ) -> dict[str, Tensor]:
        norms = [(layer.norm, new[layer.name]) for layer in self.layers if layer.norm is not None]
        tensors = calibrated_norms(model, weights, norms, calibration, _call)
        return {k: v for k, v in tensors.items() if k not in weights}

    def _isolated(
        self,
        model: nn.Module,
        sources: dict[str, Source | None],
        keep: dict[str, Tensor],
        new: dict[str, Tensor],
        calibration: list,
    ) -> dict[str, Tensor]:
        """Weights (and recalibrated BatchNorm statistics) of the sub-network of the ``keep`` units."""
        weights = isolated_weights(model, sources, keep)
        return {**weights, **self._calibrated(model, weights, new, calibration)}

    @staticmethod
    @torch.no_grad()
    def _accuracy(
        model: nn.Module, weights: dict[str, Tensor], batches: list[tuple[Tensor, Tensor, Tensor]],
        classes: Tensor | None = None,
    ) -> float:
        """Accuracy of ``model`` with ``weights`` swapped in (eval mode; the model is left as it was),
        over the outputs ``classes`` (a boolean mask; ``None``: all)."""
        correct = total = 0
        with evaluating(model):
            for batch in batches:
                logits = _call(model, weights, batch)
                if classes is not None:
                    logits = logits.masked_fill(~classes.to(logits.device), float("-inf"))
                correct += int((logits.argmax(-1) == batch[1]).sum())
                total += len(batch[1])
        return correct / max(total, 1)

    def _isolate(self, model: nn.Module, selection: _Selection, retraining: bool = False) -> dict[str, Tensor]:
        """With isolation, cut the newly kept units off the free ones and recalibrate their norms.

        Before ``retraining`` with ``task_inference="domain"``, the shared output layer is cut off the
        free units too, so the kept sub-network trains as the recognised task will compute it.
        Returns the cut weight entries by tensor name (to hold at zero while the units retrain).
        """
        if not (self.isolate if self.isolate is not None else bool(self._all_heads(model))):
            return {}
        keep = self._kept(selection.new)
        cuts = {}
        for layer in self.layers:
            source = selection.sources[layer.name]
            if source is not None:
                rows = selection.new[layer.name]
                if retraining and self.task_inference == "domain" and layer.name == self._output_layer().name:
                    rows = torch.ones_like(rows)
                cut = sever(model, layer.name, source, rows, keep[source.layer])
                if cut is not None and cut.any():
                    cuts[f"{layer.name}.weight"] = cut
        with torch.no_grad():
            for name, value in self._calibrated(model, {}, selection.new, selection.calibration).items():
                tensor_by_name(model, name).copy_(value)
        return cuts

    def _freeze(self, model: nn.Module, selection: _Selection) -> None:
        """Isolate (see :meth:`_isolate`) and freeze the selection's units; whole task heads are remembered."""
        self._isolate(model, selection)
        keep = self._kept(selection.new)
        if self.task_inference == "domain":
            self._freeze_columns(model, selection.new)
        for layer in self.layers:
            units = selection.new[layer.name]
            if layer.name in selection.heads:
                self.whole_heads.add(layer.name)
            if units.any():
                self.freeze.freeze(model, layer, units)
            expected = selection.keeps_all or layer.name in self.whole_heads or layer.name in self._rows
            if not expected and bool(keep[layer.name].all()) and layer.name not in self._warned:
                self._warned.add(layer.name)
                warnings.warn(
                    f"RNF: all {units.numel()} units of layer {layer.name!r} are frozen, so later experiences cannot "
                    "train it (capacity exhausted). Use a smaller selection fraction/mass, max_drop, "
                    "capacity='fair' or a wider layer.",
                    stacklevel=3,
                )

    def _freeze_columns(self, model: nn.Module, new: dict[str, Tensor]) -> None:
        """``"domain"``: give the earlier tasks' columns of the shared output layer their values back (they
        were held at zero while this task trained), and freeze this task's columns and the bias."""
        self.entries.restore(model)
        module = model.get_submodule(self._output_layer().name)
        source = self._output_source(model).layer
        units = new[source].clone()
        if not units.any():
            warnings.warn(
                f"RNF: task {len(self.task_inputs)} keeps no unit of {source!r}, in front of the shared output "
                "layer: its outputs are the output layer's bias alone. A smaller max_drop keeps more units.",
                stacklevel=3,
            )
        self.entries.freeze(model, self._output_weight(), self._columns(model, units))
        if module.bias is not None:
            bias = torch.ones_like(module.bias, dtype=torch.bool)
            self.entries.freeze(model, f"{self._output_layer().name}.bias", bias)
        self.task_inputs.append(units)

    def _output_source(self, model: nn.Module) -> Source:
        source = unit_sources(model, self.layers, set())[self._output_layer().name]
        if source is None:
            raise ValueError("task_inference needs a hidden layer in front of the output layer")
        return source

    def _output_weight(self) -> str:
        return f"{self._output_layer().name}.weight"

    def _columns(self, model: nn.Module, units: Tensor) -> Tensor:
        """Boolean mask over the output layer's weight: its columns from ``units`` of the layer feeding it."""
        module = model.get_submodule(self._output_layer().name)
        return input_mask(module, self._output_source(model), units).expand_as(module.weight)

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
        if self.search is not None and self.searches:
            result = self.searches[-1]
            evaluator.publish_metric_value(MetricValue(self, "RNF/SearchMass", result.mass, x))
            evaluator.publish_metric_value(MetricValue(self, "RNF/HoldoutAcc_full", result.full_accuracy, x))
            evaluator.publish_metric_value(MetricValue(self, "RNF/HoldoutAcc_kept", result.accuracy, x))
            if result.retrained_accuracy is not None:
                evaluator.publish_metric_value(
                    MetricValue(self, "RNF/HoldoutAcc_retrained", result.retrained_accuracy, x)
                )

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
            "searches": [vars(r) for r in self.searches],
            "recognizer": self.recognizer.state_dict(),
            "task_experiences": list(self.task_experiences),
            "entries": self.entries.state_dict(),
            "task_inputs": [t.clone() for t in self.task_inputs],
            "unread": {k: v.clone() for k, v in self.unread.items()},
            "warned": sorted(self._warned),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.freeze.load_state_dict(state["freeze"])
        self.raw_scores = [dict(s) for s in state["raw_scores"]]
        self.scores = [dict(s) for s in state["scores"]]
        self.frozen_fractions = [dict(f) for f in state["frozen_fractions"]]
        self.relevance_seconds = list(state["relevance_seconds"])
        self.whole_heads = set(state["whole_heads"])
        self.searches = [SearchResult(**r) for r in state.get("searches", [])]
        self.recognizer.load_state_dict(state.get("recognizer", {"tasks": []}))
        self.task_experiences = list(state.get("task_experiences", []))
        self.entries.load_state_dict(state.get("entries", {"masks": {}, "values": {}}))
        self.task_inputs = [t.clone().bool() for t in state.get("task_inputs", [])]
        self.unread = {k: v.clone().bool() for k, v in state.get("unread", {}).items()}
        self._warned = set(state["warned"])

    def overall_frozen_fraction(self, model: Any) -> float:
        """Frozen fraction over all units of the layers scored after the last experience."""
        fractions = self.frozen_fractions[-1] if self.frozen_fractions else {}
        total = sum(self.freeze.unit_masks[n].sum().item() for n in fractions if n in self.freeze.unit_masks)
        units = sum(n_units(model.get_submodule(n)) for n in fractions)
        return total / units if units else 0.0

    def state_nbytes(self) -> int:
        """Bytes RNF keeps between experiences: masks and frozen values, and the recognizer's statistics."""
        inputs = sum(t.numel() * t.element_size() for t in [*self.task_inputs, *self.unread.values()])
        return self.freeze.nbytes() + self.entries.nbytes() + inputs + self.recognizer.nbytes()


def _call(model: nn.Module, tensors: dict[str, Tensor], batch: tuple[Tensor, ...]) -> Tensor:
    """Logits of ``model`` on ``batch = (x, y, task_labels)`` with ``tensors`` swapped in."""
    x, _, t = batch[:3]
    return torch.func.functional_call(model, tensors, (x, t) if isinstance(model, MultiTaskModule) else (x,))


def _is_number(value: Any) -> bool:
    """An int or a float, not a bool (``True`` would pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _stream_length(experience: Any) -> int | None:
    """Length of the benchmark stream the experience comes from (not of a slice of it), if known."""
    try:
        stream = experience.origin_stream
    except Exception:  # hand-made experiences have no origin stream
        return None
    benchmark = getattr(stream, "benchmark", None)
    full = getattr(benchmark, f"{getattr(stream, 'name', '')}_stream", None) if benchmark is not None else None
    try:
        return len(full if full is not None else stream)
    except TypeError:  # lazy streams have no length
        return None
