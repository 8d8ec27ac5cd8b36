"""Which of RNF's settings a harness run changed away from the library's defaults (``RNFPlugin()``).

The harness names RNF's options by flat keys (``max_drop``, ``retrain_epochs``, ...; see
:func:`~avalanche_rnf.bench.strategies.rnf_options`). A key's default is its option field's
default; an option that is off at ``None`` or ``0`` (tolerance, retraining) has its other fields
count only where it is on. Task inference's default is what ``"auto"`` chooses in the run's
scenario, and the tolerance's and recogniser's the ones that mode brings
(:data:`~avalanche_rnf.scenario.DEFAULT_MAX_DROP`, :data:`~avalanche_rnf.scenario.DEFAULT_RECOGNITION`,
and where the benchmark is known, the mirror image that ``views="auto"`` adds where training flips
images); the retraining's are the same in every scenario (:data:`~avalanche_rnf.scenario.DEFAULT_RETRAINING`).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from avalanche_rnf.bench.strategies import RNF_GROUPS
from avalanche_rnf.bench.streams import BENCHMARKS
from avalanche_rnf.options import Retraining
from avalanche_rnf.plugin import DEFAULT_SELECTION, RNFPlugin
from avalanche_rnf.scenario import DEFAULT_MAX_DROP, DEFAULT_RETRAINING, Mode, keeps_last, recognition_settings

AUTO: dict[str, Mode | None] = {"task": None, "class": "class", "domain": "domain"}
"""What ``task_inference="auto"`` (:func:`~avalanche_rnf.scenario.scenario_of`) chooses in each harness
scenario: the harness's models have a head per task in ``task``, one head otherwise, and its class
and domain streams bring new classes, and the same classes, with each experience."""
_PLUGIN = inspect.signature(RNFPlugin).parameters
RECOGNITION = ("recognition_layers", "recognition_shrinkage")
"""The recogniser's keys, whose ``"auto"`` default is the mode's
(:data:`~avalanche_rnf.scenario.DEFAULT_RECOGNITION`)."""


def _defaults() -> dict[str, tuple[str, Any]]:
    """Flat key -> (its option, its default value)."""
    out: dict[str, tuple[str, Any]] = {}
    for option, (cls, _, fields) in RNF_GROUPS.items():
        made = {f.name: f.default for f in dataclasses.fields(cls)}
        for flat, field in fields.items():
            out[flat] = (option, made[field])
    return out


def _off(option: str, params: dict[str, Any], scenario: str) -> bool:
    """Whether ``option`` is off in a run with ``params``."""
    switch = RNF_GROUPS[option][1]
    if option == "task_inference":
        return inferred(params, scenario) is None
    return switch is not None and switch != "" and not params.get(switch)


def default_max_drop(scenario: str) -> float | None:
    """The tolerance search's ``max_drop`` of the library's defaults in a harness scenario (None: no search)."""
    return DEFAULT_MAX_DROP.get(AUTO.get(scenario))


def _retraining_changes(params: dict[str, Any]) -> list[str]:
    """``key=value`` for the retraining settings of a run that are not the library's defaults."""
    epochs = params.get("retrain_epochs") or None
    changed = [] if epochs == DEFAULT_RETRAINING.epochs else [f"retrain_epochs={epochs or 0}"]
    scale = params.get("retrain_lr_scale", Retraining.lr_scale)
    if epochs and scale != DEFAULT_RETRAINING.lr_scale:
        changed.append(f"retrain_lr_scale={scale}")
    return changed


def inferred(params: dict[str, Any], scenario: str) -> str | None:
    """The task inference a harness run of RNF used (the harness turns it off unless asked for)."""
    mode = params.get("task_inference")
    return "class" if mode is True else AUTO.get(scenario) if mode == "auto" else (mode or None)


def auto_views(mode: str | None, benchmark: str) -> list[str] | None:
    """The views ``views="auto"`` settles on in a harness run: the mirror image in class mode where the
    benchmark's training flips images, none otherwise (``None``: the benchmark is not known)."""
    if benchmark not in BENCHMARKS:
        return None
    return ["hflip"] if mode == "class" and BENCHMARKS[benchmark].mirrors_images else []


def non_defaults(params: dict[str, Any], scenario: str, benchmark: str = "") -> list[str]:
    """``key=value`` for each RNF setting of a run that is not the library's default (with ``benchmark``,
    explicit recognition views equal to what ``"auto"`` settles on there count as the default)."""
    defaults = _defaults()
    mode = inferred(params, scenario)
    views = auto_views(mode, benchmark)
    changed = [f"task_inference={mode}"] if mode != AUTO.get(scenario) else []
    max_drop = params.get("max_drop") or None
    if max_drop != default_max_drop(scenario):
        changed.append(f"max_drop={max_drop}")
    changed += _retraining_changes(params)
    recognition = dict(zip(RECOGNITION, recognition_settings(mode, "auto", "auto")))  # type: ignore[arg-type]
    for key, value in params.items():
        if key in ("task_inference", "max_drop", "retrain_epochs", "retrain_lr_scale", "lr"):  # lr: training's
            continue
        if key in recognition and value in ("auto", recognition[key]):
            continue
        if key == "keep_last" and value in ("auto", keeps_last("auto", mode)):  # type: ignore[arg-type]
            continue
        if key == "recognition_views" and views is not None and value == views:
            continue
        if key in defaults:
            option, default = defaults[key]
            if _off(option, params, scenario) or (value == default and default is not dataclasses.MISSING):
                continue
            if default is dataclasses.MISSING and not value:  # a switch left off
                continue
        elif key == "mass":
            if value == DEFAULT_SELECTION.mass:
                continue
        elif key in _PLUGIN and value == _PLUGIN[key].default:
            continue
        changed.append(f"{key}={value}")
    return changed


def defaults_overrides(params: dict[str, Any], scenario: str) -> dict[str, Any]:
    """The harness parameters that turn a run with ``params`` into RNF at the library's defaults: the
    tolerance, retraining and task inference of ``"auto"`` in ``scenario``, the last task's capacity of
    ``keep_last="auto"``, and every other setting away from its default set back to it."""
    defaults = _defaults()
    out: dict[str, Any] = {"keep_last": defaults["keep_last"][1], "retrain_epochs": DEFAULT_RETRAINING.epochs,
                           "retrain_lr_scale": DEFAULT_RETRAINING.lr_scale,
                           "reference_size": defaults["reference_size"][1],
                           **({"task_inference": "auto"} if scenario != "task" else {}),
                           "max_drop": default_max_drop(scenario)}
    for item in non_defaults({**params, **out}, scenario):
        key = item.split("=", 1)[0]
        out[key] = DEFAULT_SELECTION.mass if key == "mass" else _PLUGIN[key].default if key in _PLUGIN \
            else defaults[key][1]
    return out
