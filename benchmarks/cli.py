"""``rnf-bench``: RNF against Avalanche's baselines on continual-learning streams.

Every strategy trains the same model with the same optimizer, batch size and epochs; the
accuracy on every experience is measured after each training step. Results go to the run
directory after each finished run (results.json, results.csv, summary.md, plots/, logs/).
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

from benchmarks.data import ENV_VAR, DataNotFoundError
from benchmarks.hparams import PRESETS, SEARCH, STRATEGIES, TRAINING, strategy_params, with_overrides
from benchmarks.streams import BENCHMARKS, SCENARIOS

LOGGERS = ("interactive", "text", "csv", "tensorboard")


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
    p.add_argument("--strategies", default=",".join(STRATEGIES),
                   help="comma-separated strategies: " + ", ".join(STRATEGIES)
                        + "; si_upstream is Avalanche's SI without the CPU fix")
    p.add_argument("--epochs", type=int, help="epochs per experience, for every strategy (default: the table's)")
    p.add_argument("--batch-size", type=int, help="training mini-batch size (default: the table's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="seeds (class order, permutations, initialisation); several give mean ± std")
    p.add_argument("--experiences", type=int, help="number of experiences (default: the benchmark's)")
    p.add_argument("--image-size", type=int, default=32, help="imagefolder: images are resized to this square size")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                   help="override a strategy parameter, e.g. ewc.ewc_lambda=10 (repeatable)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="reproduce a published continual-learning-baselines result with its configuration")
    p.add_argument("--search", action="store_true",
                   help="search each strategy's key parameter on a validation split (10%% of the training data; "
                        "the test stream is not used) and report the best value")
    p.add_argument("--data-root", help=f"directory holding the datasets (default: ${ENV_VAR})")
    p.add_argument("--out", help="run directory (default: runs/<benchmark>-<scenario>)")
    p.add_argument("--resume", action="store_true", help="keep finished runs found in the run directory, run the rest")
    p.add_argument("--rerun", default="", metavar="STRATEGIES",
                   help="with --resume: discard the stored runs of these comma-separated strategies first, so "
                        "they run again (after their code changed; otherwise a run with the same configuration "
                        "counts as finished)")
    p.add_argument("--wandb", metavar="PROJECT",
                   help="log to Weights & Biases project PROJECT (online when logged in, offline otherwise)")
    p.add_argument("--loggers", default=",".join(LOGGERS),
                   help="comma-separated Avalanche loggers: interactive (console progress bars), text, csv, "
                        "tensorboard; files go to <out>/logs/<run>/")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-plots", action="store_true", help="do not write plots")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    _quiet_upstream_warnings()
    try:
        return _main(args, argv)
    except (DataNotFoundError, UsageError) as error:
        print(f"rnf-bench: {error}", file=sys.stderr)
        return 2


class UsageError(ValueError):
    """A bad combination of options; reported without a traceback."""


def _main(args: argparse.Namespace, argv: list[str]) -> int:
    from tqdm import tqdm

    from benchmarks.results import ResultStore, run_key
    from benchmarks.runner import default_device, run
    from benchmarks.streams import build_stream

    try:
        plan = _plan(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    out = Path(args.out or Path("runs") / plan["name"])
    device = default_device(args.device)
    meta = {"command": "rnf-bench " + shlex.join(argv), "machine": machine_facts(device), "plan": plan["describe"]}
    store = ResultStore(out, meta=meta, resume=args.resume)
    store.discard({name.strip() for name in args.rerun.split(",") if name.strip()})
    streams: dict[int, Any] = {}
    specs = plan["specs"]
    failed = []
    planned: list[str] = []
    bar = tqdm(specs, desc="runs", unit="run", position=0, disable=len(specs) < 2)
    for spec in bar:
        if spec.seed not in streams:
            try:
                streams[spec.seed] = build_stream(plan["benchmark"], plan["scenario"], seed=spec.seed,
                                                  root=args.data_root, n_experiences=args.experiences,
                                                  image_size=args.image_size)
            except ValueError as error:
                raise UsageError(str(error)) from None
        stream = streams[spec.seed]
        key = run_key(spec.strategy, spec.seed, spec.config(stream))
        planned.append(key)
        if store.done(key):
            bar.write(f"{spec.strategy} seed {spec.seed}: finished earlier, skipped (--resume)")
            continue
        bar.set_postfix_str(f"{spec.strategy} seed {spec.seed}")
        loggers, wandb = _loggers(args, out, spec, stream)
        record = run(spec, stream, loggers=loggers, device=device)
        _close(loggers, wandb, record)
        store.add(record)
        if record.status == "failed":
            failed.append(record)
            bar.write(f"{spec.strategy} seed {spec.seed} FAILED: {record.reason}")
        elif record.status == "skipped":
            bar.write(f"{spec.strategy}: skipped ({record.reason})")
    records = [store.records[k] for k in planned]  # this plan's runs, not older ones kept in the store
    table, plots = write_summary(out, store.meta, records, search=args.search, plots=not args.no_plots,
                                 order=[s.strategy for s in specs])
    if args.wandb and plots:
        _wandb_summary(args, out, plan, plots, table)
    print("\n" + table)
    print(f"\nresults: {out / 'results.json'}, {out / 'results.csv'}, {out / 'summary.md'}"
          + (f", plots in {out / 'plots'}" if plots else ""))
    for record in failed:
        print(f"failed: {record.strategy} seed {record.seed}: {record.reason} (rerun with --resume)", file=sys.stderr)
    return 1 if failed else 0


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """The runs to do: strategies x seeds (or, with --search, strategies x key-parameter values)."""
    from benchmarks.runner import RunSpec

    overrides = _parse_params(args.param)
    if args.preset:
        preset = PRESETS[args.preset]
        benchmark, scenario, strategies = preset.benchmark, preset.scenario, [preset.strategy]
        training = with_overrides(preset.training, epochs=args.epochs, batch_size=args.batch_size)
        params = {preset.strategy: {**strategy_params(preset.strategy, benchmark, scenario), **preset.params}}
        name = f"preset-{args.preset}"
    else:
        benchmark = args.benchmark
        scenario = args.scenario or BENCHMARKS[benchmark].default_scenario
        strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
        training = with_overrides(TRAINING[benchmark], epochs=args.epochs, batch_size=args.batch_size)
        params = {s: strategy_params(s, benchmark, scenario) for s in strategies}
        name = f"{'search-' if args.search else ''}{benchmark}-{scenario}"
    for strategy, values in overrides.items():
        if strategy not in params:
            raise ValueError(f"--param for {strategy!r}, which is not among the strategies run")
        params[strategy].update(values)
    specs = []
    if args.search:
        for strategy in strategies:
            key, values = SEARCH.get(strategy, (None, (None,)))
            for value in values:
                p = dict(params[strategy], **({key: value} if key else {}))
                specs.append(RunSpec(strategy, p, training, args.seeds[0], validation=0.1))
    else:
        specs = [RunSpec(s, params[s], training, seed) for seed in args.seeds for s in strategies]
    describe = {"benchmark": benchmark, "scenario": scenario, "training": training.as_dict(), "params": params,
                "seeds": args.seeds, "preset": args.preset, "search": args.search}
    return {"name": name, "benchmark": benchmark, "scenario": scenario, "specs": specs, "describe": describe}


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


def _loggers(args: argparse.Namespace, out: Path, spec, stream) -> tuple[list, Any]:
    from avalanche.logging import CSVLogger, InteractiveLogger, TensorboardLogger, TextLogger

    chosen = {name.strip() for name in args.loggers.split(",") if name.strip()}
    unknown = chosen - set(LOGGERS)
    if unknown:
        raise UsageError(f"unknown logger(s) {', '.join(sorted(unknown))}; choose from {', '.join(LOGGERS)}")
    run_name = f"{spec.strategy}-seed{spec.seed}" + (f"-{_param_tag(spec)}" if spec.validation else "")
    logdir = out / "logs" / run_name
    loggers: list = []
    if "interactive" in chosen:
        loggers.append(InteractiveLogger())
    if chosen & {"text", "csv", "tensorboard"}:
        logdir.mkdir(parents=True, exist_ok=True)
    if "text" in chosen:
        loggers.append(TextLogger(open(logdir / "log.txt", "w")))
    if "csv" in chosen:
        loggers.append(CSVLogger(log_folder=str(logdir / "csv")))
    if "tensorboard" in chosen:
        loggers.append(TensorboardLogger(tb_log_dir=str(logdir / "tensorboard")))
    wandb = None
    if args.wandb:
        from benchmarks.wandb_logger import WandBLogger

        wandb = WandBLogger(args.wandb, name=run_name, group=out.name, config=spec.config(stream),
                            dir=out / "wandb")
        loggers.append(wandb)
    return loggers, wandb


def _param_tag(spec) -> str:
    key = SEARCH.get(spec.strategy, (None,))[0]
    return f"{key}={spec.params[key]}" if key else "default"


def _close(loggers: list, wandb, record) -> None:
    from avalanche.logging import InteractiveLogger, TensorboardLogger, TextLogger

    if wandb is not None:
        if record.matrix:
            wandb.log_matrix("accuracy_matrix", record.matrix)
        wandb.log_summary({"average_accuracy": record.average_accuracy, "forgetting": record.forgetting,
                           "backward_transfer": record.backward_transfer,
                           "train_seconds": sum(record.train_seconds), "peak_rss_delta_mb": record.peak_rss_delta_mb,
                           "state_bytes": record.state_bytes[-1] if record.state_bytes else None,
                           "status": record.status})
    for logger in loggers:
        if isinstance(logger, InteractiveLogger):
            continue  # writes to sys.stdout
        if isinstance(logger, TextLogger):
            logger.file.close()
        elif isinstance(logger, TensorboardLogger):
            logger.writer.close()
        elif hasattr(logger, "close"):
            logger.close()


def write_summary(out: Path, meta: dict[str, Any], records: list, *, search: bool = False, plots: bool = True,
                  order: list[str] | tuple[str, ...] = STRATEGIES) -> tuple[str, list[Path]]:
    """Write ``summary.md`` (and, unless a search, the plots) of a run directory; return the table and plot paths."""
    from benchmarks.plots import plot_all
    from benchmarks.results import atomic_write, summary_table

    plan = meta.get("plan", {})
    title = f"{plan.get('benchmark', '?')} ({plan.get('scenario', '?')}-incremental)"
    table = search_table(records) if search else summary_table(records, order=order)
    resumed = [r["command"] for r in meta.get("resumed", [])]
    commands = "\n".join(f"`{c}`  " for c in [meta.get("command", ""), *resumed])
    atomic_write(out / "summary.md", f"# {title}\n\n{commands}\n\n{table}\n")
    paths = plot_all(records, out / "plots", title) if plots and not search else []
    return table, paths


def _wandb_summary(args, out: Path, plan, plots: list[Path], table: str) -> None:
    from benchmarks.wandb_logger import WandBLogger

    logger = WandBLogger(args.wandb, name="summary", group=out.name, config=plan["describe"], dir=out / "wandb")
    logger.log_images(plots)
    logger.run.log({"summary": logger.wandb.Html(f"<pre>{table}</pre>")})
    logger.close()


def search_table(records) -> str:
    """Markdown table of a search: validation accuracy per strategy and key-parameter value, best marked."""
    lines = ["| strategy | parameter | value | validation average accuracy | best |", "|---|---|---|---|---|"]
    by_strategy: dict[str, list] = {}
    for r in records:
        by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, runs in by_strategy.items():
        key = _searched_key(strategy, runs)
        ok = [r for r in runs if r.status == "ok"]
        best = max(ok, key=lambda r: r.average_accuracy, default=None)
        if not ok:  # not applicable here: one line with the reason, not one per value
            runs = runs[:1]
            key = None
        for r in runs:
            value = r.config["params"].get(key, "–") if key else "–"
            acc = f"{r.average_accuracy:.4f}" if r.status == "ok" else f"{r.status}: {r.reason}"
            lines.append(f"| {strategy} | {key or '–'} | {value} | {acc} | {'**best**' if r is best and key else ''} |")
    return "\n".join(lines)


def _searched_key(strategy: str, runs) -> str | None:
    """The parameter a search varied: the strategy's key parameter, or (older searches) the one that varies."""
    key = SEARCH.get(strategy, (None,))[0]
    if key is None or any(key in r.config["params"] for r in runs):
        return key
    names = {k for r in runs for k in r.config["params"]}
    varying = [k for k in sorted(names) if len({repr(r.config["params"].get(k)) for r in runs}) > 1]
    return varying[0] if varying else None


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


def _quiet_upstream_warnings() -> None:
    for message in ("No loggers specified", "Call to deprecated function update", "no QP solver found"):
        warnings.filterwarnings("ignore", message=message)


if __name__ == "__main__":
    raise SystemExit(main())
