"""The README's usage example runs as written (on the MNIST data root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_example() -> str:
    section = README.read_text().split("## Usage with Avalanche", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


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
