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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avalanche_rnf.bench.arguments import UsageError, build_parser, names
from avalanche_rnf.bench.console import LOG_FILE, StepBar, WarningLog, display_path, outcome
from avalanche_rnf.bench.data import DataNotFoundError

if TYPE_CHECKING:
    from avalanche_rnf.bench.distributed import Handler, Resources
    from avalanche_rnf.bench.jobs import Job
    from avalanche_rnf.bench.planning import Plan
    from avalanche_rnf.bench.results import RunRecord


def main(argv: list[str] | None = None) -> int:
    """``rnf-bench``'s entry point.

    The harness's modules this module imports at its top import no Avalanche: it is first imported when the
    parser is built, inside :class:`~avalanche_rnf.bench.console.WarningLog`, so that Avalanche's import-time
    warnings (qpsolvers' "no QP solver found") go to the run's log, not to the console. That holds as long as
    ``import avalanche_rnf`` itself does not import Avalanche.
    """
    argv = sys.argv[1:] if argv is None else argv
    with WarningLog() as log:
        args = build_parser().parse_args(argv)
        try:
            return _main(args, argv, log)
        except (DataNotFoundError, UsageError) as error:
            print(f"rnf-bench: {error}", file=sys.stderr)
            return 2


def _main(args: argparse.Namespace, argv: list[str], log: WarningLog) -> int:
    from tqdm import tqdm

    from avalanche_rnf.bench.jobs import failed_record, run_job
    from avalanche_rnf.bench.machine import machine_facts
    from avalanche_rnf.bench.planning import check_resources, log_setup, make_plan, plan_jobs
    from avalanche_rnf.bench.portable import portable_command, portable_data_root
    from avalanche_rnf.bench.results import ResultStore
    from avalanche_rnf.bench.runner import default_device
    from avalanche_rnf.bench.summary import write_summary

    try:
        plan = make_plan(args)
        resources = check_resources(args)
    except ValueError as error:
        raise UsageError(str(error)) from None
    distributed = bool(args.ray or args.sweep)
    out = Path(args.out or Path("runs") / plan["name"])
    if args.explain:
        from avalanche_rnf.bench.explaining import with_explanations

        plan["specs"], plan["describe"]["explain"] = with_explanations(plan["specs"], out), True
    device = resources.device if distributed else default_device(args.device)
    command, command_dir = portable_command(argv, out)
    meta = {"command": command, "command_dir": command_dir, "machine": machine_facts(device),
            "plan": plan["describe"]}
    data_root = portable_data_root(args, out)
    if data_root:
        meta["data_root"] = data_root
    logs = log_setup(args, out, distributed)
    store = ResultStore(out, meta=meta, resume=args.resume)
    log.attach(out / LOG_FILE)
    log.write(command)
    search = bool(args.search or args.sweep)
    all_jobs = plan_jobs(args, plan, logs)
    planned = [job.key for job in all_jobs]
    # a search directory collects many configurations: drop only the points this invocation runs
    store.discard(set(names(args.rerun)),
                  keys=set(planned) if search else None)
    jobs: list[Job] = []
    for job in all_jobs:
        if store.done(job.key):
            print(f"{job.label}: finished earlier, skipped (--resume)")
        else:
            jobs.append(job)
    failed: list[RunRecord] = []
    terminal = sys.stderr.isatty()
    bar = tqdm(total=len(jobs), desc="runs", unit="run", position=0, disable=not jobs, file=sys.stderr,
               dynamic_ncols=True)

    def handle(job: Job, record: RunRecord) -> None:
        store.add(record)
        log.write(f"{job.label}: {outcome(record)}")
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
        _wandb_summary(args, out, plan, plots, table, records)
    print("\n" + table)
    if args.sweep:
        _report_best(args, plan, records)
    shown = display_path(out)
    print(f"\nresults: {shown / 'results.json'}, {shown / 'results.csv'}, {shown / 'summary.md'}"
          + (f", plots in {shown / 'plots'}" if plots else "") + f"; logs in {shown / 'logs'}")
    for record in failed:
        print(f"failed: {record.strategy} seed {record.seed}: {record.reason} (rerun with --resume)", file=sys.stderr)
    return 1 if failed else 0


def _run_distributed(args: argparse.Namespace, jobs: list[Job], resources: Resources, handle: Handler, out: Path,
                     meta: dict[str, Any]) -> None:
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


def _report_best(args: argparse.Namespace, plan: Plan, records: list[RunRecord]) -> None:
    from avalanche_rnf.bench.results import best_points
    from avalanche_rnf.bench.sweep import write_tuned

    best = best_points(records, plan["swept"], current=_running_points(plan))
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


def _running_points(plan: Plan) -> dict[str, dict[str, Any]]:
    """Per swept strategy, the values of its swept parameters it runs with now (they win exact ties)."""
    params, lr = plan["describe"]["params"], plan["describe"]["training"]["lr"]
    return {strategy: {k: params[strategy].get(k, lr if k == "lr" else None) for k in keys}
            for strategy, keys in plan["swept"].items()}


def _wandb_summary(args: argparse.Namespace, out: Path, plan: Plan, plots: list[Path], table: str,
                   records: list[RunRecord]) -> None:
    from avalanche_rnf.bench.explaining import COLUMNS, drift_rows
    from avalanche_rnf.bench.wandb_logger import WandBLogger

    logger = WandBLogger(args.wandb, name="summary", group=out.name, config=plan["describe"], dir=out / "wandb")
    logger.log_images(plots)
    logger.run.log({"summary": logger.wandb.Html(f"<pre>{table}</pre>")})
    drift = drift_rows(records, [s.strategy for s in plan["specs"]])
    if drift:  # runs with --explain
        logger.log_table("explanation_drift", COLUMNS, drift)
    logger.close()


if __name__ == "__main__":
    raise SystemExit(main())
