"""rnf-bench --explain: drift matrices, heatmap files, figures, the drift table and W&B; nothing of it without."""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avalanche_rnf.bench import cli, explaining
from avalanche_rnf.bench.hparams import TRAINING
from avalanche_rnf.bench.models import make_model
from avalanche_rnf.bench.results import RunRecord, load_records
from avalanche_rnf.bench.strategies import build_strategy
from avalanche_rnf.bench.wandb_logger import WandBLogger
from avalanche_rnf.drift import load_npz
from helpers import quiet_evaluator

FAST = ["--epochs", "2", "--loggers", "text"]
FIGURES = ("explanation_heatmaps", "explanation_drift", "rnf_unit_relevance")


pytestmark = pytest.mark.usefixtures("one_thread")


class FakeWandB(WandBLogger):
    """The harness's W&B logger without wandb: what it logs is kept in ``logged`` and ``summary``."""

    made: list[FakeWandB] = []

    def __init__(self, project, name=None, group=None, config=None, dir=None, mode=None):
        super(WandBLogger, self).__init__()
        self.name, self.logged, self.summary = name, {}, {}
        self.run = SimpleNamespace(log=self.logged.update, summary=self.summary, finish=lambda: None)
        self.wandb = SimpleNamespace(Table=lambda columns, data: ("table", columns, data),
                                     Image=lambda path: ("image", path), Html=lambda html: ("html", html))
        FakeWandB.made.append(self)


def test_explain_writes_heatmaps_drift_figures_summary_and_wandb_and_without_it_nothing(tmp_path, monkeypatch):
    import avalanche_rnf.bench.wandb_logger as wandb_logger

    monkeypatch.setattr(wandb_logger, "WandBLogger", FakeWandB)
    FakeWandB.made.clear()
    with_, without = tmp_path / "explain", tmp_path / "plain"
    base = [*FAST, "--benchmark", "split_digits", "--strategies", "naive,rnf"]
    assert cli.main([*base, "--explain", "--wandb", "test", "--out", str(with_)]) == 0
    assert cli.main([*base, "--out", str(without)]) == 0

    meta, records = load_records(with_)
    assert meta["plan"]["explain"] is True
    by = {r.strategy: r for r in records}
    for r in records:
        assert r.config["explain"] is True and len(r.explain_seconds) == len(r.train_seconds) == 5
        assert all(s > 0 for s in r.explain_seconds)
        for measure in ("cosine", "rank"):
            m = r.drift[measure]
            assert [[v is None for v in row] for row in m] == [[j >= i for j in range(5)] for i in range(5)]
        arrays = load_npz(with_ / r.heatmaps)
        assert r.heatmaps.startswith("explanations/") and (with_ / r.heatmaps).stat().st_mode & 0o444
        np.testing.assert_array_equal(arrays["drift_cosine"], [[math.nan if v is None else v for v in row]
                                                               for row in r.drift["cosine"]])
        steps = sorted(k for k in arrays if k.startswith("maps_exp000_after"))
        assert len(steps) == 5 and arrays[steps[0]].dtype == np.float16
        assert arrays[steps[0]].shape == arrays["x_exp000"].shape
    rnf, naive = by["rnf"], by["naive"]
    # isolation in a task-incremental stream: RNF's old explanations are exactly what they were
    assert all(v == 1.0 for m in rnf.drift.values() for row in m for v in row if v is not None)
    rnf_maps = load_npz(with_ / rnf.heatmaps)
    np.testing.assert_array_equal(rnf_maps["maps_exp000_after000"], rnf_maps["maps_exp000_after004"])
    assert explaining.final_drift(naive, "cosine") < 1.0 and explaining.final_drift(naive, "rank") < 1.0
    units = explaining.load_units(explaining.units_path(with_ / rnf.heatmaps))
    assert len(units) == 5 and all(v.ndim == 1 and len(v) > 0 for v in units[0].values())
    for name in FIGURES:
        assert (with_ / "plots" / f"{name}.png").stat().st_size > 1000
    summary = (with_ / "summary.md").read_text()
    assert "## Explanation drift" in summary and "| rnf | 1 | 1.000 | 1.000 | 0.000 |" in summary
    drift = summary.split("## Explanation drift")[1]
    assert next(line for line in drift.splitlines() if line.startswith("| naive | 1 | 0.")).endswith(" % |")
    # W&B: per run the drift metrics and matrices, for the summary the figures and the drift table
    runs = {w.name: w for w in FakeWandB.made}
    for name in ("naive-seed0", "rnf-seed0"):
        logged = runs[name].logged
        assert logged["explanation_drift_cosine"][0] == "table" and "XAI/Drift/cosine/Task000" in logged
        assert runs[name].summary["final_drift_cosine"] is not None
    logged = runs["summary"].logged
    assert all(f"plots/{name}" in logged for name in FIGURES)
    _, columns, rows = logged["explanation_drift"]
    assert columns == explaining.COLUMNS and [row[0] for row in rows] == ["naive", "rnf"]

    # without --explain: the same training, and none of the above
    _, plain = load_records(without)
    assert [r.matrix for r in plain] == [r.matrix for r in records]
    assert [r.state_bytes for r in plain] == [r.state_bytes for r in records]  # the heatmaps are not counted
    assert {r.key for r in plain}.isdisjoint(r.key for r in records)
    stored = json.loads((without / "results.json").read_text())
    assert not any(k in run for run in stored["runs"] for k in ("drift", "explain_seconds", "heatmaps", "explain"))
    assert not any(k in run["config"] for run in stored["runs"] for k in ("explain",))
    assert "explain" not in stored["meta"]["plan"] and not (without / "explanations").exists()
    assert "Explanation drift" not in (without / "summary.md").read_text()
    assert not any((without / "plots" / f"{name}.png").exists() for name in FIGURES)


