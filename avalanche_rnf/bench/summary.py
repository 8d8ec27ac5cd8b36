"""A run directory's summary: ``summary.md`` (the title, the commands that made it, the table) and the plots;
for a search or sweep, the table of validation accuracy per searched point."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Iterable

from avalanche_rnf.bench.hparams import SEARCH, STRATEGIES
from avalanche_rnf.bench.recognised import SAMPLES
from avalanche_rnf.bench.results import RunRecord, atomic_write, point_of, present, summary_table, top_points


def write_summary(out: Path, meta: dict[str, Any], records: list[RunRecord], *, search: bool = False,
                  plots: bool = True, order: Iterable[str] = STRATEGIES) -> tuple[str, list[Path]]:
    """Write ``summary.md`` (and, unless a search, the plots) of a run directory; return the table and plot paths."""
    from avalanche_rnf.bench import explaining
    from avalanche_rnf.bench.plots import plot_all

    order = list(order)
    plan = meta.get("plan", {})
    title = f"{plan.get('benchmark', '?')} ({plan.get('scenario', '?')}-incremental)"
    swept = {strategy: list(space) for strategy, space in (plan.get("sweep") or {}).get("strategies", {}).items()}
    table = search_table(records, swept) if search else summary_table(records, order=order)
    if plan.get("infer_tasks") and not search:
        title += ", task labels inferred at evaluation"
        table += "\n\n" + recognition_line(records)
    drift = None if search else explaining.drift_table(records, order)
    if drift:  # runs with --explain
        table += f"\n\n## Explanation drift\n\n{explaining.CAPTION}\n\n{drift}"
    resumed = [r["command"] for r in meta.get("resumed", [])]
    commands = "\n".join(f"`{c}`  " for c in [meta.get("command", ""), *resumed])
    where = meta.get("command_dir")
    if where:
        commands += ("\n(run in this directory)" if where == "." else
                     f"\n(run from `{where}`, relative to this directory)")
    atomic_write(out / "summary.md", f"# {title}\n\n{commands}\n\n{table}\n")
    paths = plot_all(records, out / "plots", title) if plots and not search else []
    if paths and drift:
        paths += explaining.figures(records, out, out / "plots", title)
    return table, paths


def recognition_line(records: Iterable[RunRecord]) -> str:
    """The share of test inputs whose task the recogniser found after the last experience, per strategy
    (``rnf-bench --infer-tasks``)."""
    shares: dict[str, list[float]] = {}
    for r in records:
        last = [v for v in (r.task_recognition[-1] if r.task_recognition else []) if v is not None]
        if r.status == "ok" and last:
            shares.setdefault(r.strategy, []).append(statistics.fmean(last))
    found = ", ".join(f"{name} {statistics.fmean(v):.3f}" for name, v in shares.items())
    return ("Every strategy trained with task labels and was evaluated with the task label a recogniser inferred "
            f"from each input (per task, the class means of {SAMPLES} of its training inputs). Share of test inputs "
            f"whose task was recognised after the last experience: {found or 'none recorded'}.")


def search_table(records: Iterable[RunRecord], swept: dict[str, list[str]] | None = None) -> str:
    """Markdown table of a search or sweep: validation accuracy per strategy and point of its searched
    parameters (mean ± std over seeds; ``swept``: a sweep's parameters per strategy), the best point per
    strategy marked (every one of them where points tie exactly)."""
    lines = ["| strategy | parameter | value | seeds | validation average accuracy | best |",
             "|---|---|---|---|---|---|"]
    by_strategy: dict[str, list[RunRecord]] = {}
    for r in records:
        by_strategy.setdefault(r.strategy, []).append(r)
    for strategy, runs in by_strategy.items():
        ok = [r for r in runs if r.status == "ok"]
        if not ok:  # not applicable here: one line with the reason, not one per value
            lines.append(f"| {strategy} | – | – | 0 | {runs[0].status}: {runs[0].reason} | |")
            continue
        keys = _searched_keys(strategy, runs, (swept or {}).get(strategy, []))
        points: dict[tuple[str, ...], list[RunRecord]] = {}
        for r in runs:
            points.setdefault(tuple(repr(r.config["params"].get(k)) for k in keys), []).append(r)
        level = top_points(runs, {strategy: keys})[strategy]
        for rs in points.values():
            scores = present(r.average_accuracy for r in rs if r.status == "ok")
            failed = [r for r in rs if r.status != "ok"]
            acc = _mean_std4(scores) + (f" ({len(failed)} {failed[0].status}: {failed[0].reason})" if failed else "")
            values = ", ".join(_value(rs[0].config["params"].get(k)) for k in keys) or "–"
            mark = "**best**" if keys and point_of(rs[0], keys) in [b.params for b in level] else ""
            lines.append(f"| {strategy} | {', '.join(keys) or '–'} | {values} | {len(scores)} | {acc} | {mark} |")
    return "\n".join(lines)


def _mean_std4(values: list[float]) -> str:
    """Mean ± std with four digits."""
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "–"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _searched_keys(strategy: str, runs: list[RunRecord], swept: list[str]) -> list[str]:
    """The parameters a search varied: those whose value differs between runs, else those the sweep
    set (one point), else the strategy's key one."""
    names = sorted({k for r in runs for k in r.config["params"]})
    varying = [k for k in names if len({repr(r.config["params"].get(k)) for r in runs}) > 1]
    key = SEARCH.get(strategy, (None,))[0]
    return varying or [k for k in swept if k in names] or ([key] if key in names else [])
