"""RNF at the library's defaults (``RNFPlugin()``) against the tuned RNF, column by column.

Each column's tuned RNF is the one of its headline result directory; its defaults run is RNF with
the harness's values set back to the library's (:func:`~avalanche_rnf.bench.defaults_diff.defaults_overrides`),
read once on the test stream with the same seeds: ``defaults-<column>``, or the mechanism
ablation's ``mechanisms-<column>-defaults`` where that ablation has one. The target is the
defaults within 1 point of the tuned RNF's mean accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.defaults_diff import defaults_overrides
from avalanche_rnf.bench.hparams import strategy_params
from avalanche_rnf.bench.mechanism_table import STREAMS as MECHANISM_STREAMS
from avalanche_rnf.bench.mechanism_table import rnf_runs
from avalanche_rnf.bench.results import mean_std, present
from avalanche_rnf.bench.verdicts import gap_and_spread, outcome, shown

COLUMNS = ("split_digits-task", "split_mnist-task", "split_mnist-class", "split_fmnist-task", "split_fmnist-class",
           "permuted_mnist-task", "permuted_mnist-domain", "split_cifar10-task", "split_cifar10-class")
"""The columns with a tuned RNF, in the order shown."""
SEEDS = {column: "0 1 2 3 4" for column in ("split_digits-task", "split_fmnist-task", "split_fmnist-class",
                                              "permuted_mnist-task", "permuted_mnist-domain")}
"""Seeds of a column's runs where not ``0 1 2`` (those of its headline result directory)."""
MARGIN = 0.01
"""How far below the tuned RNF's mean accuracy the defaults may be."""


def folder_name(column: str) -> str:
    """The result directory of RNF at its defaults on ``column``."""
    return f"mechanisms-{column}-defaults" if column in MECHANISM_STREAMS else f"defaults-{column}"


def command(column: str, out: str = "benchmarks/results") -> str:
    """The ``rnf-bench`` command of RNF at its defaults on ``column``."""
    benchmark, scenario = column.rsplit("-", 1)
    seeds = SEEDS.get(column, "0 1 2")
    overrides = defaults_overrides(strategy_params("rnf", benchmark, scenario), scenario)
    params = " ".join(f"--param rnf.{key}={json.dumps(value)}" for key, value in overrides.items())
    return (f"rnf-bench --benchmark {benchmark} --scenario {scenario} --strategies rnf --seeds {seeds} {params} "
            f"--loggers text --out {out}/{folder_name(column)}")


def verdict(defaults: list[float], tuned: list[float], margin: float = MARGIN) -> str:
    """Whether the defaults' mean accuracy is within ``margin`` of the tuned RNF's: met or missed beyond
    the seeds' spread, tied inside it (:func:`~avalanche_rnf.bench.verdicts.outcome`)."""
    if len(defaults) < 2 or len(tuned) < 2:
        return "not enough seeds (2 needed)"
    gap, spread = gap_and_spread(defaults, tuned)
    return f"{shown(outcome(gap, spread, -margin))}: {gap:+.3f} (seeds' spread ±{spread:.3f})"


def defaults_table(results: Path, link: str = "benchmarks/results/", columns: tuple[str, ...] = COLUMNS) -> str:
    """One row per column with both a tuned RNF and a defaults run."""
    lines = ["| column | tuned RNF | RNF at its defaults | seeds | defaults - tuned (target: within "
             f"{MARGIN:.2f}) | results |", "|---" * 6 + "|"]
    for column in columns:
        tuned, defaults = rnf_runs(results / column), rnf_runs(results / folder_name(column))
        if not tuned or not defaults:
            continue
        mine, theirs = present(r.average_accuracy for r in defaults), present(r.average_accuracy for r in tuned)
        links = ", ".join(f"[{name}]({link}{name}/summary.md)" for name in (column, folder_name(column)))
        lines.append(f"| {column} | {mean_std(theirs)} | {mean_std(mine)} | {len(mine)} | "
                     f"{verdict(mine, theirs)} | {links} |")
    return "\n".join(lines) if len(lines) > 2 else "No defaults result directory."


if __name__ == "__main__":  # the commands of the columns without a defaults run (benchmarks/reproduce.sh)
    import sys

    print("\n".join(command(c, out=sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results")
                    for c in COLUMNS if c not in MECHANISM_STREAMS))
