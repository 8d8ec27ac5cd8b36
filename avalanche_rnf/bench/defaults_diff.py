"""Which of RNF's settings a harness run changed away from the library's defaults (``RNFPlugin()``).

The harness names RNF's options by flat keys (``max_drop``, ``retrain_epochs``, ...; see
:func:`~avalanche_rnf.bench.strategies.rnf_options`). A key's default is its option field's
default; an option that is off by default (tolerance, retraining) is off at ``None`` or ``0``, and
its other fields only count where it is on. Task inference's default is what ``"auto"`` chooses in
the run's scenario.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from avalanche_rnf.bench.strategies import RNF_GROUPS
from avalanche_rnf.plugin import DEFAULT_SELECTION, RNFPlugin

AUTO = {"task": None, "class": "class", "domain": "domain"}
"""What ``task_inference="auto"`` chooses in each harness scenario (the harness's models: a head
per task in ``task``, one head otherwise)."""
_PLUGIN = inspect.signature(RNFPlugin).parameters


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
        return not params.get("task_inference", AUTO.get(scenario))
    return switch is not None and switch != "" and not params.get(switch)


def non_defaults(params: dict[str, Any], scenario: str) -> list[str]:
    """``key=value`` for each RNF setting of a run that is not the library's default."""
    defaults = _defaults()
    changed = []
    for key, value in params.items():
        if key in defaults:
            option, default = defaults[key]
            if option == "task_inference" and key == "task_inference":
                mode = "class" if value is True else (value or None)
                if mode != AUTO.get(scenario):
                    changed.append(f"task_inference={mode}")
                continue
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
