"""Hyperparameter sweeps on Ray Tune: each strategy's key parameters, scored on a validation split.

``rnf-bench --sweep CONFIG`` takes ``default`` (the grids of :data:`avalanche_rnf.bench.hparams.SEARCH`,
the values ``--search`` tries) or a JSON file::

    {"samples": 4, "seed": 0,
     "strategies": {"ewc": {"ewc_lambda": [1, 10, 100, 1000, 10000]},
                    "si": {"si_lambda": {"loguniform": [0.1, 1000]}},
                    "rnf": {"max_drop": {"uniform": [0.001, 0.02]}, "reference_size": [100, 300]}}}

A list is a grid: every value is tried. An object names a Ray Tune distribution and its arguments
(``uniform``, ``loguniform``, ``randint``, ``lograndint``, ...; ``choice`` takes the options),
drawn ``samples`` times per grid point from the sweep's ``seed``, so a rerun with ``--resume``
draws the same points and skips the finished ones. Every point runs once per seed on the
validation split (10 % of the training data; the test stream is never used); its score is the
mean validation average accuracy over the seeds. Each run is one Tune trial with the run's
resource request.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ray import cloudpickle as ray_pickle
from ray import tune

from avalanche_rnf.bench.distributed import Handler, Resources, error_reason
from avalanche_rnf.bench.hparams import SEARCH, STRATEGY_DEFAULTS, TUNED_FILE
from avalanche_rnf.bench.jobs import Job, failed_record, run_job
from avalanche_rnf.bench.results import Best, RunRecord, atomic_write, best_points  # noqa: F401  (best_points: part of the sweep API)

DISTRIBUTIONS = ("uniform", "quniform", "loguniform", "qloguniform", "randn", "qrandn", "randint", "qrandint",
                 "lograndint", "qlograndint", "choice")


class SweepConfigError(ValueError):
    """A sweep configuration that cannot be read; the message says what is wrong and where."""


@dataclass(frozen=True)
class SweepSpace:
    """Per strategy, each swept parameter's grid (a list) or distribution (``{"name": [args]}``)."""

    strategies: dict[str, dict[str, Any]]
    samples: int = 1
    seed: int = 0

    def points(self, strategy: str) -> list[dict[str, Any]]:
        """The parameter values ``strategy`` runs with: the grid's product, ``samples`` draws per grid point
        when the space has distributions. The draws depend only on the sweep's seed and the strategy."""
        import numpy as np

        space = self.strategies[strategy]
        grid = {k: v for k, v in space.items() if isinstance(v, list)}
        drawn = {k: _domain(*next(iter(spec.items()))) for k, spec in space.items() if isinstance(spec, dict)}
        rng = np.random.RandomState([self.seed, *strategy.encode()])
        points = []
        for values in itertools.product(*grid.values()):
            for _ in range(self.samples if drawn else 1):
                sampled = {k: _plain(domain.sample(random_state=rng)) for k, domain in drawn.items()}
                points.append({**dict(zip(grid, values)), **sampled})
        return points

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "seed": self.seed, "strategies": self.strategies}


def load_space(config: str) -> SweepSpace:
    """``default`` (the :data:`~avalanche_rnf.bench.hparams.SEARCH` grids) or the path of a JSON sweep file."""
    if config == "default":
        return SweepSpace({s: {key: list(values)} for s, (key, values) in SEARCH.items()})
    path = Path(config).expanduser()
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise SweepConfigError(f"cannot read sweep file {path}: {error.strerror}; pass 'default' or a JSON "
                               f"file (format in `python -m pydoc avalanche_rnf.bench.sweep`)") from None
    except json.JSONDecodeError as error:
        raise SweepConfigError(f"{path} is not valid JSON: {error}") from None
    return parse_space(data, where=str(path))


def parse_space(data: Any, where: str = "sweep") -> SweepSpace:
    """Check a sweep configuration and return it as a :class:`SweepSpace`."""
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), dict) or not data["strategies"]:
        raise SweepConfigError(f"{where}: expected an object with a non-empty 'strategies' object")
    unknown = set(data) - {"strategies", "samples", "seed"}
    if unknown:
        raise SweepConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    samples, seed = data.get("samples", 1), data.get("seed", 0)
    if not isinstance(samples, int) or samples < 1 or not isinstance(seed, int):
        raise SweepConfigError(f"{where}: 'samples' must be a positive integer and 'seed' an integer")
    for strategy, space in data["strategies"].items():
        if strategy not in STRATEGY_DEFAULTS:
            raise SweepConfigError(f"{where}: unknown strategy {strategy!r}; "
                                   f"choose from {', '.join(STRATEGY_DEFAULTS)}")
        if not isinstance(space, dict):
            raise SweepConfigError(f"{where}: {strategy}: expected an object of parameters")
        for key, spec in space.items():
            if isinstance(spec, list) and spec:
                continue
            if (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS
                    and isinstance(next(iter(spec.values())), list)):
                continue
            raise SweepConfigError(
                f"{where}: {strategy}.{key}: expected a non-empty list of values or one distribution such as "
                f'{{"loguniform": [0.1, 1000]}} (one of {", ".join(DISTRIBUTIONS)})')
    return SweepSpace(data["strategies"], samples, seed)


