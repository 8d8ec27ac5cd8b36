"""The unit-score ablation table: RNF with LRP relevance against simple ways of choosing units.

Each result directory in :data:`ABLATION_ORDER` holds RNF runs of one unit score (``rnf-bench
--strategies rnf --param rnf.unit_scores=...``) on the same stream, at the same tolerance and
capacity. The table shows, per configuration: accuracy, forgetting, how many units
each task kept (the share of the hidden layers' units its search froze), how much held-out
accuracy the kept sub-network lost against the whole network, and on how many tasks the capacity
cap, not the tolerance, decided (the search took everything the cap allowed: mass 1).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from avalanche_rnf.bench.results import RunRecord, load_records, mean_std, present
from avalanche_rnf.bench.verdicts import gap_and_spread, outcome, shown

UNIT_SCORES = ("lrp", "random", "weight", "activation", "taylor")
"""The unit scores compared, LRP first: the others are compared with it."""
ABLATION_ORDER = tuple(f"ablation-permuted_mnist20-task-{name}" for name in UNIT_SCORES)
"""Result directories of the long-stream ablation (PermutedMNIST, 20 tasks, the MLP)."""
NARROW_ORDER = tuple(f"ablation-split_cifar10-task-narrow-{name}" for name in UNIT_SCORES)
"""Result directories of the narrow-network ablation (SplitCIFAR-10, a half-width small CNN)."""
RETRAINED_ORDER = tuple(f"ablation-split_cifar10-task-narrow-retrained-{name}" for name in UNIT_SCORES[:3])
"""The same with the kept units retrained: LRP, random choice and weight magnitude."""
MARGIN = 0.02
"""How far above random choice LRP relevance has to be to count as earning its place."""


def _hidden(fractions: dict[str, float]) -> list[str]:
    return [k for k in fractions if k != "all" and "classifier" not in k]


def kept_per_task(record: RunRecord) -> list[float]:
    """Per task: the share of the hidden layers' units it froze (mean over hidden layers)."""
    shares: list[float] = []
    before: dict[str, float] = {}
    for fractions in record.frozen_fractions:
        layers = _hidden(fractions)
        shares.append(statistics.mean(fractions[k] - before.get(k, 0.0) for k in layers) if layers else 0.0)
        before = fractions
    return shares


def _lost(record: RunRecord) -> list[float]:
    return [s["full_accuracy"] - s["accuracy"] for s in record.rnf_search]


def _bound(record: RunRecord) -> int:
    return sum(1 for s in record.rnf_search if s["mass"] >= 1.0)


def _row(name: str, records: list[RunRecord], link: str) -> str:
    params = records[0].config["params"]
    kept = [kept_per_task(r) for r in records]
    first = present(k[0] for k in kept if k)
    later = [statistics.mean(k[1:]) for k in kept if len(k) > 1]
    return " | ".join([
        f"| {params.get('unit_scores', 'lrp')}", str(len(records)),
        mean_std(present(r.average_accuracy for r in records)), mean_std(present(r.forgetting for r in records)),
        _percent(first), _percent(later),
        mean_std([statistics.mean(_lost(r)) for r in records if r.rnf_search]),
        f"{statistics.mean(_bound(r) for r in records):.1f} of {len(records[0].rnf_search)}",
        f"[{name}]({link}{name}/summary.md) |"])


def _percent(shares: list[float]) -> str:
    if not shares:
        return "–"
    mean = f"{100 * statistics.mean(shares):.1f}"
    return mean if len(shares) == 1 else f"{mean} ± {100 * statistics.stdev(shares):.1f}"


def verdict(lrp: list[float], random: list[float], margin: float = MARGIN) -> str:
    """Whether LRP's accuracies beat random choice's by ``margin``: met beyond the seeds' spread,
    missed beyond it, tied within it."""
    if len(lrp) < 2 or len(random) < 2:
        return "not enough seeds (2 needed)"
    gap, spread = gap_and_spread(lrp, random)
    text = f"LRP {gap:+.3f} against random (target +{margin:.2f}; seeds' spread ±{spread:.3f})"
    return f"{text}: {shown(outcome(gap, spread, margin))}"


def ablation_table(results: Path, link: str = "benchmarks/results/", order: tuple[str, ...] = ABLATION_ORDER,
                   label: str = "Long stream") -> str:
    """The table of every configuration in ``order`` that has runs, and the verdict, headed ``label``."""
    runs = {}
    for name in order:
        if (results / name / "results.json").is_file():
            records = [r for r in load_records(results / name)[1] if r.status == "ok"]
            if records:
                runs[name] = records
    if not runs:
        return "No ablation result directory."
    lines = ["| unit scores | seeds | average accuracy | forgetting | units kept by task 1 (%) | "
             "units kept by each later task (%) | held-out accuracy lost by the kept units | tasks the cap decided "
             "| results |", "|---" * 9 + "|"]
    lines += [_row(name, records, link) for name, records in runs.items()]
    accuracies = {name: present(r.average_accuracy for r in records) for name, records in runs.items()}
    lrp, random = (accuracies.get(name, []) for name in order[:2])
    return "\n".join([*lines, "", f"{label}: " + verdict(lrp, random) + "."])
