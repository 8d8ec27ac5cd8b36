"""rnf-bench on Ray (local, 2 CPUs): same results as a sequential run, resume across both, a killed
worker loses only its own run, and the Ray Tune sweep with its write-back into the table."""

from __future__ import annotations

import json
import os
import signal

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

from avalanche_rnf.bench import cli, distributed, sweep  # noqa: E402
from avalanche_rnf.bench.results import load_records  # noqa: E402

FAST = ["--epochs", "2", "--loggers", "text,csv", "--no-plots"]
TIMING = {"train_seconds", "eval_seconds", "relevance_seconds", "peak_rss_mb", "peak_rss_delta_mb", "device"}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def bench(tmp_path, name, *args):
    out = tmp_path / name
    return cli.main([*FAST, "--out", str(out), *args]), out


def measured(record) -> dict:
    """What a run measured, without wall times and memory (they differ between any two runs)."""
    data = {k: v for k, v in record.to_json().items() if k not in TIMING | {"total_train_seconds"}}
    data["rnf_search"] = [{k: v for k, v in s.items() if k != "seconds"} for s in data["rnf_search"]]
    return data


def killing(strategy: str):
    """A job function whose worker process dies (SIGKILL) on ``strategy``'s runs; the others run normally."""
    from avalanche_rnf.bench.jobs import run_job

    def job_fn(job, device):
        if job.spec.strategy == strategy:
            os.kill(os.getpid(), signal.SIGKILL)
        return run_job(job, device)

    return job_fn


def test_ray_run_equals_sequential_run(tmp_path):
    args = ["--strategies", "naive,ewc,rnf", "--seeds", "0", "1"]
    assert bench(tmp_path, "sequential", *args)[0] == 0
    code, out = bench(tmp_path, "ray", *args, "--ray")
    assert code == 0
    sequential = {r.key: measured(r) for r in load_records(tmp_path / "sequential")[1]}
    on_ray = {r.key: measured(r) for r in load_records(out)[1]}
    assert len(on_ray) == 6 and on_ray == sequential
    order = [r.key for r in load_records(tmp_path / "sequential")[1]]
    assert [r.key for r in load_records(out)[1]] == order  # the plan's order, not the order runs finished
    header = (tmp_path / "sequential" / "results.csv").read_text().splitlines()[0]
    assert (out / "results.csv").read_text().splitlines()[0] == header
    assert (out / "logs" / "rnf-seed1" / "log.txt").is_file()


def test_resume_works_across_sequential_and_ray_runs(tmp_path, capsys):
    assert bench(tmp_path, "run", "--strategies", "naive")[0] == 0
    code, out = bench(tmp_path, "run", "--strategies", "naive,lwf", "--ray", "--resume")
    assert code == 0
    assert "naive seed 0: finished earlier, skipped" in capsys.readouterr().out
    code, _ = bench(tmp_path, "run", "--strategies", "naive,lwf", "--resume")
    assert code == 0
    text = capsys.readouterr().out
    assert "naive seed 0: finished earlier" in text and "lwf seed 0: finished earlier" in text
    assert sorted(r.strategy for r in load_records(out)[1]) == ["lwf", "naive"]


def test_killed_worker_loses_only_its_run_and_resume_finishes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(distributed, "run_job", killing("lwf"))
    code, out = bench(tmp_path, "run", "--strategies", "naive,lwf,rnf", "--ray")
    assert code == 1
    status = {r.strategy: (r.status, r.reason) for r in load_records(out)[1]}
    assert status["naive"][0] == status["rnf"][0] == "ok"
    assert status["lwf"][0] == "failed" and "died" in status["lwf"][1]
    assert "failed: lwf seed 0" in capsys.readouterr().err

    monkeypatch.undo()
    code, _ = bench(tmp_path, "run", "--strategies", "naive,lwf,rnf", "--ray", "--resume")
    assert code == 0
    assert {r.strategy: r.status for r in load_records(out)[1]} == {"naive": "ok", "lwf": "ok", "rnf": "ok"}