def _record(strategy: str, seed: int, final: list[float | None] | None, explain: bool = True) -> RunRecord:
    r = RunRecord("b", "task", strategy, seed, {"explain": True} if explain else {}, matrix=[[0.9, 0.5], [0.8, 0.9]],
                  train_seconds=[2.0, 2.0])
    if final is not None:
        r.drift = {"cosine": [[None, None], final], "rank": [[None, None], [v and v / 2 for v in final]]}
        r.explain_seconds = [0.1, 0.3]
    return r


def test_drift_table_means_over_seeds_and_joint_is_not_applicable():
    records = [_record("ewc", 0, [0.8, None]), _record("ewc", 1, [0.6, None]), _record("joint", 0, None)]
    table = explaining.drift_table(records, order=["joint", "ewc"])
    assert table is not None
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(explaining.COLUMNS) + " |"
    assert lines[2].startswith("| joint | 1 | n/a: joint training has no old tasks | n/a | 0.100 |")
    assert lines[3] == "| ewc | 2 | 0.700 ± 0.141 | 0.350 ± 0.071 | 0.100 ± 0.000 | 0.40 ± 0.00 | 10.0 ± 0.0 % |"
    assert explaining.drift_table([_record("ewc", 0, None, explain=False)]) is None


def test_results_json_leaves_out_unused_explanation_fields_and_old_files_load():
    plain = _record("ewc", 0, None, explain=False).to_json()
    assert not {"drift", "explain_seconds", "heatmaps"} & set(plain)
    assert RunRecord.from_json(plain).drift == {}
    explained = _record("ewc", 0, [0.5, None]).to_json()
    assert explained["drift"]["cosine"][1] == [0.5, None] and explained["explain_seconds"] == [0.1, 0.3]


def test_packnet_tasks_compute_what_packnet_computes_with_plain_layers(digits_til):
    torch.manual_seed(0)
    training = dataclasses.replace(TRAINING["split_digits"], epochs=2)
    model = make_model("mlp", (64,), 10, False, hidden_size=32)
    strategy = build_strategy("packnet", model, training, {"post_prune_epochs": 1, "prune_proportion": 0.5},
                              evaluator=quiet_evaluator())
    for experience in list(digits_til.train_stream)[:2]:
        strategy.train(experience)
    tasks = explaining.PackNetTasks(strategy.model)
    assert len(tasks.nets) == 3 and not any("Pn" in type(m).__name__ for m in tasks.modules())
    assert not torch.equal(tasks(torch.ones(1, 64), torch.tensor([0])), tasks(torch.ones(1, 64), torch.tensor([1])))
    x = torch.rand(6, 64)
    for task in (0, 1):
        labels = torch.full((6,), task)
        torch.testing.assert_close(tasks(x, labels), strategy.model(x, labels), rtol=0, atol=1e-6)
