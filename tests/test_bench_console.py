"""rnf-bench's console: short, its logs in the run directory, warnings routed, commands that run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from avalanche_rnf.bench import cli
from avalanche_rnf.bench.console import WarningLog
from avalanche_rnf.bench.portable import portable_command


def test_console_stays_short_and_avalanche_logs_go_to_the_run_directory(tmp_path):
    out = tmp_path / "quiet"
    result = subprocess.run(  # the default loggers; replay raises Avalanche's deprecation warning on every step
        [sys.executable, "-m", "avalanche_rnf.bench", "--strategies", "naive,replay", "--epochs", "1",
         "--no-plots", "--out", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    lines = [line for line in console.replace("\r", "\n").splitlines() if line.strip()]  # each bar redraw a line
    assert len(lines) < 40, console
    for noise in ("Top1_Acc_Exp", "Epoch 0", "Start of training", "DeprecationWarning", "No loggers"):
        assert noise not in console
    assert "| naive | 1 |" in result.stdout and "| replay | 1 |" in result.stdout
    assert "Top1_Acc_Exp" in (out / "logs" / "naive-seed0" / "log.txt").read_text()
    log = (out / "logs" / "rnf-bench.log").read_text()
    assert "DeprecationWarning" in log and "replay seed 0: ok" in log
    # results.json and summary.md say how to rerun without this machine's paths: run in the run directory
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["command"] == "rnf-bench --strategies naive,replay --epochs 1 --no-plots --out ."
    assert meta["command_dir"] == "."
    for name in ("results.json", "summary.md", "results.csv"):
        text = (out / name).read_text()
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text and os.getcwd() not in text


def test_recorded_command_is_relative_to_where_it_can_run_again(tmp_path, monkeypatch):
    monkeypatch.delenv("RNF_DATA_ROOT", raising=False)
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    monkeypatch.chdir(tmp_path)
    # a run directory inside the current directory: as typed, run from there (absolute paths made relative)
    argv = ["--seeds", "0", "1", "--out", str(repo / "results" / "x"), "--data-root", str(repo / "data")]
    assert portable_command(argv, repo / "results" / "x", cwd=repo) == (
        "rnf-bench --seeds 0 1 --out results/x --data-root data", "../..")
    assert portable_command(["--out", "runs/a b"], Path("runs/a b"), cwd=repo) == (
        "rnf-bench --out 'runs/a b'", "../..")
    # elsewhere: run in the run directory; a data root outside it is the environment variable, a file its name
    argv = ["--ou", str(elsewhere), f"--data-root={tmp_path / 'data'}", "--sweep", str(repo / "grid.json"),
            "--write-tuned", "--resume"]
    assert portable_command(argv, elsewhere, cwd=repo) == (
        'rnf-bench --ou . --data-root="$RNF_DATA_ROOT" --sweep grid.json --write-tuned --resume', ".")
    assert portable_command(["--sweep", "default"], Path("runs/s"), cwd=repo)[0] == "rnf-bench --sweep default"


def test_warnings_go_to_the_run_log_and_rnf_s_own_to_the_console_once(tmp_path, capsys):
    def notice():  # a dependency's warning, raised from one place
        warnings.warn("a dependency's notice", UserWarning, stacklevel=1)

    before = warnings.showwarning
    with WarningLog() as log:
        warnings.simplefilter("always")
        notice()  # before the run directory is known: kept for the log
        log.attach(tmp_path / "logs" / "rnf-bench.log")
        for _ in range(3):
            warnings.warn("RNF: all 10 units of layer 'fc' are frozen", UserWarning, stacklevel=1)
            notice()
    assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err.count("RNF: all 10 units") == 1 and "dependency" not in err
    text = (tmp_path / "logs" / "rnf-bench.log").read_text()
    assert text.count("UserWarning: a dependency's notice") == 1 and text.count("UserWarning: RNF: all 10") == 1


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_cli_module_imports_no_avalanche_before_main():
    """rnf-bench's entry module leaves Avalanche (and the harness modules that import it) to main, which
    imports them inside its WarningLog: their import-time warnings go to the run's log."""
    code = ("import sys, avalanche_rnf; before = set(sys.modules); import avalanche_rnf.bench.cli; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    new = _python(code).stdout.split()
    assert "avalanche_rnf.bench.cli" in new
    heavy = [m for m in new if m.split(".")[0] in ("avalanche", "torch", "torchvision", "qpsolvers")
             or m in ("avalanche_rnf.bench.streams", "avalanche_rnf.bench.jobs", "avalanche_rnf.bench.runner")]
    assert not heavy


def test_console_shows_no_import_time_warning_of_avalanche(tmp_path):
    assert _python("import sys, avalanche_rnf; print('avalanche' in sys.modules)").stdout.strip() == "False"
    result = subprocess.run([sys.executable, "-m", "avalanche_rnf.bench", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "Warning" not in result.stdout + result.stderr, result.stderr


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for option in ("--benchmark", "--scenario", "--strategies", "--epochs", "--seeds", "--data-root", "--out",
                   "--wandb", "--resume", "--preset", "--search", "--lr", "imagefolder", "split_cifar10"):
        assert option in text