def test_sweep_on_tune_reports_best_points_and_writes_them_back(tmp_path, capsys):
    config = tmp_path / "sweep.json"
    config.write_text(json.dumps({"samples": 2, "seed": 3, "strategies": {
        "lwf": {"alpha": [0.5, 2.0]}, "rnf": {"max_drop": {"loguniform": [0.001, 0.05]}}}}))
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"split_mnist/task": {"ewc": {"ewc_lambda": 10.0}}}))
    code, out = bench(tmp_path, "sweep", "--sweep", str(config), "--seeds", "0", "1", "--write-tuned", str(tuned))
    assert code == 0
    _, records = load_records(out)
    assert len(records) == 8 and all(r.status == "ok" and r.config["validation"] == 0.1 for r in records)
    draws = sorted({r.config["params"]["max_drop"] for r in records if r.strategy == "rnf"})
    assert len(draws) == 2 and all(0.001 <= d <= 0.05 for d in draws)
    assert draws == sorted(p["max_drop"] for p in sweep.load_space(str(config)).points("rnf"))

    best = sweep.best_points(records, {"lwf": ["alpha"], "rnf": ["max_drop"]})
    tied = 0  # points level with their strategy's best: the summary marks each
    for strategy, b in best.items():
        scores = {}
        for r in records:
            if r.strategy == strategy:
                point = next(v for k, v in r.config["params"].items() if k in b.params)
                scores.setdefault(point, []).append(r.average_accuracy)
        assert b.seeds == 2 and b.score == pytest.approx(max(sum(v) / 2 for v in scores.values()))
        tied += sum(sum(v) / len(v) == b.score for v in scores.values())
    written = json.loads(tuned.read_text())
    assert written["split_mnist/task"] == {"ewc": {"ewc_lambda": 10.0}}  # other entries kept
    assert written["split_digits/task"] == {s: b.params for s, b in best.items()}
    summary = (out / "summary.md").read_text()
    assert summary.count("**best**") == tied >= 2 and "| lwf | alpha | 0.5 | 2 |" in summary
    assert "best configuration per strategy" in capsys.readouterr().out
    assert any((out / "tune").iterdir())

    code, _ = bench(tmp_path, "sweep", "--sweep", str(config), "--seeds", "0", "1", "--resume")
    assert code == 0 and capsys.readouterr().out.count("finished earlier, skipped") == 8


def test_sweep_trial_whose_worker_dies_is_reported_failed_and_resume_finishes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "run_job", killing("lwf"))
    code, out = bench(tmp_path, "sweep", "--sweep", "default", "--strategies", "naive,lwf")
    assert code == 1
    runs = load_records(out)[1]
    assert [r.status for r in runs if r.strategy == "naive"] == ["ok"]
    failed = [r for r in runs if r.strategy == "lwf"]
    assert len(failed) == 3 and all(r.status == "failed" and "died" in r.reason for r in failed)

    monkeypatch.undo()
    code, _ = bench(tmp_path, "sweep", "--sweep", "default", "--strategies", "naive,lwf", "--resume")
    assert code == 0 and all(r.status == "ok" for r in load_records(out)[1])


@pytest.mark.parametrize("data, message", [
    ({}, "non-empty 'strategies'"),
    ({"strategies": {"nope": {"x": [1]}}}, "unknown strategy 'nope'"),
    ({"strategies": {"ewc": {"ewc_lambda": []}}}, "ewc.ewc_lambda: expected a non-empty list"),
    ({"strategies": {"ewc": {"ewc_lambda": {"gaussian": [0, 1]}}}}, "one of uniform"),
    ({"strategies": {"ewc": {"ewc_lambda": [1]}}, "samples": 0}, "'samples' must be a positive integer"),
    ({"strategies": {"ewc": {"ewc_lambda": [1]}}, "trials": 3}, "unknown key(s) trials"),
])
def test_bad_sweep_configuration_is_a_clear_error(data, message):
    with pytest.raises(sweep.SweepConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep.parse_space(data)


def test_a_sweep_may_search_the_harness_peers_outside_the_headline_strategies():
    space = sweep.parse_space({"strategies": {"generative_replay": {"vae": ["mlp", "conv"], "latent": [16]}}})
    assert space.points("generative_replay") == [{"vae": "mlp", "latent": 16}, {"vae": "conv", "latent": 16}]


def test_sweep_points_are_the_grid_times_the_draws_and_repeat_with_the_seed():
    space = sweep.parse_space({"samples": 3, "seed": 1, "strategies": {
        "rnf": {"reference_size": [100, 300], "max_drop": {"uniform": [0.0, 0.1]}}, "lwf": {"alpha": [1, 2]},
        "si": {"si_lambda": {"choice": [1.0, 10.0]}}}})
    points = space.points("rnf")
    assert len(points) == 6 and sorted({p["reference_size"] for p in points}) == [100, 300]
    assert len({p["max_drop"] for p in points}) == 6 and all(type(p["max_drop"]) is float for p in points)
    assert space.points("rnf") == points
    assert space.points("lwf") == [{"alpha": 1}, {"alpha": 2}]
    assert len(space.points("si")) == 3 and {p["si_lambda"] for p in space.points("si")} <= {1.0, 10.0}
    assert sweep.load_space("default").points("ewc") == [{"ewc_lambda": v} for v in (1.0, 10.0, 100.0, 1000.0,
                                                                                        10000.0)]


def test_ray_options_are_checked(tmp_path, capsys):
    assert cli.main(["--ray", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--gpus-per-run" in capsys.readouterr().err
    assert cli.main(["--write-tuned", "--out", str(tmp_path)]) == 2
    assert "use it with --sweep" in capsys.readouterr().err
    assert cli.main(["--sweep", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert "cannot read sweep file" in capsys.readouterr().err


def test_runs_that_never_report_back_are_recorded_as_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "run_sweep", lambda *args, **kwargs: None)  # Tune ended without results
    code, out = bench(tmp_path, "sweep", "--sweep", "default", "--strategies", "naive")
    assert code == 1
    (record,) = load_records(out)[1]
    assert record.status == "failed" and "no result came back" in record.reason
    assert "failed: naive seed 0" in capsys.readouterr().err
