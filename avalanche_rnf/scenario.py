"""Which scenario a stream is, as far as RNF's evaluation needs to know: what ``task_inference="auto"``
decides from the model and the classes of the stream's experiences.

- A multi-head model reads the task label of every input: task-incremental, nothing to infer.
- A single head whose experiences bring classes of their own: class-incremental, the task (and so
  its classes) is recognised from the input (``"class"``).
- A single head whose experiences all hold the same classes: domain-incremental, each task keeps
  its own units in front of the shared output layer and the recognised task's units are read
  (``"domain"``).
- Anything else (one experience; experiences sharing some classes but not all) infers nothing.

The validation scores quoted for the scenario defaults below were measured with relevance on 1000
samples per experience; the default ``Relevance.reference_size`` of 300 scored within the seeds'
spread of 1000 on the same validation splits (``sweep-defaults-reference-size-*``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from avalanche_rnf.options import Retraining, Tolerance
from avalanche_rnf.recognition import SHRINKAGE

Mode = Literal["class", "domain"]
Name = Literal["task", "class", "domain", "other"]
Layers = Literal["all", "last", "input", "all+input"]


@dataclass(frozen=True)
class Scenario:
    """A stream's scenario, the task inference it calls for, and why (one line for users)."""

    name: Name
    mode: Mode | None
    reason: str


def scenario_of(
    multi_head: bool, classes: Sequence[set[int]] | None, current: set[int], n_outputs: int | None = None,
    grows: bool = False,
) -> Scenario:
    """The scenario of a stream whose experiences hold ``classes`` (``None``: not known, e.g. a lazy
    stream), seen while training on an experience with ``current`` classes, for a model that reads
    task labels (``multi_head``) or a single head of ``n_outputs`` outputs (``grows``: one that
    grows with new classes, as Avalanche's ``IncrementalClassifier``).

    Without the stream's classes, a growing head, or an experience covering part of the head's
    outputs, counts as class-incremental, and one covering every output as domain-incremental.
    """
    if multi_head:
        return Scenario("task", None, "the model reads task labels (task heads)")
    if classes is None and grows:
        return Scenario("class", "class", "the head grows with new classes")
    if classes is None:
        if n_outputs is None or not current:
            return Scenario("other", None, "neither the stream's classes nor the head's size are known")
        if current >= set(range(n_outputs)):
            return Scenario("domain", "domain", f"the experience holds every class of the {n_outputs}-output head")
        return Scenario("class", "class", f"the experience holds {len(current)} of the head's {n_outputs} classes")
    sets = [set(c) for c in classes]
    if len(sets) < 2:
        return Scenario("other", None, "the stream has one experience")
    if all(s == sets[0] for s in sets):
        return Scenario("domain", "domain", f"all {len(sets)} experiences hold the same {len(sets[0])} classes")
    if sum(len(s) for s in sets) == len(set().union(*sets)):
        return Scenario("class", "class", f"each of the {len(sets)} experiences brings classes of its own")
    return Scenario("other", None, "the experiences share some classes but not all: neither class nor domain "
                    "inference fits; pass task_inference='class' or 'domain' to choose one")


def chosen_mode(scenario: Scenario, *, isolate: bool | None, explicit: bool, check: Callable[[], None]) -> Mode | None:
    """The task inference to use in ``scenario``: its mode, unless isolation is off or the model
    cannot take it (``check`` raises ``ValueError``); each of those, and ``explicit`` settings
    that end up unused, warn."""
    mode, why = scenario.mode, ""
    if mode is not None and isolate is False:
        mode, why = None, "isolate=False (task inference needs isolation)"
    if mode is not None:
        try:
            check()
        except ValueError as error:
            mode, why = None, str(error)
    if why:
        warnings.warn(f"RNF: task_inference='auto' found a {scenario.name}-incremental stream ({scenario.reason}) "
                      f"but infers no task: {why}", stacklevel=3)
    elif mode is None and explicit:
        warnings.warn(f"RNF: TaskInference settings given, but task_inference='auto' infers no task on this stream "
                      f"({scenario.reason}); pass the mode to force it.", stacklevel=3)
    return mode


