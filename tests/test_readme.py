"""The README's usage example runs as written (on the MNIST data root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_examples() -> list[str]:
    section = README.read_text().split("## Usage with Avalanche", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _usage_example() -> str:
    return _usage_examples()[0]


def test_plugin_example_runs_after_the_first_ones_imports():
    """The plugin example builds its strategy with the names the first example imported."""
    first, plugin = _usage_examples()[:2]
    imports = "\n".join(line for line in first.splitlines() if line.startswith(("import ", "from ")))
    namespace: dict = {}
    exec(compile(imports + "\n" + plugin, str(README), "exec"), namespace)
    assert namespace["rnf"] in namespace["strategy"].plugins
    assert namespace["rnf"].tolerance.max_drop == 0.002 and namespace["rnf"].retraining.lr_scale == 4


def test_usage_example_is_short():
    assert len(_usage_example().strip().splitlines()) <= 15


@pytest.mark.skipif(not os.environ.get("RNF_DATA_ROOT"), reason="RNF_DATA_ROOT not set (MNIST data root)")
def test_usage_example_runs(capsys):
    code = _usage_example().replace('dataset_root="data"', f"dataset_root={os.environ['RNF_DATA_ROOT']!r}")
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    strategy = namespace["strategy"]
    assert len(strategy.rnf.frozen_fractions) == 5
    stream_acc = strategy.evaluator.get_last_metrics()["Top1_Acc_Stream/eval_phase/test_stream/Task004"]
    assert stream_acc > 0.95
    assert "RNF/FrozenFraction" in capsys.readouterr().out
