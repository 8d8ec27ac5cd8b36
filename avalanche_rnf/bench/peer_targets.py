"""RNF against its best peer, column by column: met, tied within the seeds' spread, or missed.

A column's peers are the strategies its target names: in the main job (split_digits, task-incremental)
every strategy that stores no data; in the other task-incremental columns every baseline; in the
class-incremental ones the peers that store no inputs. Joint training is an upper bound, never a peer.
"""

from __future__ import annotations

from pathlib import Path

from avalanche_rnf.bench.results import RunRecord, load_records, mean_std, present
from avalanche_rnf.bench.verdicts import gap_and_spread, judged

STORES_DATA = frozenset({"replay", "er_ace", "joint"})
"""Strategies that keep training inputs (Joint: all of them)."""
NO_INPUT_PEERS = ("slda", "slda_backbone", "generative_replay", "lwf", "ewc", "si", "mas")
"""Class-incremental peers that store no inputs."""
TARGETS: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("split_digits-task", "main job: RNF first, or tied with the best strategy that stores no data", STORES_DATA),
    ("split_mnist-task", "task-IL: at least the best baseline, forgetting 0", frozenset({"joint"})),
    ("split_fmnist-task", "task-IL: at least the best baseline, forgetting 0", frozenset({"joint"})),
    ("split_cifar10-task", "task-IL: at least the best baseline, forgetting 0", frozenset({"joint"})),
    ("split_cifar10-task-slim_resnet18", "task-IL: at least the best baseline, forgetting 0", frozenset({"joint"})),
    ("split_mnist-class", "class-IL: at least the best peer that stores no inputs", None),
    ("split_fmnist-class", "class-IL: at least the best peer that stores no inputs", None),
    ("split_cifar10-class", "class-IL: at least the best peer that stores no inputs", None),
    ("split_cifar10-class-slim_resnet18", "class-IL: at least the best peer that stores no inputs", None),
)
"""Column, target, and the strategies that are not its peers (None: only :data:`NO_INPUT_PEERS` are)."""


def _accuracies(records: list[RunRecord], strategy: str) -> list[float]:
    return present(r.average_accuracy for r in records if r.strategy == strategy and r.status == "ok")


def verdict(rnf: list[float], best: list[float]) -> str:
    """``met`` where RNF's mean is above the peer's by more than the seeds' spread, ``tied`` within it,
    ``missed`` below it by more than the spread."""
    if len(rnf) < 2 or len(best) < 2:
        return "not enough seeds (2 needed)"
    return judged(*gap_and_spread(rnf, best))


def peer_targets_table(results: Path, link: str = "benchmarks/results/") -> str:
    """One row per column with RNF and at least one peer run."""
    lines = ["| column | target | RNF | best peer | seeds | RNF - peer | RNF forgetting | results |",
             "|---" * 8 + "|"]
    for column, target, excluded in TARGETS:
        folder = results / column
        if not (folder / "results.json").is_file():
            continue
        records = load_records(folder)[1]
        rnf = _accuracies(records, "rnf")
        peers = {r.strategy for r in records} - {"rnf"}
        peers = peers & set(NO_INPUT_PEERS) if excluded is None else peers - excluded
        scored = {s: _accuracies(records, s) for s in sorted(peers)}
        scored = {s: v for s, v in scored.items() if v}
        if not rnf or not scored:
            continue
        best = max(scored, key=lambda s: sum(scored[s]) / len(scored[s]))
        forgetting = mean_std(present(r.forgetting for r in records if r.strategy == "rnf" and r.status == "ok"))
        lines.append(f"| {column} | {target} | {mean_std(rnf)} | {best} {mean_std(scored[best])} | {len(rnf)} | "
                     f"{verdict(rnf, scored[best])} | {forgetting} | [{column}]({link}{column}/summary.md) |")
    return "\n".join(lines) if len(lines) > 2 else "No result directory with RNF and a peer."
