"""The generated results tables: the SlimResNet18 column's targets, and the verdict rule every table uses."""

from __future__ import annotations

import json
from pathlib import Path

from avalanche_rnf.bench.result_tables import SLIM, SLIM_TIME, targets_table
from avalanche_rnf.bench.results import RunRecord
from avalanche_rnf.bench.verdicts import judged, spread


def _run(strategy: str, seed: int, last: float, seconds: float, rss: float, relevance: float = 0.0) -> RunRecord:
    return RunRecord("split_cifar10", "task", strategy, seed, {"params": {}}, matrix=[[0.9, 0.1], [last, 0.9]],
                     train_seconds=[seconds / 2, seconds / 2], peak_rss_delta_mb=rss,
                     relevance_seconds=[relevance] if relevance else [])


def _write(folder: Path, runs: list[RunRecord]) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"meta": {}, "runs": [r.to_json() for r in runs]}))


def _rows(folder: Path, runs: list[RunRecord]) -> dict[str, str]:
    _write(folder / SLIM, runs)
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
    assert "0.900 (lwf 0.875)" in every and "**met**: +0.025 |" in every  # the last row's mean; no spread
    joint = next(v for k, v in rows.items() if "within 0.02 of Joint" in k)
    assert "(Joint 0.925)" in joint and "missed: -0.005 |" in joint
    forgetting = next(v for k, v in rows.items() if "forgetting" in k)
    assert "| 0.0000 |" in forgetting and "**met**: +0.0050" in forgetting
    time = next(v for k, v in rows.items() if "training time" in k)
    assert "1.05x" in time and "**met**: +0.05x" in time
    memory = next(v for k, v in rows.items() if "peak memory" in k)
    assert "1.20x" in memory and "**met**: +0.05x" in memory
    relevance = next(v for k, v in rows.items() if "relevance pass" in k)
    assert "4.0%" in relevance and "**met**: +1.0%" in relevance


def test_slim_resnet_targets_are_left_out_without_rnf_runs(tmp_path):
    assert _rows(tmp_path, [_run("naive", 0, 0.5, 95.0, 100.0)]) == {}


def test_slim_resnet_time_and_memory_come_from_the_quiet_pair_where_it_ran(tmp_path):
    _write(tmp_path / SLIM_TIME, [_run("rnf", 100, 0.9, 108.0, 500.0), _run("naive", 100, 0.5, 100.0, 100.0)])
    rows = _rows(tmp_path, [_run("rnf", 0, 0.9, 130.0, 120.0), _run("naive", 0, 0.5, 100.0, 100.0)])
    time = next(v for k, v in rows.items() if "training time" in k)
    assert "side by side on a quiet machine" in time and "1.08x" in time and "**met**" in time
    assert f"](benchmarks/results/{SLIM_TIME}/summary.md)" in time
    memory = next(v for k, v in rows.items() if "peak memory" in k)
    assert "side by side on a quiet machine" in memory and "5.00x" in memory and "missed: -3.75x" in memory
    assert f"](benchmarks/results/{SLIM_TIME}/summary.md)" in memory


def test_slim_resnet_baselines_are_compared_on_the_seeds_every_strategy_ran(tmp_path):
    runs = [_run("rnf", s, last, 100.0, 100.0) for s, last in ((0, 0.7), (1, 0.8), (2, 0.99))]
    runs += [_run("replay", s, 0.8, 100.0, 100.0) for s in (0, 1)]
    runs += [_run("naive", s, 0.5, 100.0, 100.0) for s in (0, 1, 2)]
    every = next(v for k, v in _rows(tmp_path, runs).items() if "every baseline run" in k)
    assert "(naive, replay; best: replay, on seeds 0, 1, which all ran)" in every
    # not RNF's 0.880 over its three seeds; 0.025 below Replay, inside RNF's spread over those seeds
    assert "| 0.825 (replay 0.850) | 2 | tied: -0.025 (spread ±0.035) |" in every


def test_a_target_is_met_or_missed_only_beyond_the_seeds_spread(tmp_path):
    assert judged(0.010, 0.005) == "**met**: +0.010 (spread ±0.005)"
    assert judged(-0.004, 0.005) == "tied: -0.004 (spread ±0.005)"
    assert judged(0.004, 0.005) == "tied: +0.004 (spread ±0.005)"  # above the bar, but not beyond the spread
    assert judged(-0.010, 0.005) == "missed: -0.010 (spread ±0.005)"
    assert judged(0.0, 0.0) == "tied: +0.000" and judged(-0.01, 0.0, "{:+.2f}x".format) == "missed: -0.01x"
    assert spread([0.9]) == 0.0 and round(spread([0.8, 0.85]), 4) == 0.0354
    runs = [_run("rnf", s, last, 100.0, 100.0) for s, last in ((0, 0.9), (1, 0.94))]  # 0.90 and 0.92
    runs += [_run("lwf", s, last, 100.0, 100.0) for s, last in ((0, 0.86), (1, 0.90))]  # 0.88 and 0.90
    every = next(v for k, v in _rows(tmp_path, runs).items() if "every baseline run" in k)
    assert "| 0.910 (lwf 0.890) | 2 | **met**: +0.020 (spread ±0.014) |" in every