def run_sweep(jobs: Iterable[Job], resources: Resources, handle: Handler, storage: Path,
              job_fn: Callable[[Job, str], RunRecord] | None = None) -> None:
    """Run every job as a Ray Tune trial; hand each record to ``handle`` as its trial ends.

    A trial whose worker died comes back as a failed record. Tune's own experiment files (trial
    results, parameters, errors) go under ``storage``. ``job_fn`` (default :func:`~avalanche_rnf.bench.jobs.run_job`)
    does one run.
    """
    jobs = list(jobs)
    if not jobs:
        return
    trials = [{"index": i, "strategy": job.spec.strategy, "seed": job.spec.seed, "name": job.name}
              for i, job in enumerate(jobs)]
    trainable = tune.with_resources(tune.with_parameters(_trial, jobs=jobs, resources=resources,
                                                         job_fn=job_fn or run_job),
                                    {"cpu": resources.cpus, "gpu": resources.gpus})
    tuner = tune.Tuner(
        trainable,
        param_space={"run": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=lambda t: t.config["run"]["name"]),
        run_config=tune.RunConfig(
            name=time.strftime("sweep-%Y%m%d-%H%M%S"), storage_path=str(Path(storage).resolve()), verbose=0,
            callbacks=[_Collect(jobs, handle, resources.device)],
            failure_config=tune.FailureConfig(max_failures=resources.retries)),
    )
    tuner.fit()


def _trial(config: dict[str, Any], jobs: list[Job], resources: Resources,
           job_fn: Callable[[Job, str], RunRecord]) -> None:
    import torch

    torch.set_num_threads(max(1, int(resources.cpus)))
    record = job_fn(jobs[config["run"]["index"]], resources.device)
    score = record.average_accuracy if record.status == "ok" else math.nan
    tune.report({"validation_accuracy": score, "record": json.dumps(record.to_json())})


class _Collect(tune.Callback):
    """On the driver: turns each finished or failed trial into a record for the run directory."""

    def __init__(self, jobs: list[Job], handle: Handler, device: str):
        self.jobs, self.handle, self.device = jobs, handle, device

    def __getstate__(self) -> dict[str, Any]:  # Tune saves its callbacks; the handler is this process's own
        return {"jobs": self.jobs, "handle": None, "device": self.device}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.handle(self.jobs[trial.config["run"]["index"]], RunRecord.from_json(json.loads(result["record"])))

    def on_trial_error(self, iteration, trials, trial, **info):
        job = self.jobs[trial.config["run"]["index"]]
        self.handle(job, failed_record(job, f"trial failed: {_trial_error(trial)}", self.device))


def _trial_error(trial) -> str:
    """The type and first line of a failed trial's error, from the file Tune has just written for it."""
    try:
        with open(trial.pickled_error_file, "rb") as f:
            return error_reason(ray_pickle.load(f))
    except (OSError, TypeError, EOFError):  # no such file: Tune recorded no exception object
        return "no error recorded"


def write_tuned(best: dict[str, Best], benchmark: str, scenario: str, path: Path = TUNED_FILE) -> None:
    """Put the best points into the hyperparameter table file (``avalanche_rnf/bench/tuned.json`` by default)."""
    path = Path(path)
    table = json.loads(path.read_text()) if path.is_file() else {}
    entry = table.setdefault(f"{benchmark}/{scenario}", {})
    for strategy, b in sorted(best.items()):
        entry.setdefault(strategy, {}).update(b.params)
    atomic_write(path, json.dumps(table, indent=2, sort_keys=True) + "\n")


def _domain(name: str, args: list) -> Any:
    """The Tune domain ``name`` with ``args`` (``choice`` takes its list of options as they are)."""
    return tune.choice(args) if name == "choice" else getattr(tune, name)(*args)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (results are JSON)."""
    return value.item() if hasattr(value, "item") else value
