"""The generated results tables: the SlimResNet18 column's targets."""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.result_tables import SLIM, targets_table
from avalanche_rnf.bench.results import RunRecord


def _run(strategy: str, seed: int, last: float, seconds: float, rss: float, relevance: float = 0.0) -> RunRecord:
    return RunRecord("split_cifar10", "task", strategy, seed, {"params": {}}, matrix=[[0.9, 0.1], [last, 0.9]],
                     train_seconds=[seconds / 2, seconds / 2], peak_rss_delta_mb=rss,
                     relevance_seconds=[relevance] if relevance else [])


def _rows(folder: Path, runs: list[RunRecord]) -> dict[str, str]:
    (folder / SLIM).mkdir(parents=True)
    (folder / SLIM / "results.json").write_text(json.dumps({"meta": {}, "runs": [r.to_json() for r in runs]}))
    lines = targets_table(folder).splitlines()[2:]
    return {line.split("|")[1].strip(): line for line in lines if "SlimResNet18" in line}


def test_slim_resnet_targets_compare_rnf_with_the_baselines_joint_and_naive_s_costs(tmp_path):
    runs = [_run("rnf", s, 0.9, 100.0, 120.0, relevance=4.0) for s in (0, 1)]
    runs += [_run("naive", s, 0.5, 95.0, 100.0) for s in (0, 1)]
    runs += [_run("lwf", s, 0.85, 95.0, 100.0) for s in (0, 1)]
    runs += [_run("joint", s, 0.95, 95.0, 100.0) for s in (0, 1)]
    rows = _rows(tmp_path, runs)
    assert len(rows) == 6
    every = next(v for k, v in rows.items() if "every baseline run (lwf, naive; best: lwf)" in k)
    assert "0.900 (lwf 0.875)" in every and "**met**" in every  # the last row's mean
    joint = next(v for k, v in rows.items() if "within 0.02 of Joint" in k)
    assert "(Joint 0.925)" in joint and "missed by 0.005" in joint
    forgetting = next(v for k, v in rows.items() if "forgetting" in k)
    assert "| 0.0000 |" in forgetting and "**met**" in forgetting
    time = next(v for k, v in rows.items() if "training time" in k)
    assert "1.05x" in time and "**met**" in time
    memory = next(v for k, v in rows.items() if "peak memory" in k)
    assert "1.20x" in memory and "**met**" in memory
    relevance = next(v for k, v in rows.items() if "relevance pass" in k)
    assert "4.0%" in relevance and "**met**" in relevance


def test_slim_resnet_targets_are_left_out_without_rnf_runs(tmp_path):
    assert _rows(tmp_path, [_run("naive", 0, 0.5, 95.0, 100.0)]) == {}
