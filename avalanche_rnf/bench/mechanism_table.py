"""The mechanism ablation: RNF as in Ede et al. 2022, then one of this package's mechanisms added at a time.

Each step's result directory ``mechanisms-<stream>-<step>`` holds RNF runs (``rnf-bench
--strategies rnf`` with the step's ``--param`` values, :func:`steps`) on the same stream and
seeds; the last step is the harness's tuned RNF. The table shows each step's accuracy,
forgetting, the units frozen by the end, and what the step added against the one before it:
"helps" or "hurts" where the change is larger than the seeds' spread, "tied" where it is not.
A last row shows RNF at the library's defaults against the tuned RNF.
"""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.defaults_diff import defaults_overrides
from avalanche_rnf.bench.hparams import strategy_params
from avalanche_rnf.bench.results import RunRecord, load_records, mean_std, present
from avalanche_rnf.bench.verdicts import gap_and_spread, outcome

Step = tuple[str, str, dict[str, object]]
ORDER = {"task": ("isolation", "capacity", "tolerance", "retraining"),
         "class": ("isolation", "capacity", "inference", "tolerance", "retraining")}
"""The mechanisms in the order they are added, per scenario."""
OFF: dict[str, dict[str, object]] = {
    "isolation": {"isolate": False}, "capacity": {"capacity": "unlimited", "keep_last": False},
    "inference": {"task_inference": None}, "tolerance": {"max_drop": None}, "retraining": {"retrain_epochs": 0}}
"""The harness's parameters that turn each mechanism off."""
TEXT = {
    "isolation": "+ isolation (frozen units stop reading free ones)",
    "capacity": "+ fair capacity (and the last task keeps what is left, where tuned so)",
    "inference": "+ task inference (only the recognised task's classes can win)",
    "tolerance": "+ tolerance search (the fewest units within max_drop)",
    "retraining": "+ retraining the kept units (the tuned RNF)",
}
PLAIN = ("rnf-plain: relevance freezing as in Ede et al. 2022 (relevance mass 0.95, no isolation, no cap, "
         "no search, no retraining)")
DEFAULTS = ("defaults", "RNF at the library's defaults (`RNFPlugin()`)")
"""The library's defaults, compared with the tuned RNF: the harness's tuned values overridden back
(:func:`~avalanche_rnf.bench.defaults_diff.defaults_overrides`)."""
STREAMS = ("split_mnist-task", "split_mnist-class")
"""Streams with a mechanism ablation, in the order shown."""


def steps(scenario: str, benchmark: str = "split_mnist") -> list[Step]:
    """The steps of a stream in ``scenario``: rnf-plain, then each mechanism added; each with the
    ``--param rnf.KEY=VALUE`` overrides of the tuned RNF that turn the others off. The last step is
    the tuned RNF itself: its runs are those of the stream's headline result directory. In the class
    scenario isolation is asked for by name until task inference (which turns it on) is added."""
    order = ORDER[scenario]
    made: list[Step] = []
    for k in range(len(order) + 1):
        overrides = {key: value for m in order[k:] for key, value in OFF[m].items()}
        if scenario != "task" and 0 < k < len(order):
            overrides["isolate"] = True
        made.append((order[k - 1] if k else "plain", TEXT[order[k - 1]] if k else PLAIN, overrides))
    defaults = defaults_overrides(strategy_params("rnf", benchmark, scenario), scenario)
    return [*made, (*DEFAULTS, defaults)]


def step_params(step: str, stream: str = "split_mnist-task") -> list[str]:
    """``rnf-bench`` arguments of a step: ``--param rnf.KEY=VALUE`` for each override (JSON values)."""
    benchmark, scenario = stream.rsplit("-", 1)
    overrides = next(params for name, _, params in steps(scenario, benchmark) if name == step)
    return [arg for key, value in overrides.items() for arg in ("--param", f"rnf.{key}={json.dumps(value)}")]


def commands(stream: str, seeds: str = "0 1 2", out: str = "benchmarks/results") -> list[str]:
    """The ``rnf-bench`` commands of a stream's steps (all but the tuned RNF, which is the headline run)."""
    benchmark, scenario = stream.rsplit("-", 1)
    return [f"rnf-bench --benchmark {benchmark} --scenario {scenario} --strategies rnf --seeds {seeds} "
            f"{' '.join(step_params(name, stream))} --loggers text --out {out}/mechanisms-{stream}-{name}"
            for name, _, _ in steps(scenario, benchmark) if name != ORDER[scenario][-1]]


def change(after: list[float], before: list[float]) -> str:
    """What a step did to accuracy: the mean change, and whether it exceeds the seeds' spread."""
    if len(after) < 2 or len(before) < 2:
        return "–"
    gap, spread = gap_and_spread(after, before)
    word = {"met": "helps", "missed": "hurts"}.get(outcome(gap, spread), "tied")
    return f"{gap:+.3f} ({word}; spread ±{spread:.3f})"


def _frozen(records: list[RunRecord]) -> str:
    return mean_std(present(r.frozen_fractions[-1].get("all") if r.frozen_fractions else None for r in records))


def rnf_runs(folder: Path) -> list[RunRecord]:
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
        benchmark, scenario = stream.rsplit("-", 1)
        chain = steps(scenario, benchmark)
        before: list[float] = []  # the step before's accuracies (none where it has no runs)
        for step, text, _ in chain[:-1]:
            folder = results / (f"mechanisms-{stream}-{step}" if step != chain[-2][0] else stream)
            records = rnf_runs(folder)
            accuracy = present(r.average_accuracy for r in records)
            if records:
                lines.append(_row(text, records, change(accuracy, before) if before else "–", folder, link))
            before = accuracy
        tuned = before  # the chain's last step: the tuned RNF
        folder = results / f"mechanisms-{stream}-{DEFAULTS[0]}"
        if records := rnf_runs(folder):
            versus = change(present(r.average_accuracy for r in records), tuned) + " against the tuned RNF" \
                if tuned else "–"
            lines.append(_row(DEFAULTS[1], records, versus, folder, link))
        if len(lines) > 4:
            tables.append("\n".join(lines))
    return "\n\n".join(tables) if tables else "No mechanism ablation result directory."


if __name__ == "__main__":  # the commands of every stream's steps, one per line (benchmarks/reproduce.sh)
    import sys

    print("\n".join(c for stream in STREAMS for c in commands(stream, out=sys.argv[1] if len(sys.argv) > 1
                                                                else "benchmarks/results")))
