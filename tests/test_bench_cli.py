"""The rnf-bench command line on split digits: files written, resume, failures, search, clear errors."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time

import pytest

from avalanche_rnf.bench import cli
from avalanche_rnf.bench.results import load_records

FAST = ["--epochs", "2", "--loggers", "text,csv,tensorboard"]


def bench(tmp_path, *args, name="run"):
    out = tmp_path / name
    code = cli.main([*FAST, "--out", str(out), *args])
    return code, out


def test_cli_writes_results_csv_summary_plots_and_logs(tmp_path):
    code, out = bench(tmp_path, "--strategies", "naive,rnf,packnet,joint", "--seeds", "0", "1")
    assert code == 0
    meta, records = load_records(out)
    assert meta["command"].startswith("rnf-bench ") and meta["machine"]["cpu_count"] >= 1
    assert sorted((r.strategy, r.seed) for r in records) == sorted(
        (s, seed) for s in ("naive", "rnf", "packnet", "joint") for seed in (0, 1))
    for r in records:
        assert r.status == "ok"
        rows = 1 if r.strategy == "joint" else 5
        assert len(r.matrix) == rows and all(len(row) == 5 for row in r.matrix)
        assert len(r.train_seconds) == rows and r.peak_rss_mb > 0
        assert all(0 <= a <= 1 for row in r.matrix for a in row)
    rnf = next(r for r in records if r.strategy == "rnf")
    assert len(rnf.relevance_seconds) == 5 and 0 < rnf.frozen_fractions[-1]["all"] <= 1
    assert rnf.state_bytes[-1] > 0 and rnf.forgetting is not None
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (5 + 5 + 5 + 1)
    assert {"acc_exp4", "average_accuracy", "state_bytes", "frozen_fraction"} <= set(rows[0])
    summary = (out / "summary.md").read_text()
    assert all(f"| {s} | 2 |" in summary for s in ("naive", "rnf", "packnet", "joint"))
    assert " ± " in summary
    for plot in ("average_accuracy", "accuracy_matrices", "costs", "rnf_frozen_fraction"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000
    logs = out / "logs" / "rnf-seed0"
    assert "RNF/FrozenFraction" in (logs / "log.txt").read_text()
    assert (logs / "csv" / "eval_results.csv").is_file()
    assert any((logs / "tensorboard").iterdir())


def test_resume_skips_finished_runs_and_reruns_failed_ones(tmp_path, monkeypatch, capsys):
    import avalanche_rnf.bench.runner as runner

    real = runner.build_strategy

    def flaky(name, *args, **kwargs):
        if name == "ewc":
            raise RuntimeError("worker died")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(runner, "build_strategy", flaky)
    code, out = bench(tmp_path, "--strategies", "naive,ewc")
    assert code == 1
    assert "failed: ewc seed 0: RuntimeError: worker died" in capsys.readouterr().err
    _, records = load_records(out)
    assert {r.strategy: r.status for r in records} == {"naive": "ok", "ewc": "failed"}
    naive_before = next(r for r in records if r.strategy == "naive").to_json()

    monkeypatch.setattr(runner, "build_strategy", real)
    code, _ = bench(tmp_path, "--strategies", "naive,ewc", "--resume")
    assert code == 0
    assert "naive seed 0: finished earlier, skipped" in capsys.readouterr().out
    _, records = load_records(out)
    assert {r.strategy: r.status for r in records} == {"naive": "ok", "ewc": "ok"}
    assert next(r for r in records if r.strategy == "naive").to_json() == naive_before


def test_resume_reruns_a_run_whose_configuration_changed(tmp_path, capsys):
    bench(tmp_path, "--strategies", "rnf")
    bench(tmp_path, "--strategies", "rnf", "--resume", "--param", "rnf.max_drop=0.01")
    assert "finished earlier" not in capsys.readouterr().out
    _, records = load_records(tmp_path / "run")
    assert sorted(str(r.config["params"]["max_drop"]) for r in records) == ["0.01", "None"]  # the table's: none
    # the summary covers this invocation's runs only, not the older configuration kept in the store
    assert "| rnf | 1 |" in (tmp_path / "run" / "summary.md").read_text()


def test_rerun_replaces_the_stored_runs_of_a_strategy(tmp_path, capsys):
    bench(tmp_path, "--strategies", "naive,lwf")
    _, before = load_records(tmp_path / "run")
    bench(tmp_path, "--strategies", "naive,lwf", "--resume", "--rerun", "lwf")
    assert "naive seed 0: finished earlier" in capsys.readouterr().out
    _, after = load_records(tmp_path / "run")
    assert sorted(r.strategy for r in after) == ["lwf", "naive"]
    old, new = ({r.strategy: r for r in records}["lwf"] for records in (before, after))
    assert old.key == new.key and old.train_seconds != new.train_seconds
    bench(tmp_path, "--strategies", "lwf", "--resume", "--rerun", "lwf")
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "| naive | 1 |" in summary and "| lwf | 1 |" in summary  # the directory's other strategy too


def test_rerun_in_a_search_directory_drops_only_the_points_it_runs(tmp_path):
    bench(tmp_path, "--search", "--strategies", "naive")
    bench(tmp_path, "--search", "--strategies", "naive", "--epochs", "1", "--resume")
    _, before = load_records(tmp_path / "run")
    bench(tmp_path, "--search", "--strategies", "naive", "--epochs", "1", "--resume", "--rerun", "naive")
    _, after = load_records(tmp_path / "run")
    old, new = ({r.config["training"]["epochs"]: r for r in records} for records in (before, after))
    assert sorted(old) == sorted(new) == [1, 2]
    assert new[2].train_seconds == old[2].train_seconds  # the other point was kept, not run again
    assert new[1].train_seconds != old[1].train_seconds


def test_same_seed_reproduces_the_same_accuracy_matrix(tmp_path):
    bench(tmp_path, "--strategies", "ewc,rnf", name="a")
    bench(tmp_path, "--strategies", "ewc,rnf", name="b")
    a, b = (load_records(tmp_path / n)[1] for n in "ab")
    assert [r.matrix for r in a] == [r.matrix for r in b]


def test_lr_sets_every_strategy_s_learning_rate(tmp_path, capsys):
    bench(tmp_path, "--strategies", "naive,rnf", name="default")
    bench(tmp_path, "--strategies", "naive,rnf", "--lr", "0.002", name="small")
    default, small = (load_records(tmp_path / n)[1] for n in ("default", "small"))
    assert {r.strategy: r.config["training"]["lr"] for r in default} == {"naive": 0.02, "rnf": 0.05}  # the table's
    assert {r.config["training"]["lr"] for r in small} == {0.002}
    assert all(a.matrix != b.matrix for a, b in zip(default, small))
    assert cli.main(["--lr", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--lr must be a positive learning rate" in capsys.readouterr().err


def test_search_scores_key_parameter_on_validation_data(tmp_path):
    code, out = bench(tmp_path, "--search", "--strategies", "rnf,naive")
    assert code == 0
    _, records = load_records(out)
    assert sorted(r.config["params"].get("max_drop", 0) for r in records) == [0, 0.002, 0.005, 0.01]
    assert all(r.config["validation"] == 0.1 for r in records)
    summary = (out / "summary.md").read_text()
    scores = [r.average_accuracy for r in records if r.strategy == "rnf"]
    assert summary.count("**best**") == scores.count(max(scores)) >= 1  # every exactly tied point
    assert "| rnf | max_drop | 0.002 |" in summary


def test_skipped_strategy_is_reported_with_its_reason(tmp_path):
    code, out = bench(tmp_path, "--strategies", "packnet", "--scenario", "class")
    assert code == 0
    _, (record,) = load_records(out)
    assert record.status == "skipped" and "task-incremental only" in record.reason
    assert "skipped: PackNet" in (out / "summary.md").read_text()


def test_missing_dataset_names_directory_and_files_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "avalanche_rnf.bench", "--benchmark", "split_mnist", "--data-root", str(tmp_path),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 2
    assert str(tmp_path.resolve()) in result.stderr and "MNIST/raw/train-images-idx3-ubyte.gz" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_options_are_reported_without_traceback(tmp_path, capsys):
    assert cli.main(["--benchmark", "permuted_mnist", "--scenario", "class", "--out", str(tmp_path)]) == 2
    assert "supports the scenarios domain, task" in capsys.readouterr().err
    assert cli.main(["--param", "ewc.ewc_lambda", "--out", str(tmp_path)]) == 2
    assert "STRATEGY.KEY=VALUE" in capsys.readouterr().err


def test_wandb_logger_writes_offline_runs(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    code, out = bench(tmp_path, "--strategies", "naive,rnf", "--wandb", "rnf-test")
    assert code == 0
    runs = sorted((out / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 3  # naive, rnf and the summary with the plots
    assert all(list(r.glob("run-*.wandb")) for r in runs)
    # offline runs keep what was logged in their .wandb file (protobuf: keys are stored as plain bytes);
    # wandb's service process may still be flushing it when finish() returns, so read until it settles
    for _ in range(40):
        data = [next(r.glob("run-*.wandb")).read_bytes() for r in runs]
        if sum(b"accuracy_matrix" in d for d in data) == 2 and sum(b"plots/average_accuracy" in d for d in data):
            break
        time.sleep(0.25)
    per_run = [d for d in data if b"accuracy_matrix" in d]
    assert len(per_run) == 2
    keys = (b"average_accuracy", b"forgetting", b"state_bytes", b"Top1_OwnHeadAcc_Exp", b"RNF/FrozenFraction")
    assert all(k in b"".join(per_run) for k in keys)
    assert sum(b"plots/average_accuracy" in d for d in data) == 1


def test_readme_tables_are_generated_from_the_committed_results():
    from avalanche_rnf.bench import report

    assert report.main(["--check"]) == 0, "run: python -m avalanche_rnf.bench.report"


@pytest.mark.skipif(not os.environ.get("RNF_DATA_ROOT"), reason="RNF_DATA_ROOT not set (MNIST data root)")
def test_preset_runs_other_strategies_in_its_setting(tmp_path):
    out = tmp_path / "preset"
    code = cli.main(["--preset", "si-smnist", "--strategies", "naive,si", "--epochs", "1", "--experiences", "2",
                     "--no-reset-optimizer", "--loggers", "text", "--out", str(out)])
    assert code == 0
    records = {r.strategy: r for r in load_records(out)[1]}
    assert set(records) == {"naive", "si"} and all(r.status == "ok" for r in records.values())
    for r in records.values():
        training = r.config["training"]
        assert (training["optimizer"], training["hidden_size"], training["epochs"]) == ("adam", 256, 1)
        assert training["reset_optimizer"] is False and len(r.matrix) == 2
    assert records["si"].config["params"] == {"si_lambda": 1.0, "eps": 0.1}
    assert records["naive"].config["params"] == {}


def test_online_runs_see_each_experience_once_in_sub_experiences(tmp_path, monkeypatch):
    from avalanche_rnf.bench import runner
    from avalanche_rnf.bench.streams import build_stream

    sizes: list[tuple[int, bool]] = []
    cut = runner.sub_experiences

    def watched(experience, size, seed):
        for sub in cut(experience, size, seed):
            sizes.append((len(sub.dataset), sub.is_last_subexp))
            yield sub

    monkeypatch.setattr(runner, "sub_experiences", watched)
    out = tmp_path / "online"
    code = cli.main(["--online", "32", "--strategies", "naive,er_ace,rnf,joint", "--scenario", "class",
                     "--loggers", "csv", "--out", str(out)])
    assert code == 0
    meta, records = load_records(out)
    assert meta["plan"]["training"]["online"] == 32 and meta["plan"]["training"]["epochs"] == 1
    by = {r.strategy: r for r in records}
    assert by["joint"].status == "skipped" and "not online" in by["joint"].reason
    for name in ("naive", "er_ace", "rnf"):
        assert by[name].status == "ok" and len(by[name].matrix) == 5  # evaluated when each experience ends
    assert by["er_ace"].state_bytes[-1] > 0 and by["rnf"].state_bytes[-1] > 0
    assert all(size <= 32 for size, _ in sizes) and sum(last for _, last in sizes) == 3 * 5
    train_samples = sum(len(e.dataset) for e in build_stream("split_digits", "class", seed=0).benchmark.train_stream)
    assert sum(size for size, _ in sizes) == 3 * train_samples  # each sample once, for each of the three runs
