"""The mechanism ablation: RNF as in Ede et al. 2022, then one of this package's mechanisms added at a time.

Each step's result directory ``mechanisms-<stream>-<step>`` holds RNF runs (``rnf-bench
--strategies rnf`` with the step's ``--param`` values, :data:`STEPS`) on the same stream and
seeds; the last step is the harness's tuned RNF. The table shows each step's accuracy,
forgetting, the units frozen by the end, and what the step added against the one before it:
"helps" or "hurts" where the change is larger than the seeds' spread, "tied" where it is not.
A last row shows RNF at the library's defaults against the tuned RNF.
"""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.ablation_table import gap_and_spread
from avalanche_rnf.bench.results import RunRecord, load_records, mean_std, present
from avalanche_rnf.options import Relevance

Step = tuple[str, str, dict[str, object]]
STEPS: tuple[Step, ...] = (
    ("plain", "rnf-plain: relevance freezing as in Ede et al. 2022 (relevance mass 0.95, no isolation, "
              "no cap, no search, no retraining)",
     {"isolate": False, "capacity": "unlimited", "keep_last": False, "max_drop": None, "retrain_epochs": 0}),
    ("isolation", "+ isolation (frozen units stop reading free ones)",
     {"capacity": "unlimited", "keep_last": False, "max_drop": None, "retrain_epochs": 0}),
    ("capacity", "+ fair capacity (and the last task keeps what is left)",
     {"max_drop": None, "retrain_epochs": 0}),
    ("tolerance", "+ tolerance search (the fewest units within max_drop)", {"retrain_epochs": 0}),
    ("retraining", "+ retraining the kept units (the tuned RNF)", {}),
)
"""Per step: its name, what it adds, and the ``--param rnf.KEY=VALUE`` overrides of the tuned RNF. The
last step is the tuned RNF itself: its runs are those of the stream's headline result directory."""
DEFAULTS: Step = ("defaults", "RNF at the library's defaults (`RNFPlugin()`)",
            {"keep_last": False, "max_drop": None, "retrain_epochs": 0,
             "reference_size": Relevance().reference_size})
"""The library's defaults, compared with the tuned RNF: the harness's tuned values overridden back."""
STREAMS = ("split_mnist-task",)
"""Streams with a mechanism ablation, in the order shown."""


def step_params(step: str) -> list[str]:
    """``rnf-bench`` arguments of a step: ``--param rnf.KEY=VALUE`` for each override (JSON values)."""
    overrides = next(params for name, _, params in (*STEPS, DEFAULTS) if name == step)
    return [arg for key, value in overrides.items() for arg in ("--param", f"rnf.{key}={json.dumps(value)}")]


def change(after: list[float], before: list[float]) -> str:
    """What a step did to accuracy: the mean change, and whether it exceeds the seeds' spread."""
    if len(after) < 2 or len(before) < 2:
        return "–"
    gap, spread = gap_and_spread(after, before)
    word = "helps" if gap > spread else "hurts" if -gap > spread else "tied"
    return f"{gap:+.3f} ({word}; spread ±{spread:.3f})"


def _frozen(records: list[RunRecord]) -> str:
    return mean_std(present(r.frozen_fractions[-1].get("all") if r.frozen_fractions else None for r in records))


def _runs(folder: Path) -> list[RunRecord]:
    """RNF's finished runs in a result directory (none where it does not exist)."""
    if not (folder / "results.json").is_file():
        return []
    return [r for r in load_records(folder)[1] if r.status == "ok" and r.strategy == "rnf"]


def _row(text: str, records: list[RunRecord], versus: str, folder: Path, link: str) -> str:
    return " | ".join([
        f"| {text}", str(len(records)), mean_std(present(r.average_accuracy for r in records)),
        mean_std(present(r.forgetting for r in records)), _frozen(records), versus,
        f"[{folder.name}]({link}{folder.name}/summary.md) |"])


def mechanism_table(results: Path, link: str = "benchmarks/results/", streams: tuple[str, ...] = STREAMS) -> str:
    """One table per stream of the steps that have runs, then the defaults against the tuned RNF."""
    tables = []
    for stream in streams:
        lines = [f"**{stream}**", "", "| step | seeds | average accuracy | forgetting | units frozen at the end | "
                 "change against the step before | results |", "|---" * 7 + "|"]
        before: list[float] = []  # the step before's accuracies (none where it has no runs)
        for step, text, _ in STEPS:
            folder = results / (f"mechanisms-{stream}-{step}" if step != STEPS[-1][0] else stream)
            records = _runs(folder)
            accuracy = present(r.average_accuracy for r in records)
            if records:
                lines.append(_row(text, records, change(accuracy, before) if before else "–", folder, link))
            before = accuracy
        tuned = present(r.average_accuracy for r in _runs(results / stream))
        folder = results / f"mechanisms-{stream}-{DEFAULTS[0]}"
        if records := _runs(folder):
            versus = change(present(r.average_accuracy for r in records), tuned) + " against the tuned RNF" \
                if tuned else "–"
            lines.append(_row(DEFAULTS[1], records, versus, folder, link))
        if len(lines) > 4:
            tables.append("\n".join(lines))
    return "\n\n".join(tables) if tables else "No mechanism ablation result directory."
