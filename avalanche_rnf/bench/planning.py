"""What an ``rnf-bench`` invocation runs: its plan (strategies x seeds, or the points of a search or sweep),
the plan's runs as jobs, and the checks of the options that shape them (resources, loggers)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avalanche_rnf.bench.arguments import LOGGERS, UsageError, names, parse_params
from avalanche_rnf.bench.data import ENV_VAR
from avalanche_rnf.bench.hparams import (
    PRESETS,
    SEARCH,
    STRATEGIES,
    TRAINING,
    Training,
    strategy_params,
    with_overrides,
)
from avalanche_rnf.bench.online import ONLINE_PARAMS, ONLINE_STRATEGIES

if TYPE_CHECKING:
    from avalanche_rnf.bench.distributed import Resources
    from avalanche_rnf.bench.jobs import Job, LogSetup
    from avalanche_rnf.bench.runner import RunSpec
    from avalanche_rnf.bench.sweep import SweepSpace

Plan = dict[str, Any]
"""name (the default run directory's), benchmark, scenario, specs (the runs), describe (as results.json
records the plan) and swept (the searched parameters per strategy)."""


def make_plan(args: argparse.Namespace) -> Plan:
    """The runs to do: strategies x seeds (or, with --search, strategies x key-parameter values)."""
    from avalanche_rnf.bench.streams import BENCHMARKS

    overrides = parse_params(args.param)
    if args.search and args.sweep:
        raise ValueError("--search and --sweep are two ways to search: choose one")
    if args.sweep and args.preset:
        raise ValueError("--sweep searches the harness's own configurations, not a --preset")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be a positive learning rate, got {args.lr}")
    width, hidden_size = _size(args, "width"), _size(args, "hidden_size")
    space = None
    if args.preset:
        preset = PRESETS[args.preset]
        if width is not None or hidden_size is not None:
            raise ValueError(f"--preset {args.preset} fixes its network: drop --width and --hidden-size")
        benchmark, scenario = preset.benchmark, preset.scenario
        strategies = names(args.strategies) or [preset.strategy]
        training = with_overrides(preset.training, epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, reset_optimizer=args.reset_optimizer)
        params = {s: {**strategy_params(s, benchmark, scenario), **(preset.params if s == preset.strategy else {})}
                  for s in strategies}
        name = f"preset-{args.preset}"
    else:
        benchmark = args.benchmark
        scenario = args.scenario or BENCHMARKS[benchmark].default_scenario
        space = _sweep_space(args)
        strategies = (names(args.strategies)
                      or (list(space.strategies) if space and args.sweep != "default" else list(STRATEGIES)))
        model = getattr(args, "model", None) or ""
        training = with_overrides(TRAINING[benchmark], epochs=args.epochs, batch_size=args.batch_size,
                                  lr=args.lr, reset_optimizer=args.reset_optimizer, hidden_size=hidden_size,
                                  **({"slim_width": width} if model == "slim_resnet18" else {"width": width}))
        if model:
            if BENCHMARKS[benchmark].family != "image":
                raise ValueError(f"--model {model} trains on RGB images (split_cifar10, imagefolder), not on "
                                 f"{benchmark}")
            training = with_overrides(training, model=model)
        if width is not None and (BENCHMARKS[benchmark].family != "image" or model not in ("", "slim_resnet18")):
            raise ValueError(f"--width sets the small CNN's or SlimResNet18's channels; {benchmark}"
                             + (f" with --model {model}" if model else "") + " trains neither")
        if args.online is not None:
            if not args.online > 0:
                raise ValueError(f"--online needs a positive sub-experience size, got {args.online}")
            training = with_overrides(training, online=args.online, epochs=1)
            strategies = names(args.strategies) or list(ONLINE_STRATEGIES)
        params = {s: {**strategy_params(s, benchmark, scenario), **(ONLINE_PARAMS.get(s, {}) if args.online else {})}
                  for s in strategies}
        prefix = "search-" if args.search else "sweep-" if args.sweep else ""
        name = (f"{prefix}{benchmark}-{scenario}" + (f"-{training.model}" if training.model else "")
                + (f"-width{training.slim_width}" if training.slim_width else "")
                + (f"-online{args.online}" if args.online else ""))
    infer_tasks = bool(getattr(args, "infer_tasks", False))
    if infer_tasks:
        if scenario != "task":
            raise ValueError(f"--infer-tasks replaces the task labels of a task-incremental stream at evaluation; "
                             f"the {scenario} scenario has none to train with: use --scenario task")
        name += "-inferred"
    # --lr, or a preset's optimizer, sets every strategy's learning rate: the table's per-strategy ones are dropped
    if args.lr is not None or args.preset:
        for values in params.values():
            values.pop("lr", None)
    for strategy, values in overrides.items():
        if strategy not in params:
            raise ValueError(f"--param for {strategy!r}, which is not among the strategies run")
        params[strategy].update(values)
    specs: list[RunSpec] = []
    swept: dict[str, list[str]] = {}
    if args.search:
        for strategy in strategies:
            key, grid = SEARCH.get(strategy, (None, (None,)))
            swept[strategy] = [key] if key else []
            for value in grid:
                p = dict(params[strategy], **({key: value} if key else {}))
                specs.append(_spec(strategy, p, training, args.seeds[0], validation=0.1))
    elif space is not None:  # --sweep
        for strategy in strategies:  # one run at the table's values where the sweep has no space (a reference)
            swept[strategy] = list(space.strategies.get(strategy, ()))
            for point in space.points(strategy) if swept[strategy] else [{}]:
                specs += [_spec(strategy, {**params[strategy], **point}, training, seed, validation=0.1)
                          for seed in args.seeds]
    else:
        specs = [_spec(s, params[s], training, seed) for seed in args.seeds for s in strategies]
    if infer_tasks:
        specs = [replace(spec, infer_tasks=True) for spec in specs]
    describe = {"benchmark": benchmark, "scenario": scenario, "training": training.as_dict(), "params": params,
                "seeds": args.seeds, "preset": args.preset, "search": args.search or bool(args.sweep),
                **({"sweep": space.as_dict()} if space is not None else {}),
                **({"infer_tasks": True} if infer_tasks else {})}
    return {"name": name, "benchmark": benchmark, "scenario": scenario, "specs": specs, "describe": describe,
            "swept": swept}


def _size(args: argparse.Namespace, name: str) -> int | None:
    """``--width`` or ``--hidden-size``: a positive count, or None where not given."""
    value = getattr(args, name, None)
    if value is not None and value < 1:
        raise ValueError(f"--{name.replace('_', '-')} must be a positive number of units, got {value}")
    return value


def _spec(strategy: str, params: dict[str, Any], training: Training, seed: int,
          validation: float = 0.0) -> RunSpec:
    """One run; a strategy's own learning rate (``lr`` among its parameters: from the hyperparameter table,
    a sweep's point or ``--param STRATEGY.lr=...``) replaces the benchmark's. It stays among the parameters,
    where results and sweeps read it; the strategy itself ignores it."""
    from avalanche_rnf.bench.runner import RunSpec

    lr = params.get("lr")
    if lr is not None and not float(lr) > 0:
        raise ValueError(f"{strategy}'s lr must be a positive learning rate, got {lr}")
    return RunSpec(strategy, dict(params), with_overrides(training, lr=lr), seed, validation=validation)


def _sweep_space(args: argparse.Namespace) -> SweepSpace | None:
    if not args.sweep:
        return None
    try:
        from avalanche_rnf.bench.sweep import load_space
    except ImportError:
        raise UsageError("--sweep needs Ray Tune: pip install 'avalanche-rnf[ray]'") from None
    return load_space(args.sweep)


def plan_jobs(args: argparse.Namespace, plan: Plan, logs: LogSetup | None = None) -> list[Job]:
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


def check_resources(args: argparse.Namespace) -> Resources:
    """What each run asks Ray for (``--cpus-per-run``, ``--gpus-per-run``, ``--retries``), checked against
    the other options."""
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


def log_setup(args: argparse.Namespace, out: Path, distributed: bool) -> LogSetup:
    """The Avalanche loggers each run writes (``--loggers``, ``--wandb``), into ``<out>/logs/<run>/``."""
    from avalanche_rnf.bench.jobs import LogSetup

    chosen = tuple(dict.fromkeys(names(args.loggers)))
    unknown = set(chosen) - set(LOGGERS)
    if unknown:
        raise UsageError(f"unknown logger(s) {', '.join(sorted(unknown))}; choose from {', '.join(LOGGERS)}")
    if distributed:  # progress bars of parallel runs would interleave on one console
        chosen = tuple(name for name in chosen if name != "interactive")
    return LogSetup(str(out.resolve()), chosen, args.wandb)  # absolute: Ray workers run in other directories