DEFAULT_MAX_DROP: dict[Mode | None, float] = {"class": 0.005}
"""``tolerance="auto"``: the tolerance search's ``max_drop`` per task inference mode; none where a mode
is missing. Chosen on validation splits (10 % of the training data, seeds 100 and 101) of
class-incremental SplitMNIST and SplitFashionMNIST, with RNF otherwise at its defaults: ``max_drop``
0.005 was best of none, 0.002, 0.005 and 0.01 on both (0.854 against 0.769 without a search on
SplitMNIST, 0.707 against 0.691 on SplitFashionMNIST). With the own-classes loss and mirrored views
(``sweep-defaults-tolerance-class-*``) no search scored 0.911 / 0.833 / 0.453 against 0.897 / 0.826 /
0.462 on SplitMNIST / SplitFashionMNIST / SplitCIFAR-10: a tie on the mean, so 0.005 stays. In
task-incremental streams the search changed nothing beyond the seeds' spread; domain-incremental
streams were not validated."""


def default_tolerance(mode: Mode | None) -> Tolerance | None:
    """The tolerance search RNF runs at its defaults with task inference ``mode``."""
    return Tolerance(DEFAULT_MAX_DROP[mode]) if mode in DEFAULT_MAX_DROP else None


RETRAINING_RATE = 2.0
"""The retraining's learning-rate scale at the defaults. Chosen on validation splits (10 % of the
training data, seeds 100 and 101), with RNF otherwise at its defaults and ``epochs`` 0.9: ``lr_scale``
1, 2 or 4 scored 0.897 / 0.916 / 0.927 on task-incremental PermutedMNIST, 0.985 / 0.988 / 0.989 on
SplitMNIST, 0.963 / 0.968 / 0.962 on SplitFashionMNIST, 0.996 / 0.993 / 0.996 on split digits,
0.839 / 0.855 / 0.821 on SplitCIFAR-10 (a BatchNorm CNN) and 0.903 / 0.925 / 0.937 on
domain-incremental PermutedMNIST. 2 has the best mean over the six streams and is never more than
0.012 below the best one, where 4 loses 0.034 on SplitCIFAR-10 (``sweep-defaults-retrain-rate-*``)."""

DEFAULT_RETRAINING = Retraining(0.9, lr_scale=RETRAINING_RATE)
"""``retraining="auto"``: the retraining in every scenario where isolation is on (task heads, task
inference); none without isolation and in online streams. ``epochs`` was chosen on validation splits
(10 % of the training data, seeds 100 and 101) of task-incremental PermutedMNIST (10 tasks, one
epoch each) and SplitMNIST (5 tasks, two epochs), with RNF otherwise at its defaults: ``epochs`` 0,
0.5, 0.9 x ``lr_scale`` 1, 4 scored 0.469 / 0.903 / 0.920 / 0.897 / 0.927 on PermutedMNIST, where
the fair share leaves each task a tenth of each layer and the kept units alone, untrained, lose
most of the task; 0.984 / 0.986 / 0.989 / 0.985 / 0.989 on SplitMNIST. Both ran at a learning rate
of 0.01. The rate: :data:`RETRAINING_RATE`. Domain-incremental: chosen with the recogniser
(:data:`DEFAULT_RECOGNITION`), on PermutedMNIST the same way. Class-incremental: no retraining or
this one, with the class tolerance (:data:`DEFAULT_MAX_DROP`), scored 0.854 / 0.876 on SplitMNIST,
0.707 / 0.732 on SplitFashionMNIST and 0.267 / 0.370 on SplitCIFAR-10, the same way
(``sweep-defaults-class-retraining-*``)."""


def default_retraining(isolated: bool, online: bool) -> Retraining | None:
    """The retraining RNF runs at its defaults: with isolation, in offline streams."""
    return DEFAULT_RETRAINING if isolated and not online else None


