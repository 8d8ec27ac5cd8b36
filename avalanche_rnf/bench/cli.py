"""``rnf-bench``: RNF against Avalanche's baselines on continual-learning streams.

Every strategy trains the same model with the same optimizer, batch size and epochs; the
accuracy on every experience is measured after each training step. Results go to the run
directory after each finished run (results.json, results.csv, summary.md, plots/, logs/).

The console shows a progress bar over the runs (and, on a terminal, one over a long run's
experiences), then the summary table. Avalanche's metric logs go to ``logs/<run>/log.txt``
(``--loggers interactive`` prints them instead); warnings of the dependencies go to
``logs/rnf-bench.log``, RNF's own warnings are also printed, once each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from avalanche_rnf.bench.data import ENV_VAR, DataNotFoundError
from avalanche_rnf.bench.hparams import (
    PRESETS,
    SEARCH,
    STRATEGIES,
    TRAINING,
    TUNED_FILE,
    strategy_params,
    with_overrides,
)
from avalanche_rnf.bench.streams import BENCHMARKS, SCENARIOS

LOGGERS = ("interactive", "text", "csv", "tensorboard")
DEFAULT_LOGGERS = ("text", "csv", "tensorboard")  # interactive floods the console: it is there on request
LOG_FILE = "logs/rnf-bench.log"  # in the run directory: warnings and the runs' start and end
STEP_BAR_DELAY = 5.0  # seconds a run takes before its bar over experiences appears
PATH_OPTIONS = ("--out", "--data-root", "--sweep", "--write-tuned")  # recorded relative (portable_command)

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnf-bench", description=__doc__.split("\n\n")[0],
        epilog="Example: rnf-bench --benchmark split_mnist --scenario task --seeds 0 1 2 --data-root ~/data",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--benchmark", default="split_digits", choices=list(BENCHMARKS),
                   help="stream: " + "; ".join(f"{b.name}: {b.description}" for b in BENCHMARKS.values()))
    p.add_argument("--scenario", choices=SCENARIOS,
                   help="task (task labels, multi-head model), class (no labels, one head over all classes) "
                        "or domain (no labels, one head shared by all experiences); default: the benchmark's own "
                        "(task for the split benchmarks, domain for permuted_mnist, class for imagefolder)")
    p.add_argument("--strategies",
                   help="comma-separated strategies: " + ", ".join(STRATEGIES)
                        + "; si_upstream is Avalanche's SI without the CPU fix (default: all; with --sweep: the "
                          "sweep's)")
    p.add_argument("--epochs", type=int, help="epochs per experience, for every strategy (default: the table's)")
    p.add_argument("--batch-size", type=int, help="training mini-batch size (default: the table's)")
    p.add_argument("--lr", type=float, help="learning rate, for every strategy (default: the table's)")
    p.add_argument("--reset-optimizer", action=argparse.BooleanOptionalAction, default=None,
                   help="clear the optimizer's state (Adam's moments, SGD's momentum) before each experience, "
                        "as Avalanche did before 0.4 (default: kept, as Avalanche 0.6 does; the presets clear it)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds (class order, permutations, initialisation); several give mean ± std")
    p.add_argument("--experiences", type=int, help="number of experiences (default: the benchmark's)")
    p.add_argument("--image-size", type=int, default=32, help="imagefolder: images are resized to this square size")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                   help="override a strategy parameter, e.g. ewc.ewc_lambda=10 (repeatable)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="reproduce a published continual-learning-baselines result with its configuration "
                        "(with --strategies: run those strategies in the preset's setting; the preset's "
                        "parameters go to its own strategy)")
    p.add_argument("--search", action="store_true",
                   help="search each strategy's key parameter on a validation split (10%% of the training data; "
                        "the test stream is not used) and report the best value")
    p.add_argument("--sweep", metavar="CONFIG",
                   help="hyperparameter sweep on Ray Tune, scored on the validation split like --search: 'default' "
                        "(the --search grids) or a JSON file of grids and distributions per strategy "
                        "(see benchmarks/README.md); prints the best configuration per strategy")
    p.add_argument("--write-tuned", nargs="?", const=str(TUNED_FILE), metavar="FILE",
                   help="with --sweep: write each strategy's best values into the hyperparameter table "
                        f"(default file: {TUNED_FILE.name} in the benchmarks package)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each run as a Ray task: on this machine's cores (no ADDRESS) or on the cluster at "
                        "ADDRESS ('auto' when this node joined one with `ray start`, or ray://HEAD:10001); "
                        "results land in the same files; the interactive logger is left out")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="with --ray/--sweep: CPUs each run asks for")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="with --ray/--sweep: GPUs each run asks for (fractions share a GPU); > 0 runs on CUDA")
    p.add_argument("--retries", type=int, default=0,
                   help="with --ray/--sweep: how often Ray restarts a run whose worker died before it is "
                        "reported failed (--resume reruns failed runs)")
    p.add_argument("--data-root", help=f"directory holding the datasets (default: ${ENV_VAR})")
    p.add_argument("--out", help="run directory (default: runs/<benchmark>-<scenario>)")
    p.add_argument("--resume", action="store_true", help="keep finished runs found in the run directory, run the rest")
    p.add_argument("--rerun", default="", metavar="STRATEGIES",
                   help="with --resume: discard the stored runs of these comma-separated strategies first, so "
                        "they run again (after their code changed; otherwise a run with the same configuration "
                        "counts as finished); with --search/--sweep only the points this invocation runs, "
                        "so other sweeps' points in the directory stay")
    p.add_argument("--wandb", metavar="PROJECT",
                   help="log to Weights & Biases project PROJECT (online when logged in, offline otherwise)")
    p.add_argument("--loggers", default=",".join(DEFAULT_LOGGERS),
                   help="comma-separated Avalanche loggers: interactive (Avalanche's progress bars and metrics "
                        "on the console), text (the same into log.txt), csv, tensorboard; files go to "
                        "<out>/logs/<run>/")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    with WarningLog() as log:
        try:
            return _main(args, argv, log)
        except (DataNotFoundError, UsageError) as error:
            print(f"rnf-bench: {error}", file=sys.stderr)
            return 2


class UsageError(ValueError):
    """A bad combination of options; reported without a traceback."""


def _main(args: argparse.Namespace, argv: list[str], log: WarningLog) -> int:
    from tqdm import tqdm

    from avalanche_rnf.bench.jobs import failed_record, run_job
    from avalanche_rnf.bench.results import ResultStore
    from avalanche_rnf.bench.runner import default_device

    try:
        plan = _plan(args)
        resources = _resources(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    distributed = bool(args.ray or args.sweep)
    out = Path(args.out or Path("runs") / plan["name"])
    device = resources.device if distributed else default_device(args.device)
    command, command_dir = portable_command(argv, out)
    meta = {"command": command, "command_dir": command_dir, "machine": machine_facts(device),
            "plan": plan["describe"]}
    data_root = _portable_data_root(args, out)
    if data_root:
        meta["data_root"] = data_root
    logs = _log_setup(args, out, distributed)
    store = ResultStore(out, meta=meta, resume=args.resume)
    log.attach(out / LOG_FILE)
    log.write(command)
    search = bool(args.search or args.sweep)
    all_jobs = plan_jobs(args, plan, logs)
    planned = [job.key for job in all_jobs]
    # a search directory collects many configurations: drop only the points this invocation runs
    store.discard(set(_names(args.rerun)),
                  keys=set(planned) if search else None)
    jobs = []
    for job in all_jobs:
        if store.done(job.key):
            print(f"{job.label}: finished earlier, skipped (--resume)")
        else:
            jobs.append(job)
    failed = []
    terminal = sys.stderr.isatty()
    bar = tqdm(total=len(jobs), desc="runs", unit="run", position=0, disable=not jobs, file=sys.stderr,
               dynamic_ncols=True)

    def handle(job, record) -> None:
        store.add(record)
        log.write(f"{job.label}: {_outcome(record)}")
        bar.update()
        if record.status == "failed":
            failed.append(record)
            bar.write(f"{job.label} FAILED: {record.reason}")
        elif record.status == "skipped":
            bar.write(f"{record.strategy}: skipped ({record.reason})")

    if distributed:
        _run_distributed(args, jobs, resources, handle, out, store.meta)
        for job in jobs:  # a run Ray or Tune ended without a result (interrupted, stopped) counts as failed
            if job.key not in store.records:
                handle(job, failed_record(job, "no result came back from Ray", device))
        store.reorder(planned)  # the plan's order, as a sequential run writes it
    else:
        for job in jobs:
            if terminal:  # in a log file the bar shows at the end of each run, so only the count
                bar.set_postfix_str(job.label)
            log.write(f"{job.label}: started")
            steps = StepBar(job.label) if terminal else None
            try:
                record = run_job(job, device, progress=steps)
            finally:
                if steps:
                    steps.close()
            handle(job, record)
    bar.close()
    records = [store.records[k] for k in planned if k in store.records]  # this plan's runs, not older ones
    if not search:  # and the directory's other strategies, so the summary shows the whole comparison
        ran = {spec.strategy for spec in plan["specs"]}
        records += [r for r in store.records.values() if r.strategy not in ran]
    table, plots = write_summary(out, store.meta, records, search=search, plots=not args.no_plots,
                                 order=[s.strategy for s in plan["specs"]])
    if args.wandb and plots:
        _wandb_summary(args, out, plan, plots, table)
    print("\n" + table)
    if args.sweep:
        _report_best(args, plan, records)
    shown = _display_path(out)
    print(f"\nresults: {shown / 'results.json'}, {shown / 'results.csv'}, {shown / 'summary.md'}"
          + (f", plots in {shown / 'plots'}" if plots else "") + f"; logs in {shown / 'logs'}")
    for record in failed:
        print(f"failed: {record.strategy} seed {record.seed}: {record.reason} (rerun with --resume)", file=sys.stderr)
    return 1 if failed else 0


class StepBar:
    """A run's progress bar over its training steps (experiences), shown only once the run has taken
    :data:`STEP_BAR_DELAY` seconds, below the bar over runs and cleared when the run ends."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit="exp", position=1, leave=False, file=sys.stderr,
                            delay=STEP_BAR_DELAY, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class WarningLog:
    """Warnings while the CLI runs go to the run directory's log (:data:`LOG_FILE`), each once, not to the
    console; RNF's own warnings (``RNF...``, or raised in the library) are also printed, once each.

    Only inside the ``with`` block: it restores the warning machinery as it found it. Warnings before
    the run directory is known are kept and written when :meth:`attach` names the file. Filters are left
    as they are (warnings ignored by them stay ignored); Avalanche's deprecation notices, which force
    themselves past the filters, land in the log too.
    """

    def __init__(self):
        self.file = None
        self.pending: list[str] = []
        self.logged: set[tuple] = set()
        self.printed: set[str] = set()
        self._catch = warnings.catch_warnings()

    def __enter__(self) -> WarningLog:
        self._catch.__enter__()
        warnings.showwarning = self.show
        return self

    def __exit__(self, *exc) -> None:
        self._catch.__exit__(*exc)
        if self.file is not None:
            self.file.close()
            self.file = None

    def attach(self, path: Path) -> None:
        """Write to ``path`` (appending: a resumed run keeps the earlier invocations' lines) from now on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a")
        for line in self.pending:
            self.file.write(line)
        self.file.flush()
        self.pending = []

    def write(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n"
        if self.file is None:
            self.pending.append(line)
        else:
            self.file.write(line)
            self.file.flush()

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        key = (category, text, filename, lineno)
        if key not in self.logged:
            self.logged.add(key)
            self.write(warnings.formatwarning(message, category, filename, lineno, line).rstrip())
        if _is_rnf_warning(text, filename) and text not in self.printed:
            self.printed.add(text)
            from tqdm import tqdm

            tqdm.write(f"rnf-bench: warning: {text}", file=sys.stderr)


_LIBRARY = Path(__file__).resolve().parents[1]


def _is_rnf_warning(text: str, filename: str) -> bool:
    """A warning of RNF itself: its message starts with 'RNF', or the library (not the harness) raised it."""
    if text.startswith("RNF"):
        return True
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return path.is_relative_to(_LIBRARY) and not path.is_relative_to(_LIBRARY / "bench")


def _outcome(record) -> str:
    if record.status != "ok":
        return f"{record.status}: {record.reason}"
    return (f"ok, average accuracy {record.average_accuracy:.4f}, "
            f"{sum(record.train_seconds) + record.eval_seconds:.1f} s")


def portable_command(argv: list[str], out: Path, cwd: Path | None = None) -> tuple[str, str]:
    """The command as results.json and summary.md record it, and where to run it from, relative to the run
    directory ``out`` (``command_dir``).

    When the run directory is inside the current directory (``rnf-bench --out benchmarks/results/x`` from the
    repository root), the command is recorded as typed, run from there (``command_dir`` ``../../..``); paths
    given as absolute ones become relative to it. Otherwise (a temporary directory, say) the command is
    recorded to run in the run directory itself (``--out .``, ``command_dir`` ``.``). A data root outside
    that directory is recorded as ``"$RNF_DATA_ROOT"``; another file outside it (a sweep configuration, whose
    grids the plan records anyway) by its name. No machine's absolute path gets in.
    """
    cwd = (cwd or Path.cwd()).resolve()
    run_dir = (cwd / out).resolve()
    base = _command_base(out, cwd)
    options = [o for o in build_parser()._option_string_actions if o.startswith("--")]
    parts: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, eq, value = token.partition("=")
        option = _long_option(name, options) if token.startswith("--") else None
        if option not in PATH_OPTIONS:
            parts.append(shlex.quote(token))
            continue
        if not eq:
            if i >= len(argv) or (option == "--write-tuned" and argv[i].startswith("-")):
                parts.append(shlex.quote(token))  # --write-tuned without a file: the default one
                continue
            value = argv[i]
            i += 1
        relative = value if option == "--sweep" and value == "default" else _relative_path(value, cwd, base)
        if relative is not None:
            shown = shlex.quote(relative)
        elif option == "--data-root":
            shown = f'"${ENV_VAR}"'
        else:
            shown = shlex.quote(Path(value).name)
        parts.append(f"{option}={shown}" if eq else f"{shlex.quote(name)} {shown}")
    command = " ".join(["rnf-bench", *parts])
    return command, Path(os.path.relpath(base, run_dir)).as_posix()


def _long_option(name: str, options: list[str]) -> str | None:
    """The option ``name`` stands for, allowing argparse's unambiguous abbreviations."""
    if name in options:
        return name
    matches = [o for o in options if o.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def _command_base(out: Path, cwd: Path) -> Path:
    """Where a recorded command runs: the current directory if it holds the run directory, else the latter."""
    run_dir = (cwd / out).resolve()
    return cwd if run_dir.is_relative_to(cwd) else run_dir


def _relative_path(value: str, cwd: Path, base: Path) -> str | None:
    """``value`` (a path given on the command line in ``cwd``) relative to ``base``; None if outside it."""
    path = Path(value)
    if base == cwd and not path.is_absolute() and not value.startswith("~"):
        return value  # as typed, relative to where the command runs
    full = (cwd / path.expanduser()).resolve()
    return Path(os.path.relpath(full, base)).as_posix() if full.is_relative_to(base) else None


def _portable_data_root(args: argparse.Namespace, out: Path) -> str | None:
    """Where the data came from, as results.json records it: relative to where the command runs
    (see :func:`portable_command`), or ``$RNF_DATA_ROOT``; None when no data root is set."""
    if args.data_root:
        cwd = Path.cwd().resolve()
        return _relative_path(args.data_root, cwd, _command_base(out, cwd)) or f"${ENV_VAR}"
    return f"${ENV_VAR}" if os.environ.get(ENV_VAR) else None


def _display_path(path: Path) -> Path:
    """``path`` relative to the current directory when inside it (shorter on the console), else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def plan_jobs(args: argparse.Namespace, plan: dict[str, Any], logs=None) -> list:
    """The plan's runs as :class:`~avalanche_rnf.bench.jobs.Job` objects, each with its key in the result store."""
    from avalanche_rnf.bench.jobs import Job, StreamSpec, load_stream, run_name
    from avalanche_rnf.bench.results import run_key

    root = args.data_root or os.environ.get(ENV_VAR)
    root = str(Path(root).expanduser().resolve()) if root else None
    jobs = []
    for spec in plan["specs"]:
        stream_spec = StreamSpec(plan["benchmark"], plan["scenario"], spec.seed, root, args.experiences,
                                 args.image_size)
        try:
            stream = load_stream(stream_spec)
        except ValueError as error:
            raise UsageError(str(error)) from None
        jobs.append(Job(spec, stream_spec, run_key(spec.strategy, spec.seed, spec.config(stream)),
                        run_name(spec, plan["swept"].get(spec.strategy)), logs))
    return jobs


def _resources(args: argparse.Namespace):
    from avalanche_rnf.bench.distributed import Resources

    if args.cpus_per_run <= 0 or args.gpus_per_run < 0 or args.retries < 0:
        raise ValueError("--cpus-per-run must be > 0, --gpus-per-run and --retries >= 0")
    resources = Resources(args.cpus_per_run, args.gpus_per_run, args.retries)
    if (args.ray or args.sweep) and args.device not in ("auto", resources.device):
        raise ValueError(f"--device {args.device} with Ray: runs use the device of their resource request "
                         f"({resources.device}); ask for GPUs with --gpus-per-run")
    if args.write_tuned and not args.sweep:
        raise ValueError("--write-tuned writes a sweep's best values: use it with --sweep")
    return resources


def _log_setup(args: argparse.Namespace, out: Path, distributed: bool):
    from avalanche_rnf.bench.jobs import LogSetup

    chosen = tuple(dict.fromkeys(_names(args.loggers)))
    unknown = set(chosen) - set(LOGGERS)
    if unknown:
        raise UsageError(f"unknown logger(s) {', '.join(sorted(unknown))}; choose from {', '.join(LOGGERS)}")
    if distributed:  # progress bars of parallel runs would interleave on one console
        chosen = tuple(name for name in chosen if name != "interactive")
    return LogSetup(str(out.resolve()), chosen, args.wandb)  # absolute: Ray workers run in other directories


def _run_distributed(args: argparse.Namespace, jobs: list, resources, handle, out: Path, meta: dict) -> None:
    try:
        import ray
    except ImportError:
        raise UsageError("--ray and --sweep need Ray: pip install 'avalanche-rnf[ray]'") from None
    from avalanche_rnf.bench import distributed

    address = None if args.ray in (None, "local") else args.ray
    started = distributed.connect(address)
    meta["ray"] = {"address": address or "local", "version": ray.__version__, "resources_per_run": vars(resources),
                   "cluster_resources": {k: v for k, v in ray.cluster_resources().items() if "node:" not in k}}
    try:
        if args.sweep:
            from avalanche_rnf.bench.sweep import run_sweep

            run_sweep(jobs, resources, handle, out / "tune")
        else:
            distributed.run_on_ray(jobs, resources, handle)
    finally:
        if started:
            ray.shutdown()


def _report_best(args: argparse.Namespace, plan: dict[str, Any], records: list) -> None:
    from avalanche_rnf.bench.results import best_points
    from avalanche_rnf.bench.sweep import write_tuned

    best = best_points(records, plan["swept"])
    print("\nbest configuration per strategy (mean validation average accuracy over seeds):")
    for strategy, b in best.items():
        values = ", ".join(f"{k}={v}" for k, v in b.params.items()) or "(no parameters swept)"
        print(f"  {strategy}: {values}  ({b.score:.4f}, {b.seeds} seed{'s' if b.seeds > 1 else ''})")
    if args.write_tuned:
        swept = {s: b for s, b in best.items() if b.params}
        write_tuned(swept, plan["benchmark"], plan["scenario"], Path(args.write_tuned))
        print(f"wrote the best values of {', '.join(swept) or 'no strategy'} for "
              f"{plan['benchmark']}/{plan['scenario']} into {args.write_tuned} "
              f"(then: python -m avalanche_rnf.bench.report to refresh the README tables)")


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """The runs to do: strategies x seeds (or, with --search, strategies x key-parameter values)."""
    from avalanche_rnf.bench.runner import RunSpec

    overrides = _parse_params(args.param)
    if args.search and args.sweep:
        raise ValueError("--search and --sweep are two ways to search: choose one")
    if args.sweep and args.preset:
        raise ValueError("--sweep searches the harness's own configurations, not a --preset")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be a positive learning rate, got {args.lr}")
    if args.preset:
        preset = PRESETS[args.preset]
        benchmark, scenario = preset.benchmark, preset.scenario
        strategies = _names(args.strategies) or [preset.strategy]
        training = with_overrides(preset.training, epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, reset_optimizer=args.reset_optimizer)
        params = {s: {**strategy_params(s, benchmark, scenario), **(preset.params if s == preset.strategy else {})}
                  for s in strategies}
        name = f"preset-{args.preset}"
    else:
        benchmark = args.benchmark
        scenario = args.scenario or BENCHMARKS[benchmark].default_scenario
        space = _sweep_space(args)
        strategies = (_names(args.strategies)
                      or (list(space.strategies) if space and args.sweep != "default" else list(STRATEGIES)))
        training = with_overrides(TRAINING[benchmark], epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, reset_optimizer=args.reset_optimizer)
        params = {s: strategy_params(s, benchmark, scenario) for s in strategies}
        prefix = "search-" if args.search else "sweep-" if args.sweep else ""
        name = f"{prefix}{benchmark}-{scenario}"
    for strategy, values in overrides.items():
        if strategy not in params:
            raise ValueError(f"--param for {strategy!r}, which is not among the strategies run")
        params[strategy].update(values)
    specs, swept = [], {}
    if args.search:
        for strategy in strategies:
            key, values = SEARCH.get(strategy, (None, (None,)))
            swept[strategy] = [key] if key else []
            for value in values:
                p = dict(params[strategy], **({key: value} if key else {}))
                specs.append(RunSpec(strategy, p, training, args.seeds[0], validation=0.1))
    elif args.sweep:
        for strategy in strategies:  # one run at the table's values where the sweep has no space (a reference)
            swept[strategy] = list(space.strategies.get(strategy, ()))
            for point in space.points(strategy) if swept[strategy] else [{}]:
                specs += [RunSpec(strategy, {**params[strategy], **point}, training, seed, validation=0.1)
                          for seed in args.seeds]
    else:
        specs = [RunSpec(s, params[s], training, seed) for seed in args.seeds for s in strategies]
    describe = {"benchmark": benchmark, "scenario": scenario, "training": training.as_dict(), "params": params,
                "seeds": args.seeds, "preset": args.preset, "search": args.search or bool(args.sweep),
                **({"sweep": space.as_dict()} if args.sweep else {})}
    return {"name": name, "benchmark": benchmark, "scenario": scenario, "specs": specs, "describe": describe,
            "swept": swept}


def _sweep_space(args: argparse.Namespace):
    if not args.sweep:
        return None
    try:
        from avalanche_rnf.bench.sweep import load_space
    except ImportError:
        raise UsageError("--sweep needs Ray Tune: pip install 'avalanche-rnf[ray]'") from None
    return load_space(args.sweep)


def _names(text: str | None) -> list[str]:
    """The names in a comma-separated option (``--strategies``, ``--rerun``, ``--loggers``)."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        try:
            target, value = item.split("=", 1)
            strategy, key = target.split(".", 1)
        except ValueError:
            raise ValueError(f"--param {item!r}: expected STRATEGY.KEY=VALUE, e.g. ewc.ewc_lambda=10") from None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(strategy, {})[key] = parsed
    return out


def write_summary(out: Path, meta: dict[str, Any], records: list, *, search: bool = False, plots: bool = True,
                  order: list[str] | tuple[str, ...] = STRATEGIES) -> tuple[str, list[Path]]:
    """Write ``summary.md`` (and, unless a search, the plots) of a run directory; return the table and plot paths."""
    from avalanche_rnf.bench.plots import plot_all
    from avalanche_rnf.bench.results import atomic_write, summary_table

    plan = meta.get("plan", {})
    title = f"{plan.get('benchmark', '?')} ({plan.get('scenario', '?')}-incremental)"
    table = search_table(records) if search else summary_table(records, order=order)
    resumed = [r["command"] for r in meta.get("resumed", [])]
    commands = "\n".join(f"`{c}`  " for c in [meta.get("command", ""), *resumed])
    where = meta.get("command_dir")
    if where:
        commands += ("\n(run in this directory)" if where == "." else
                     f"\n(run from `{where}`, relative to this directory)")
    atomic_write(out / "summary.md", f"# {title}\n\n{commands}\n\n{table}\n")
    paths = plot_all(records, out / "plots", title) if plots and not search else []
    return table, paths


def _wandb_summary(args, out: Path, plan, plots: list[Path], table: str) -> None:
    from avalanche_rnf.bench.wandb_logger import WandBLogger

    logger = WandBLogger(args.wandb, name="summary", group=out.name, config=plan["describe"], dir=out / "wandb")
    logger.log_images(plots)
    logger.run.log({"summary": logger.wandb.Html(f"<pre>{table}</pre>")})
    logger.close()


def search_table(records) -> str:
    """Markdown table of a search or sweep: validation accuracy per strategy and point of its searched
    parameters (mean ± std over seeds), the best point per strategy marked."""
    from avalanche_rnf.bench.results import best_points
    lines = ["| strategy | parameter | value | seeds | validation average accuracy | best |",
             "|---|---|---|---|---|---|"]
    by_strategy: dict[str, list] = {}
    for r in records:
        by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, runs in by_strategy.items():
        ok = [r for r in runs if r.status == "ok"]
        if not ok:  # not applicable here: one line with the reason, not one per value
            lines.append(f"| {strategy} | – | – | 0 | {runs[0].status}: {runs[0].reason} | |")
            continue
        keys = _searched_keys(strategy, runs)
        points: dict[tuple, list] = {}
        for r in runs:
            points.setdefault(tuple(repr(r.config["params"].get(k)) for k in keys), []).append(r)
        best = best_points(runs, {strategy: keys})[strategy].params
        for rs in points.values():
            scores = [r.average_accuracy for r in rs if r.status == "ok"]
            failed = [r for r in rs if r.status != "ok"]
            acc = _mean_std4(scores) + (f" ({len(failed)} {failed[0].status}: {failed[0].reason})" if failed else "")
            values = ", ".join(_value(rs[0].config["params"].get(k)) for k in keys) or "–"
            point = {k: rs[0].config["params"].get(k) for k in keys}
            mark = "**best**" if point == best and keys else ""
            lines.append(f"| {strategy} | {', '.join(keys) or '–'} | {values} | {len(scores)} | {acc} | {mark} |")
    return "\n".join(lines)


def _mean_std4(values: list[float]) -> str:
    import statistics

    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "–"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _searched_keys(strategy: str, runs) -> list[str]:
    """The parameters a search varied: those whose value differs between runs, else the strategy's key one."""
    names = sorted({k for r in runs for k in r.config["params"]})
    varying = [k for k in names if len({repr(r.config["params"].get(k)) for r in runs}) > 1]
    key = SEARCH.get(strategy, (None,))[0]
    return varying or ([key] if key in names else [])


def machine_facts(device: str) -> dict[str, Any]:
    """What the numbers were measured on."""
    import avalanche
    import torch
    import zennit

    facts = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "python": platform.python_version(),
             "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
             "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
             "avalanche": avalanche.__version__, "zennit": getattr(zennit, "__version__", "?"), "device": device}
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts


if __name__ == "__main__":
    raise SystemExit(main())
