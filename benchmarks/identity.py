"""Bit-identity check: RNF's results must not change under a refactoring.

``record`` runs RNF on the check's streams with ``rnf-bench`` and writes every result that does not
depend on timing (accuracy matrices, frozen fractions, search results, state sizes, task
recognition) to a JSON reference, with the versions of torch, avalanche-lib and zennit it was made
with, and the CPU model. ``check`` runs the same streams again and compares, exactly. Results are
only comparable on the same software and CPU, so elsewhere ``check`` says so and compares nothing
(exit code 0); record a new reference from the commit to compare against on that machine first.

    python benchmarks/identity.py record benchmarks/identity.json   # at the commit before a change
    python benchmarks/identity.py check benchmarks/identity.json    # after it

MNIST streams read the data root from ``RNF_DATA_ROOT`` (or ``--data-root``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

RUNS: dict[str, list[str]] = {
    "split_digits-task": ["--benchmark", "split_digits", "--scenario", "task", "--seeds", "0", "1", "2",
                          "--param", "rnf.max_drop=0.005", "--param", "rnf.lr=0.05", "--param", "rnf.retrain_epochs=0",
                          "--param", "rnf.keep_last=false"],
    "split_mnist-task": ["--benchmark", "split_mnist", "--scenario", "task", "--seeds", "0", "1", "2"],
    "split_mnist-class": ["--benchmark", "split_mnist", "--scenario", "class", "--seeds", "0", "1", "2",
                          "--param", "rnf.retrain_epochs=1", "--param", "rnf.retrain_lr_scale=1.0"],
}
"""The streams checked, as ``rnf-bench`` arguments (RNF at the values ``tuned.json`` gives each; on
split_digits and split_mnist class at the values the reference was recorded with, a tolerance search
included)."""
KEYS = ("matrix", "matrix_avalanche", "stream_accuracy_avalanche", "frozen_fractions", "state_bytes",
        "task_recognition", "recognition_bytes", "status")


def software() -> dict[str, str]:
    """The versions the results depend on, and the CPU and its thread count: other CPUs' kernels
    round differently, so the same commit gives other bits there."""
    from avalanche_rnf.bench.machine import machine_facts

    facts = machine_facts("cpu")
    return {**{name: version(name) for name in ("torch", "avalanche-lib", "zennit")},
            "cpu": str(facts.get("cpu", "?")), "torch_threads": str(facts["torch_threads"])}


def fingerprint(results: dict[str, Any]) -> dict[str, Any]:
    """Per seed, the timing-free results of the RNF runs in a ``results.json``."""
    out = {}
    for run in results["runs"]:
        entry = {key: run.get(key) for key in KEYS}
        entry["rnf_search"] = [{k: v for k, v in s.items() if k != "seconds"} for s in run.get("rnf_search") or []]
        out[str(run["seed"])] = entry
    return out


def measure(data_root: str | None) -> dict[str, Any]:
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in RUNS.items():
            out = Path(tmp) / name
            command = [sys.executable, "-m", "avalanche_rnf.bench", *args, "--strategies", "rnf", "--loggers", "text",
                       "--no-plots", "--out", str(out)]
            if data_root:
                command += ["--data-root", data_root]
            print(f"{name}: rnf-bench {' '.join(command[3:-2])}", flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            found[name] = fingerprint(json.loads((out / "results.json").read_text()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["record", "check"])
    parser.add_argument("reference", type=Path)
    parser.add_argument("--data-root", default=None, help="MNIST data root (default: $RNF_DATA_ROOT)")
    args = parser.parse_args(argv)
    if args.action == "record":
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        reference = {"commit": commit, "software": software(), "runs": measure(args.data_root)}
        args.reference.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.reference}")
        return 0
    reference = json.loads(args.reference.read_text())
    if reference["software"] != software():
        print(f"identity check not comparable: reference made with {reference['software']}, this is {software()}; "
              f"record a reference at commit {reference['commit'][:10]} on this machine to compare")
        return 0
    found = measure(args.data_root)
    differ = [(name, seed, key) for name, runs in reference["runs"].items() for seed, entry in runs.items()
              for key in entry if found.get(name, {}).get(seed, {}).get(key) != entry[key]]
    for name, seed, key in differ:
        print(f"DIFFERS: {name} seed {seed}: {key}")
    n = sum(len(runs) for runs in reference["runs"].values())
    print(f"identity check: {n - len({(a, b) for a, b, _ in differ})} of {n} runs identical to commit "
          f"{reference['commit'][:10]}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