DEFAULT_KEEP_LAST: dict[Mode | None, bool] = {None: True, "domain": True, "class": False}
"""``Capacity(keep_last="auto")``: whether the stream's last experience keeps every free unit, per task
inference mode. Chosen on validation splits (10 % of the training data, seeds 100 and 101) with RNF
otherwise at its defaults: ``keep_last`` off or on scored 0.914 / 0.921 on task-incremental
PermutedMNIST, 0.987 / 0.989 on SplitMNIST, 0.967 / 0.968 on SplitFashionMNIST, 0.993 / 0.993 on
split digits, 0.840 / 0.841 on SplitCIFAR-10 (a BatchNorm CNN), 0.768 / 0.784 on SplitCIFAR-10 with
SlimResNet18 and 0.926 / 0.927 on domain-incremental PermutedMNIST; class-incremental, where the last
task's tolerance search then does not run, 0.874 / 0.875 on SplitMNIST and 0.724 / 0.691 on
SplitFashionMNIST (``sweep-defaults-keep-last-*``)."""


def keeps_last(setting: bool | str, mode: Mode | None) -> bool:
    """Whether the stream's last experience keeps every free unit: ``setting``, or where ``"auto"``
    the choice for task inference ``mode`` (:data:`DEFAULT_KEEP_LAST`)."""
    return DEFAULT_KEEP_LAST[mode] if setting == "auto" else bool(setting)


DEFAULT_RECOGNITION: dict[Mode, tuple[Layers, float]] = {"class": ("all+input", SHRINKAGE), "domain": ("input", 1.0)}
"""``TaskInference(layers="auto", shrinkage="auto")``: the recogniser's features and shrinkage per
mode. Domain-incremental: chosen with the retraining on validation splits (10 % of the training
data, seeds 100 and 101) of domain-incremental PermutedMNIST (10 tasks, one epoch each, learning
rate 0.01) with RNF otherwise at its defaults. Features ``"all"`` or ``"input"`` x shrinkage 0.01 or 1
x retraining ``epochs`` 0 or 0.9: from the input every task was recognised and 0.9 epochs scored
0.903 at either shrinkage (0.482 without retraining); from every layer 0.885 at shrinkage 1 and 0.709
at 0.01 (0.430 without retraining). Of the tie, shrinkage 1 keeps only a mean per class (37 KiB per
PermutedMNIST task, against a 784 x 784 precision at 0.01) and scores faster (a Euclidean distance
instead of a quadratic form per class). Input recognition fits domains that differ in their
inputs; where they overlap there, pass ``layers="all"``. Class-incremental: every layer's features
with shrinkage 0.01, standardised per task, recognised the task best among the per-task
recognisers compared on validation splits (10 %, seed 0) of SplitMNIST, SplitFashionMNIST and
SplitCIFAR-10 (0.884, 0.802 and 0.466 of inputs; :mod:`avalanche_rnf.bench.recognizers`); adding
the input's values in a linear discriminant analysis pooled over every task (``"all+input"``)
then scored 0.904 against 0.874 on SplitMNIST, 0.810 against 0.724 on SplitFashionMNIST and 0.432
against 0.386 on SplitCIFAR-10 (validation splits, seeds 100 and 101, RNF otherwise at its
defaults; ``benchmarks/sweeps/rnf-defaults-class-recognition.json``)."""


def recognition_settings(mode: Mode | None, layers: str, shrinkage: float | str) -> tuple[Layers, float]:
    """The recogniser's features and shrinkage in ``mode``: the ones asked for, or where ``"auto"``
    the mode's (:data:`DEFAULT_RECOGNITION`; class-incremental's without a mode)."""
    default = DEFAULT_RECOGNITION[mode or "class"]
    return (default[0] if layers == "auto" else layers,  # type: ignore[return-value]
            default[1] if shrinkage == "auto" else float(shrinkage))
