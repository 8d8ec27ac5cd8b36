"""Measure what Ray buys on this machine: the speed-up of ``rnf-bench --ray`` over the sequential run,
and Ray's overhead per run.

1. The same grid (split_digits, every strategy, one seed by default: the README's main job) runs
   as the user runs it, ``rnf-bench ...`` and ``rnf-bench ... --ray``, each a fresh process timed
   from start to exit; the result files must hold the same accuracy matrices. The sequential run
   uses torch's default threads (all cores inside each run), the Ray run one thread per run and
   one run per core; a third timing, the sequential run with one thread
   (``OMP_NUM_THREADS=1``), separates Ray's parallel efficiency from what threading already gave.
2. Per-run overhead: the grid's first runs go through Ray one at a time; for each, the driver's
   round trip (submit to result) minus the time the run took inside the worker. The first run
   also pays for starting the worker process (importing torch and Avalanche): reported apart,
   with the time ``ray.init`` takes.

    python -m avalanche_rnf.bench.scaling --out benchmarks/results/ray-scaling
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from avalanche_rnf.bench.results import atomic_write, load_records


def wall_time(command: list[str], **env: str) -> float:
    """Seconds from starting ``command`` (with ``env`` added to the environment) to its exit; it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
    return time.perf_counter() - start


def same_results(a: Path, b: Path) -> bool:
    """Whether two run directories hold the same runs with the same accuracy matrices."""
    first, second = ({r.key: (r.matrix, r.matrix_avalanche) for r in load_records(d)[1]} for d in (a, b))
    return first == second


def per_run_overhead(grid: list[str], cpus: int, runs: int) -> dict[str, Any]:
    """Ray's overhead per run: round trip minus the run's own time, the grid's first ``runs`` sent one at a time."""
    import ray

    from avalanche_rnf.bench.arguments import build_parser
    from avalanche_rnf.bench.planning import make_plan, plan_jobs

    args = build_parser().parse_args(grid)
    jobs = plan_jobs(args, make_plan(args))[:runs]
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    init_seconds = time.perf_counter() - start
    task = ray.remote(_timed).options(num_cpus=1)
    overheads = []
    try:
        for job in jobs:
            start = time.perf_counter()
            inside = ray.get(task.remote(job))
            overheads.append(time.perf_counter() - start - inside)
    finally:
        ray.shutdown()
    warm = overheads[1:] or [float("nan")]  # a one-run grid has no warm run
    return {"ray_init_seconds": init_seconds, "first_run_overhead_seconds": overheads[0],
            "per_run_overhead_seconds_median": statistics.median(warm), "per_run_overhead_seconds_max": max(warm),
            "overhead_runs": len(jobs)}


def _timed(job) -> float:
    from avalanche_rnf.bench.jobs import run_job

    start = time.perf_counter()
    run_job(job)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for result.json")
    parser.add_argument("--grid", default="--benchmark split_digits",
                        help="rnf-bench options of the grid timed (default: the README's main job)")
    parser.add_argument("--overhead-runs", type=int, default=5, help="runs sent one at a time to time the overhead")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = shlex.split(args.grid) + ["--loggers", "text", "--no-plots"]
    bench = [sys.executable, "-m", "avalanche_rnf.bench"]
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sequential = wall_time([*bench, *grid, "--out", str(tmp / "sequential")])
        one_thread = wall_time([*bench, *grid, "--out", str(tmp / "one-thread")], OMP_NUM_THREADS="1")
        on_ray = wall_time([*bench, *grid, "--out", str(tmp / "ray"), "--ray"])
        identical = all(same_results(tmp / "ray", tmp / other) for other in ("sequential", "one-thread"))
        runs = len(load_records(tmp / "ray")[1])
        overhead = per_run_overhead(grid, cpus, max(2, args.overhead_runs))
    from avalanche_rnf.bench.machine import machine_facts

    args_text = shlex.join(argv if argv is not None else sys.argv[1:])
    result = {"command": "python -m avalanche_rnf.bench.scaling " + args_text,
              "grid": "rnf-bench " + shlex.join(grid), "runs": runs, "workers": cpus,
              "sequential_seconds": sequential, "sequential_one_thread_seconds": one_thread, "ray_seconds": on_ray,
              "speedup": sequential / on_ray, "speedup_over_one_thread": one_thread / on_ray,
              "identical_results": identical, **overhead, "machine": machine_facts("cpu")}
    atomic_write(out / "result.json", json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
