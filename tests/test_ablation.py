"""Ablations: unit scores other than LRP (random, activation and weight magnitude, Taylor); mechanisms one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from avalanche_rnf import RNF, Capacity, Relevance, Retraining, TaskInference, Tolerance, find_unit_layers
from avalanche_rnf.ablation import alternative_scores
from avalanche_rnf.bench.ablation_table import ablation_table, kept_per_task, verdict
from avalanche_rnf.bench.mechanism_table import STREAMS, commands, mechanism_table, step_params, steps
from avalanche_rnf.bench.results import RunRecord
from helpers import MultiHeadMLP, quiet_evaluator


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g), None)]


def test_each_method_scores_every_unit_as_it_says():
    model = _net()
    layers = find_unit_layers(model)
    x, y, _ = _batches()[0]
    hidden = model[0](x)
    activation = alternative_scores("activation", model, layers, _batches())
    assert torch.allclose(activation.relevance["0"], hidden.abs().sum(0).detach())
    assert activation.n_samples == 8
    weight = alternative_scores("weight", model, layers, _batches())
    assert torch.allclose(weight.relevance["0"] / 8, model[0].weight.abs().sum(1).detach())
    taylor = alternative_scores("taylor", model, layers, _batches())
    hidden.retain_grad()
    model[2](torch.relu(hidden)).gather(1, y[:, None]).sum().backward()
    assert torch.allclose(taylor.relevance["0"], (hidden.grad * hidden).abs().sum(0).detach(), atol=1e-6)
    first = alternative_scores("random", model, layers, _batches(), seed=0).relevance["0"]
    again = alternative_scores("random", model, layers, _batches(), seed=0).relevance["0"]
    other = alternative_scores("random", model, layers, _batches(), seed=1).relevance["0"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="method must be one of lrp, random"):
        Relevance(method="saliency")


@pytest.mark.parametrize("method", ["random", "activation", "weight", "taylor"])
def test_rnf_trains_with_any_scoring_method(digits_til, method):
    torch.manual_seed(0)
    model = MultiHeadMLP()
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), train_mb_size=32,
                   relevance=Relevance(method=method), evaluator=quiet_evaluator())
    for experience in digits_til.train_stream[:2]:
        strategy.train(experience)
    fractions = strategy.rnf.frozen_fractions[-1]
    assert 0 < fractions["features.1"] < 1


# ---------------------------------------------------------------- the ablation table
def _record(method: str, seed: int, accuracy: float) -> RunRecord:
    fractions = [{"h": 0.2, "classifier.0": 1.0, "all": 0.3}, {"h": 0.3, "classifier.0": 1.0, "all": 0.4}]
    search = [{"mass": 1.0, "accuracy": 0.5, "full_accuracy": 0.9},
              {"mass": 0.5, "accuracy": 0.8, "full_accuracy": 0.9}]
    return RunRecord("permuted_mnist", "task", "rnf", seed, {"params": {"unit_scores": method, "capacity_flex": 2}},
                     matrix=[[accuracy, 0.1], [accuracy, accuracy]], frozen_fractions=fractions, rnf_search=search)


def _write(folder: Path, records: list[RunRecord]) -> None:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"meta": {}, "runs": [r.to_json() for r in records]}))


def test_ablation_table_reads_units_kept_and_the_verdict(tmp_path):
    order = ("a-lrp", "a-random")
    _write(tmp_path / "a-lrp", [_record("lrp", 0, 0.80), _record("lrp", 1, 0.82)])
    _write(tmp_path / "a-random", [_record("random", 0, 0.70), _record("random", 1, 0.71)])
    table = ablation_table(tmp_path, order=order)
    lrp_row = next(line for line in table.splitlines() if line.startswith("| lrp"))
    cells = [c.strip() for c in lrp_row.split("|")[1:-1]]
    assert cells[:3] == ["lrp", "2", "0.810 ± 0.014"]
    assert cells[4:8] == ["20.0 ± 0.0", "10.0 ± 0.0", "0.250 ± 0.000", "1.0 of 2"]
    assert "LRP +0.105 against random" in table and "**met**" in table
    assert kept_per_task(_record("lrp", 0, 0.8)) == pytest.approx([0.2, 0.1])


def test_ablation_verdict_is_tied_within_the_spread():
    assert verdict([0.80, 0.84], [0.79, 0.80]).endswith("tied")
    assert verdict([0.70, 0.71], [0.80, 0.81]).endswith("missed")
    assert verdict([0.9], [0.8]) == "not enough seeds (2 needed)"
    assert ablation_table(Path("/nonexistent")) == "No ablation result directory."


def test_ablation_table_names_its_stream_in_the_verdict(tmp_path):
    order = ("n-lrp", "n-random")
    _write(tmp_path / "n-lrp", [_record("lrp", 0, 0.60), _record("lrp", 1, 0.64)])
    _write(tmp_path / "n-random", [_record("random", 0, 0.61), _record("random", 1, 0.61)])
    last = ablation_table(tmp_path, order=order, label="Narrow CNN").splitlines()[-1]
    assert last.startswith("Narrow CNN: LRP +0.010 against random") and last.endswith("tied.")


# ---------------------------------------------------------------- the mechanism ablation
def test_mechanism_steps_turn_each_mechanism_off_in_the_tuned_rnf():
    from avalanche_rnf.bench.arguments import parse_params
    from avalanche_rnf.bench.hparams import strategy_params
    from avalanche_rnf.bench.strategies import rnf_options

    tuned = strategy_params("rnf", "split_mnist", "task")
    made = {}
    for step, _, _ in steps("task"):
        made[step] = rnf_options({**tuned, **parse_params(step_params(step)[1::2]).get("rnf", {})})
    plain = made["plain"]
    assert plain["isolate"] is False and plain["capacity"] == Capacity("unlimited", keep_last=False)
    assert plain["tolerance"] is None and plain["retraining"] is None and plain["task_inference"] is None
    assert "isolate" not in made["isolation"]
    assert made["isolation"]["capacity"] == Capacity("unlimited", keep_last=False)
    assert made["capacity"]["capacity"] == Capacity("fair", keep_last=True) and made["capacity"]["tolerance"] is None
    assert made["tolerance"]["tolerance"] == Tolerance(0.002, holdout=0.05) and made["tolerance"]["retraining"] is None
    assert made["retraining"] == rnf_options(tuned) and made["retraining"]["retraining"] == Retraining(1, lr_scale=4)

    tuned = strategy_params("rnf", "split_mnist", "class")
    made = {step: rnf_options({**tuned, **parse_params(step_params(step, "split_mnist-class")[1::2]).get("rnf", {})})
            for step, _, _ in steps("class")}
    assert list(made) == ["plain", "isolation", "capacity", "inference", "tolerance", "retraining", "defaults"]
    assert made["plain"]["isolate"] is False and made["plain"]["task_inference"] is None
    assert made["isolation"]["isolate"] is True and made["isolation"]["task_inference"] is None
    assert made["capacity"]["capacity"] == Capacity("fair", keep_last=False)  # the harness's, as searched
    assert made["capacity"]["task_inference"] is None
    assert made["inference"]["task_inference"] == TaskInference("class") and made["inference"]["tolerance"] is None
    assert made["retraining"] == rnf_options(tuned)
    assert made["defaults"]["task_inference"] == TaskInference("auto") and "isolate" not in made["defaults"]
    assert made["defaults"]["capacity"] == Capacity()
    assert all(c.startswith("rnf-bench --benchmark split_mnist --scenario class") and "-retraining" not in c
               for c in commands("split_mnist-class"))


def test_mechanism_table_compares_each_step_with_the_one_before(tmp_path):
    accuracies = {"plain": (0.50, 0.52), "isolation": (0.80, 0.81), "capacity": (0.80, 0.82)}
    for step, (a, b) in accuracies.items():
        _write(tmp_path / f"mechanisms-s-task-{step}", [_record("lrp", 0, a), _record("lrp", 1, b)])
    _write(tmp_path / "s-task", [_record("lrp", 0, 0.70), _record("lrp", 1, 0.72),
                            RunRecord("permuted_mnist", "task", "naive", 0, {"params": {}}, matrix=[[0.1]])])
    rows = [line for line in mechanism_table(tmp_path, streams=("s-task",)).splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].split(":")[0].split("(")[0].strip() for row in rows] == [
        "rnf-plain", "+ isolation", "+ fair capacity", "+ retraining the kept units"]  # no tolerance runs
    changes = [row.split("|")[6].strip() for row in rows]
    assert changes[0] == "–" and changes[1].startswith("+0.295 (helps")
    assert changes[2].startswith("+0.005 (tied") and changes[3] == "–"  # the step before (tolerance) has no runs
    assert "[s-task](benchmarks/results/s-task/summary.md)" in rows[3]  # the tuned RNF: the headline runs, RNF's only
    assert rows[3].split("|")[2].strip() == "2"
    _write(tmp_path / "mechanisms-s-task-defaults", [_record("lrp", 0, 0.60), _record("lrp", 1, 0.62)])
    last = mechanism_table(tmp_path, streams=("s-task",)).splitlines()[-1]
    assert last.startswith("| RNF at the library's defaults") and "-0.100 (hurts" in last and "tuned RNF" in last
    _write(tmp_path / "mechanisms-s-task-tolerance", [_record("lrp", 0, 0.80), _record("lrp", 1, 0.82)])
    table = mechanism_table(tmp_path, streams=("s-task",))
    retraining = next(line for line in table.splitlines() if "+ retraining" in line)
    assert "-0.100 (hurts" in retraining


def test_the_defaults_step_is_the_library_s_defaults():
    from avalanche_rnf.bench.defaults_diff import non_defaults
    from avalanche_rnf.bench.hparams import strategy_params
    from avalanche_rnf.bench.mechanism_table import DEFAULTS

    for stream in STREAMS:
        benchmark, scenario = stream.rsplit("-", 1)
        defaults = steps(scenario)[-1]
        assert defaults[0] == DEFAULTS[0]
        assert non_defaults({**strategy_params("rnf", benchmark, scenario), **defaults[2]}, scenario) == []
    assert mechanism_table(Path("/nonexistent")) == "No mechanism ablation result directory."


def test_comparison_table_says_where_rnf_infers_the_task_and_what_it_changed_from_the_defaults(tmp_path):
    from avalanche_rnf.bench.result_tables import comparison_table
    from avalanche_rnf.scenario import RETRAINING_RATE

    def run(strategy: str, scenario: str, params: dict) -> RunRecord:
        return RunRecord("split_mnist", scenario, strategy, 0, {"scenario": scenario, "params": params},
                         matrix=[[0.9, 0.1], [0.8, 0.9]])

    retrains = {"retrain_epochs": 0.9, "retrain_lr_scale": RETRAINING_RATE}
    _write(tmp_path / "c-class", [run("rnf", "class", {"task_inference": True, "max_drop": 0.002, **retrains}),
                                  run("naive", "class", {})])
    _write(tmp_path / "c-task", [run("rnf", "task", retrains), run("naive", "task", {})])
    table = comparison_table(tmp_path, order=("c-class", "c-task"))
    rnf = next(line for line in table.splitlines() if line.startswith("| rnf |"))
    assert rnf.split("|")[2].strip() == "0.850 (task inferred)" and rnf.split("|")[3].strip() == "0.850"
    assert "| c-class | `max_drop=0.002` |" in table and "| c-task | none |" in table


def test_defaults_overrides_bring_every_tuned_column_back_to_the_library_s_defaults():
    from avalanche_rnf.bench.defaults_diff import defaults_overrides, non_defaults
    from avalanche_rnf.bench.defaults_table import COLUMNS
    from avalanche_rnf.bench.hparams import strategy_params

    for column in COLUMNS:
        benchmark, scenario = column.rsplit("-", 1)
        params = strategy_params("rnf", benchmark, scenario)
        assert non_defaults({**params, **defaults_overrides(params, scenario)}, scenario) == [], column
    tuned = {"capacity": 0.09, "recognition_layers": "input", "mass": 0.5, "task_inference": "domain"}
    assert non_defaults(tuned, "domain") != []
    back = defaults_overrides(tuned, "domain")
    assert back["capacity"] == "fair" and "recognition_layers" not in back and back["task_inference"] == "auto"
    class_back = defaults_overrides(tuned, "class")  # input recognition is the domain scenario's, not the class one's
    assert class_back["recognition_layers"] == "auto" and non_defaults({**tuned, **class_back}, "class") == []
    assert non_defaults({**tuned, **back}, "domain") == []


def test_defaults_table_compares_each_column_s_defaults_with_its_tuned_rnf(tmp_path):
    from avalanche_rnf.bench.defaults_table import command, defaults_table, folder_name, verdict

    _write(tmp_path / "s-task", [_record("lrp", 0, 0.910), _record("lrp", 1, 0.912)])
    _write(tmp_path / folder_name("s-task"), [_record("lrp", 0, 0.905), _record("lrp", 1, 0.907)])
    _write(tmp_path / "s-class", [_record("lrp", 0, 0.90), _record("lrp", 1, 0.92)])
    _write(tmp_path / folder_name("s-class"), [_record("lrp", 0, 0.80), _record("lrp", 1, 0.82)])
    table = defaults_table(tmp_path, columns=("s-task", "s-class", "s-domain"))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"s-task", "s-class"}  # no runs, no row
    assert "**met**: -0.005 (seeds' spread ±0.001)" in rows["s-task"]
    assert "missed: -0.100 (seeds' spread ±0.014)" in rows["s-class"]
    assert verdict([0.9, 0.91], [0.92, 0.94]).startswith("missed: -0.025")  # 0.015 beyond the bar, spread 0.014
    assert verdict([0.90, 0.96], [0.92, 0.98]).startswith("tied: -0.020")  # 0.010 beyond it, inside the spread
    assert verdict([0.95, 0.96], [0.94, 0.99]).startswith("tied: -0.010")  # at the bar: tied, not met
    assert verdict([0.9], [0.9]) == "not enough seeds (2 needed)"
    assert folder_name("split_mnist-class") == "mechanisms-split_mnist-class-defaults"
    assert "--param rnf.task_inference=\"auto\" --param rnf.max_drop=0.005" in command("split_fmnist-class")
    assert defaults_table(tmp_path, columns=("s-domain",)) == "No defaults result directory."


def test_peer_targets_compare_rnf_with_the_best_peer_its_target_names(tmp_path):
    from avalanche_rnf.bench.peer_targets import peer_targets_table, verdict

    def run(strategy: str, seed: int, accuracy: float) -> RunRecord:
        return RunRecord("split_digits", "task", strategy, seed, {"params": {}},
                         matrix=[[accuracy, 0.1], [accuracy, accuracy]])

    main = [run(s, seed, a + 0.001 * seed) for s, a in (("rnf", 0.95), ("packnet", 0.96), ("replay", 0.99),
                                                        ("joint", 1.0), ("naive", 0.9)) for seed in (0, 1)]
    _write(tmp_path / "split_digits-task", main)
    _write(tmp_path / "split_fmnist-class", [run(s, seed, a) for s, a in (("rnf", 0.8), ("slda", 0.7), ("replay", 0.9))
                                             for seed in (0, 1)])
    slim = "split_cifar10-task-slim_resnet18"  # task-IL on a ResNet: every baseline is a peer, Joint is not
    _write(tmp_path / slim, [run(s, seed, a + 0.02 * seed) for s, a in (("rnf", 0.83), ("replay", 0.86), ("joint", 0.9))
                             for seed in (0, 1)])
    rows = {line.split("|")[1].strip(): line for line in peer_targets_table(tmp_path).splitlines()[2:]}
    assert set(rows) == {"split_digits-task", "split_fmnist-class", slim}
    assert "| replay 0.870" in rows[slim] and "missed: -0.030 (spread ±0.014)" in rows[slim]
    assert "| packnet 0.96" in rows["split_digits-task"] and "missed: -0.010" in rows["split_digits-task"]
    assert "| slda 0.700" in rows["split_fmnist-class"] and "**met**: +0.100" in rows["split_fmnist-class"]
    assert verdict([0.90, 0.92], [0.91, 0.93]).startswith("tied: -0.010")
    assert verdict([0.9], [0.9]) == "not enough seeds (2 needed)"
    assert peer_targets_table(tmp_path / "none") == "No result directory with RNF and a peer."
