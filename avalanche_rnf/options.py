"""RNF's options, one small frozen dataclass per part of the algorithm.

Each checks its values when it is made, so a wrong value fails where it is written, not after an
experience of training. :class:`~avalanche_rnf.plugin.RNFPlugin` takes them as keywords
(``relevance=``, ``tolerance=``, ``capacity=``, ``retraining=``, ``task_inference=``); where one
value says it all, the plugin also takes that value alone (``tolerance=0.01``,
``capacity="unlimited"``, ``retraining=1``, ``task_inference="class"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence, Union

from torch import Tensor, nn
from zennit.canonizers import Canonizer
from zennit.core import Composite

from avalanche_rnf.ablation import METHODS, Method, alternative_scores
from avalanche_rnf.layers import UnitLayer
from avalanche_rnf.recognition import POWER, View, resolve_views
from avalanche_rnf.reference import check_reference_size
from avalanche_rnf.relevance import Forward, Reduction, Start, make_composite, summarized, unit_relevance
from avalanche_rnf.tolerance import ToleranceSearch

Share = Union[Literal["fair", "unlimited"], float]
Batch = tuple[Tensor, Tensor, Tensor]


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (``True`` would pass as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Relevance:
    """How units are scored: LRP on a class-balanced reference set of each experience.

    :param composite: zennit composite, by registered name or as an instance.
    :param canonizers: zennit canonizers for a named composite (default: merge BatchNorm layers and route
        residual sums through a conserving rule, :func:`~avalanche_rnf.canonizers.default_canonizers`).
    :param start: starting relevance at the true-label logit: ``"onehot"`` (1 per sample) or
        ``"logit"`` (the logit's value).
    :param reduction: ``"abs"`` or ``"positive"`` relevance counts towards a unit's score.
    :param reference_size: number of training samples (class-balanced) of the experience to run
        LRP on; ``None`` for all of them. 300 scored within the seeds' spread of 1000 on validation
        splits of nine streams (``sweep-defaults-reference-size-*``) at a third of the relevance pass.
    :param method: ``"lrp"``, or another unit score for ablations (:mod:`~avalanche_rnf.ablation`):
        ``"random"``, ``"activation"``, ``"weight"`` or ``"taylor"``.
    :param batch_size: at most this many samples per batch in RNF's passes over an experience; fewer where
        the unit layers' outputs of a batch would exceed 8 MiB (:func:`~avalanche_rnf.relevance.lean_batch_size`).
    """

    composite: str | Composite = "epsilon_plus_flat"
    canonizers: Sequence[Canonizer] | None = None
    start: Start = "onehot"
    reduction: Reduction = "abs"
    reference_size: int | None = 300
    batch_size: int = 256
    method: Method = "lrp"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}.")
        if self.start not in ("onehot", "logit"):
            raise ValueError(f"start must be 'onehot' or 'logit', got {self.start!r}.")
        if self.reduction not in ("abs", "positive"):
            raise ValueError(f"reduction must be 'abs' or 'positive', got {self.reduction!r}.")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size!r}.")
        check_reference_size(self.reference_size)
        make_composite(self.composite, self.canonizers)  # fail early on an unknown name

    def score(self, model: nn.Module, layers: Sequence[UnitLayer], batches: Iterable[Batch], forward: Forward,
              seed: int = 0) -> tuple[dict[str, Tensor], dict[str, Tensor], float]:
        """Each unit's mean relevance (or ``method``'s score), its normalized score and the pass's
        seconds (:func:`~avalanche_rnf.relevance.summarized`); ``seed`` seeds ``"random"``."""
        start = time.perf_counter()
        options: dict[str, Any] = dict(forward=forward, start=self.start, reduction=self.reduction)
        if self.method == "lrp":
            scores = unit_relevance(model, layers, batches, composite=make_composite(self.composite, self.canonizers),
                                    **options)
        else:
            scores = alternative_scores(self.method, model, layers, batches, seed=seed, **options)
        return summarized(scores, time.perf_counter() - start)


@dataclass(frozen=True)
class Tolerance:
    """Search, per experience, the smallest relevance mass whose kept units lose at most
    ``max_drop`` accuracy on held-out training data
    (:class:`~avalanche_rnf.tolerance.ToleranceSearch`).

    :param max_drop: accuracy tolerance, a fraction (e.g. ``0.01``).
    :param holdout: fraction of each experience's training data held out for the search.
    :param steps: bisection steps of the search.
    """

    max_drop: float
    holdout: float = 0.1
    steps: int = 7

    def __post_init__(self) -> None:
        self.search()  # checks max_drop and steps
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be a fraction in (0, 1), got {self.holdout!r}.")

    def search(self) -> ToleranceSearch:
        return ToleranceSearch(self.max_drop, self.steps)


@dataclass(frozen=True)
class Capacity:
    """How many units an experience may freeze.

    :param share: ``"fair"``: an experience may freeze at most an equal share of each layer's
        free units among the experiences left in the stream
        (:func:`~avalanche_rnf.tolerance.fair_share`); ``"unlimited"``: no cap; a fraction in
        ``(0, 1]``: at most that fraction of each layer's units (rounded up), whatever the stream's
        length, so a stream of known length can leave its last experience (``keep_last``) more than
        an equal share.
    :param flex: with ``"fair"``, an experience may freeze up to ``flex`` equal shares of a layer's
        free units, counting one share for each later experience (``1``: its equal share). Where a
        tolerance search needs fewer units, it takes fewer, and the rest stays free for the
        experiences after it; a larger ``flex`` lets the search, not the share, decide how many
        units an early experience keeps.
    :param n_experiences: stream length for the fair share and ``keep_last``; ``None``: read from
        the experience's origin stream (no cap if unknown).
    :param keep_last: on the last experience of the stream (its length known), keep every free
        unit instead of choosing (with a tolerance no search is run): no later experience needs
        them, so the last task keeps the whole capacity left. Training past the stream's end then
        finds no free unit. ``"auto"``: the scenario's choice
        (:data:`~avalanche_rnf.scenario.DEFAULT_KEEP_LAST`: on with task labels and in
        domain-incremental streams, off with class-incremental task inference).
    """

    share: Share = "fair"
    n_experiences: int | None = None
    keep_last: bool | Literal["auto"] = "auto"
    flex: float = 1.0

    def __post_init__(self) -> None:
        if self.share not in ("fair", "unlimited") and not (is_number(self.share) and 0 < float(self.share) <= 1):
            raise ValueError(f"capacity must be 'fair', 'unlimited' or a fraction in (0, 1], got {self.share!r}.")
        if not (isinstance(self.keep_last, bool) or self.keep_last == "auto"):
            raise ValueError(f"keep_last must be True, False or 'auto', got {self.keep_last!r}.")
        if not (is_number(self.flex) and self.flex >= 1):
            raise ValueError(f"capacity flex must be a number of equal shares, at least 1, got {self.flex!r}.")
        if self.flex != 1 and self.share != "fair":
            raise ValueError(f"capacity flex stretches the fair share: it needs share 'fair', got {self.share!r}.")
        if self.n_experiences is not None and self.n_experiences < 1:
            raise ValueError(f"n_experiences must be positive, got {self.n_experiences!r}.")


@dataclass(frozen=True)
class Retraining:
    """Train the kept sub-network alone for the last ``epochs`` of each experience (PackNet's
    retraining after pruning, within the same epoch budget).

    The units are chosen after ``train_epochs - epochs`` epochs, isolated (their weights from free
    units held at zero) and trained on, then frozen at the end of the experience. It recovers what
    pruning cost, so a small capacity share keeps more accuracy. Needs isolation.

    :param epochs: epochs of retraining; a fraction (e.g. ``0.5`` with one epoch) chooses the
        units after that share of the experience's training iterations.
    :param lr_scale: multiply the optimizer's learning rates by this factor for each retraining
        step, as learning-rate rewinding does after pruning (Renda et al. 2020). The rates are
        scaled just before each optimizer step and given back right after it, so learning-rate
        schedulers see and set the unscaled ones.
    """

    epochs: float
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (is_number(self.epochs) and self.epochs > 0):
            raise ValueError(f"retraining epochs must be a positive number of epochs, got {self.epochs!r}.")
        if not (is_number(self.lr_scale) and self.lr_scale > 0):
            raise ValueError(f"retraining lr_scale must be a positive factor, got {self.lr_scale!r}.")


@dataclass(frozen=True)
class TaskInference:
    """Recognise the task of each input in evaluation, for streams without task labels, on a model
    whose last layer is a Linear over all classes (isolation is on).

    After each experience a :class:`~avalanche_rnf.recognition.TaskRecognizer` learns the task's
    feature statistics. Task-recognition accuracy per evaluated experience is published as
    ``RNF/TaskRecognition/eval_phase/<stream>_stream/Exp<k>``.

    :param mode: ``"auto"`` (the default): chosen from the model and the stream when training starts
        (:mod:`~avalanche_rnf.scenario`): none for a multi-head model, ``"class"`` where each
        experience brings classes of its own, ``"domain"`` where all hold the same classes.
        ``"class"``, class-incremental: each experience brings its own classes; their
        output rows are frozen whole and isolated, and in evaluation only the recognised task's
        classes can win. ``"domain"``, domain-incremental (e.g. PermutedMNIST): every experience
        shares the output layer's classes; each task owns the units it keeps in the layer feeding
        the output layer, the output layer's columns from them are frozen with the task, and in
        evaluation the output layer reads only the recognised task's units.
    :param layers: which features recognise a task: ``"auto"`` (the default): the mode's validated
        choice (:data:`~avalanche_rnf.scenario.DEFAULT_RECOGNITION`); ``"all"``: what its kept units
        feed into every layer after the first (conv channels as mean and spread over positions);
        ``"last"``: only the output layer's input; ``"input"``: what the first unit layer reads (the
        model's input when that layer comes first), the same for every task. A conv first layer
        reads only each input channel's mean and spread. ``"all+input"``: ``"all"``, plus the model's
        input values (images average-pooled to at most 1024, also where the model flattens them) in
        one linear discriminant analysis whose covariance is pooled over every task
        (:class:`~avalanche_rnf.pooled.JointRecognizer`).
    :param samples: training samples (class-balanced) per task whose features give its statistics;
        ``None``: all of them.
    :param shrinkage: weight of the scaled identity in each task's shrunk covariance: small values
        trust the features' correlations, large ones count every feature alike (``1``: class
        means and one scale); ``"auto"`` (the default): the mode's validated choice.
    :param power: exponent of the power transform ``sign(x) * |x| ** power`` applied to the
        features before their statistics are fitted (``0.5`` suits conv channels' means and
        spreads, ``1`` MLP units).
    :param posterior: ``"class"`` mode only: ``None`` lets only the recognised task's classes win;
        a scale ``s`` instead scores each class by the log-probability of its task (a softmax of
        ``s`` times the recogniser's standardised scores) plus its log-probability among its
        task's classes (:func:`~avalanche_rnf.recognition.task_weighted_log_probs`).
    :param views: ``"class"`` mode only: views of each input whose recognition features are
        averaged with its own (names from :data:`~avalanche_rnf.recognition.VIEWS`, e.g.
        ``["hflip"]``, or callables on a batch). Each view costs one more forward pass. ``"auto"``
        (the default): the mirror image where the first experience's training transforms flip images
        horizontally (the model learns mirrored images as the same class), none otherwise.
    :param own_classes: ``"class"`` mode only: the training loss reads only the outputs of the
        experience's classes (and of any label in the mini-batch); the other classes' outputs are set
        to ``-inf`` first. Earlier tasks' rows are frozen and only the recognised task's classes compete
        in evaluation, so the loss then learns what evaluation asks of a task: to tell its own classes
        apart. Assumes a cross-entropy criterion (the default); ``False``: the loss reads every output.
        On validation splits (10 %, seeds 100 and 101, RNF otherwise at its defaults) off or on scored
        0.904 / 0.897 on SplitMNIST, 0.806 / 0.826 on SplitFashionMNIST and 0.438 / 0.443 on
        SplitCIFAR-10 (``sweep-defaults-class-own-classes-*``). With ``layers="all"`` alone the loss over
        every class can be the better choice: it teaches the kept units to tell tasks apart too.
    """

    mode: Literal["auto", "class", "domain"] = "auto"
    layers: Literal["auto", "all", "last", "input", "all+input"] = "auto"
    samples: int | None = 3000
    shrinkage: float | Literal["auto"] = "auto"
    power: float = POWER
    posterior: float | None = None
    views: Sequence[str | View] | Literal["auto"] = "auto"
    own_classes: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "class", "domain"):
            raise ValueError(f"task_inference must be 'auto', 'class' or 'domain', got {self.mode!r}.")
        if self.layers not in ("auto", "all", "last", "input", "all+input"):
            raise ValueError(
                f"recognition layers must be 'auto', 'all', 'last', 'input' or 'all+input', got {self.layers!r}.")
        check_reference_size(self.samples, "recognition samples")
        if self.shrinkage != "auto" and not (isinstance(self.shrinkage, (int, float)) and 0 < self.shrinkage <= 1):
            raise ValueError(f"recognition shrinkage must be 'auto' or in (0, 1], got {self.shrinkage!r}.")
        if not (isinstance(self.power, (int, float)) and 0 < self.power <= 1):
            raise ValueError(f"recognition power must be in (0, 1], got {self.power!r}.")
        if self.posterior is not None and not (isinstance(self.posterior, (int, float)) and self.posterior > 0):
            raise ValueError(f"task posterior must be None or a positive scale, got {self.posterior!r}.")
        if self.posterior is not None and self.mode == "domain":
            raise ValueError("a task posterior weighs the classes of recognised tasks: it needs mode 'class'.")
        if self.views != "auto" and resolve_views(self.views) and self.mode == "domain":
            raise ValueError("recognition views average features for class inference: they need mode 'class'.")


def as_option(value: Any, kind: type, name: str) -> Any:
    """``value`` as an option of ``kind``: itself, ``None``, or the one value that makes it."""
    if value is None or isinstance(value, kind):
        return value
    if kind is TaskInference and value is True:
        return TaskInference("class")
    if kind is TaskInference and value is False:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return kind(value)
    raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}.")
