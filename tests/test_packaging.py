"""What ``pip install`` puts into site-packages: the ``avalanche_rnf`` package and nothing generic."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def _installed_packages() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    include = config["options.packages.find"]["include"].split()
    return find_packages(where=str(ROOT), include=include)


def test_only_the_package_namespace_is_installed():
    packages = _installed_packages()
    assert "avalanche_rnf" in packages and "avalanche_rnf.bench" in packages
    assert all(p == "avalanche_rnf" or p.startswith("avalanche_rnf.") for p in packages), packages


def test_the_package_is_typed_and_ships_the_harness_table():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    data = config["options.package_data"]
    assert "py.typed" in data["avalanche_rnf"] and (ROOT / "avalanche_rnf" / "py.typed").is_file()
    assert "tuned.json" in data["avalanche_rnf.bench"] and (ROOT / "avalanche_rnf" / "bench" / "tuned.json").is_file()


def test_public_names_are_imported_when_first_used():
    """``import avalanche_rnf`` imports neither Avalanche nor torch; each public name resolves on use."""
    code = ("import sys, avalanche_rnf as a; assert 'avalanche' not in sys.modules and 'torch' not in sys.modules; "
            "assert sorted(a.__all__) == sorted(a._EXPORTS); [getattr(a, n) for n in a.__all__]; "
            "assert 'avalanche' in sys.modules; print(sorted(set(dir(a)) & set(a.__all__)) == sorted(a.__all__))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
