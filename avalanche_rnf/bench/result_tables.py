"""The results tables of the README and the documentation, from the committed result files
(``benchmarks/results/*/results.json``): strategies x benchmarks, RNF's targets met, tied or missed
(:mod:`~avalanche_rnf.bench.verdicts`), class-incremental RNF with task inference, and explanation
drift (``rnf-bench --explain``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from avalanche_rnf.bench.defaults_diff import inferred, non_defaults
from avalanche_rnf.bench.hparams import STRATEGIES
from avalanche_rnf.bench.results import RunRecord, load_records, mean_std, present
from avalanche_rnf.bench.verdicts import gap_and_spread, judged, spread

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
EXPLAIN_ORDER = ("explain-split_mnist-task", "explain-split_cifar10-task")
"""The result directories of ``rnf-bench --explain`` runs."""
SLIM = "split_cifar10-task-slim_resnet18"
"""SplitCIFAR-10 task-incremental with Avalanche's ``SlimResNet18`` (``rnf-bench --model slim_resnet18``)."""
SLIM_CLASS = "split_cifar10-class-slim_resnet18"
"""The same model on SplitCIFAR-10 class-incremental."""
SLIM_TIME = "time-split_cifar10-task-slim_resnet18"
"""Naive and RNF at its defaults side by side on a quiet machine, on the validation split of :data:`SLIM`'s stream."""
TIME_BAR, MEMORY_BAR = 1.10, 1.25
"""RNF's training time and peak memory targets, as multiples of Naive's."""
ORDER = ("split_digits-task", "split_mnist-task", "split_mnist-class", "split_fmnist-task", "split_fmnist-class",
         "permuted_mnist-domain", "split_cifar10-task", "split_cifar10-class", SLIM, SLIM_CLASS)


def comparison_table(results: Path = RESULTS, link: str = "benchmarks/results/",
                     order: tuple[str, ...] = ORDER) -> str:
    """Average accuracy after the last experience, mean ± std over seeds: strategies x the result
    directories in ``order`` (strategies run in none of them are left out, except in :data:`ORDER`)."""
    runs = {d.name: load_records(d)[1] for d in sorted(results.iterdir()) if (d / "results.json").is_file()
            and d.name in order}
    columns = [c for c in order if c in runs]
    head = "| strategy | " + " | ".join(f"[{c}]({link}{c}/summary.md)" for c in columns) + " |"
    lines = [head, "|---" * (len(columns) + 1) + "|"]
    found = {r.strategy for records in runs.values() for r in records}
    for strategy in [*STRATEGIES, *sorted(found - set(STRATEGIES))]:
        if order != ORDER and strategy not in found:
            continue
        cells = []
        for c in columns:
            ok = [r for r in runs[c] if r.strategy == strategy and r.status == "ok"]
            other = next((r for r in runs[c] if r.strategy == strategy and r.status != "ok"), None)
            cell = mean_std(present(r.average_accuracy for r in ok)) if ok else ("n/a" if other else "–")
            task_inferred = ok and inferred(ok[0].config.get("params", {}), ok[0].config.get("scenario", ""))
            cells.append(f"{cell} (task inferred)" if task_inferred else cell)
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Seeds per column: " + ", ".join(f"{c} {_seed_counts(runs[c])}" for c in columns)
                 + ". n/a: not applicable (reason in the column's summary).")
    changed = {c: non_defaults(r[0].config["params"], r[0].config["scenario"], r[0].config.get("benchmark", ""))
               for c in columns if (r := _rnf_and(runs[c]))}
    if any(changed.values()):
        lines += ["", "| column | RNF's settings away from the library's defaults (`RNFPlugin()`) |", "|---|---|"]
        lines += [f"| {c} | {', '.join(f'`{k}`' for k in knobs) or 'none'} |" for c, knobs in changed.items()]
    return "\n".join(lines)


def _seed_counts(records: list[RunRecord]) -> str:
    """Seeds run per strategy in a column: ``"3"``, or ``"3 (rnf, lwf), 1 for the others"`` when they differ."""
    per: dict[str, set[int]] = {}
    for r in records:
        if r.status == "ok":
            per.setdefault(r.strategy, set()).add(r.seed)
    counts = sorted({len(v) for v in per.values()}, reverse=True)
    if len(counts) <= 1:
        return str(counts[0] if counts else 0)
    top = [k for k, v in per.items() if len(v) == counts[0]]
    return f"{counts[0]} ({', '.join(top)}), {'/'.join(map(str, counts[1:]))} for the others"


def _rnf_and(records, strategy="rnf"):
    return [r for r in records if r.strategy == strategy and r.status == "ok"]


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _ratio(records: list[RunRecord], base: list[RunRecord], of: Callable[[RunRecord], float]) -> float:
    """The mean of ``of`` over ``records`` against its mean over ``base`` (RNF's against Naive's)."""
    return _mean(of(r) for r in records) / _mean(of(r) for r in base)


def _train_time(record: RunRecord) -> float:
    return sum(record.train_seconds)


def _ratios(records: list[RunRecord], base: list[RunRecord], of: Callable[[RunRecord], float]) -> list[float]:
    """Per seed both ran: ``of`` of ``records`` against ``of`` of ``base`` (their spread over seeds)."""
    theirs = {r.seed: of(r) for r in base}
    return [of(r) / theirs[r.seed] for r in records if r.seed in theirs]


def _ratio_verdict(ratio: float, ratios: list[float], bar: float) -> str:
    return judged(bar - ratio, spread(ratios), "{:+.2f}x".format)


_FOUR_PLACES = "{:+.4f}".format
"""How the fixed-bar accuracy and forgetting rows write their margins and spreads."""


def targets_table(results: Path = RESULTS, link: str = "benchmarks/results/") -> str:
    """The targets for RNF, each met, tied or missed (:func:`~avalanche_rnf.bench.verdicts.judged`), from the
    committed result files."""
    lines = ["| target | measured (RNF, mean over seeds) | seeds | verdict (margin beyond the bar; seeds' spread) | "
             "results |", "|---|---|---|---|---|"]

    def load(name):
        folder = results / name
        return load_records(folder)[1] if (folder / "results.json").is_file() else []

    def row(target, name, measured, seeds, verdict):
        lines.append(f"| {target} | {measured} | {seeds} | {verdict} | [{name}]({link}{name}/summary.md) |")

    for name, label, acc_min, forget_max in (
        ("split_mnist-task", "SplitMNIST task-IL", 0.99, 0.003),
        ("split_fmnist-task", "SplitFashionMNIST task-IL", 0.97, None),
        ("split_cifar10-task", "SplitCIFAR-10 task-IL", 0.85, 0.01),
    ):
        rnf = _rnf_and(load(name))
        if not rnf:
            row(f"{label}: accuracy >= {acc_min}", name, "not run", 0, "–")
            continue
        accs, forgets = [r.average_accuracy for r in rnf], [r.forgetting for r in rnf]
        acc, forget = _mean(accs), _mean(forgets)
        row(f"{label}: accuracy >= {acc_min}", name, f"{acc:.4f}", len(rnf),
            judged(acc - acc_min, spread(accs), _FOUR_PLACES))
        if forget_max is not None:
            row(f"{label}: forgetting <= {forget_max}", name, f"{forget:.4f}", len(rnf),
                judged(forget_max - forget, spread(forgets), _FOUR_PLACES))
    records = load("permuted_mnist-domain")
    rnf = _rnf_and(records)
    best = max(((_mean(r.average_accuracy for r in _rnf_and(records, s)), s) for s in ("ewc", "si", "lwf", "mas")
                if _rnf_and(records, s)), default=(None, ""))
    if rnf and best[0] is not None:
        acc = _mean(r.average_accuracy for r in rnf)
        gap, width = gap_and_spread([r.average_accuracy for r in rnf],
                                    [r.average_accuracy for r in _rnf_and(records, best[1])])
        row(f"PermutedMNIST domain-IL: above every regularisation baseline (best: {best[1]} {best[0]:.3f})",
            "permuted_mnist-domain", f"{acc:.3f}", len(rnf), judged(gap, width))
    for name in ("permuted_mnist-domain", "permuted_mnist-task"):
        records = load(name)
        rnf, naive = _rnf_and(records), _rnf_and(records, "naive")
        if rnf and naive:
            values = ", ".join(f"{k}={v}" for k, v in sorted(rnf[0].config["params"].items()))
            kind = "task-IL (a head per task" if name == "permuted_mnist-task" else "domain-IL (one head"
            label = f", {kind}; RNF with {values})"
            gap, width = gap_and_spread([r.matrix[-1][-1] for r in rnf], [r.matrix[-1][-1] for r in naive])
            last, base = _mean(r.matrix[-1][-1] for r in rnf), _mean(r.matrix[-1][-1] for r in naive)
            free = {k: 1 - _mean(r.frozen_fractions[-1][k] for r in rnf) for k in rnf[0].frozen_fractions[-1]
                    if ".classifiers." not in k}
            free_text = ", ".join(f"{k} {v:.2f}" for k, v in free.items())
            row(f"10-experience stream{label}: last task within 0.02 of Naive's on it ({base:.3f})", name,
                f"{last:.3f}; free fraction per layer after it: {free_text}", len(rnf),
                judged(gap + 0.02, width))
    cost = load("cost-split_mnist-task")
    rnf, naive, ewc = (_rnf_and(cost, s) for s in ("rnf", "naive", "ewc"))
    if rnf and naive:
        ratio = _ratio(rnf, naive, _train_time)
        row(f"training time <= {TIME_BAR:.2f}x Naive's (same run)", "cost-split_mnist-task", f"{ratio:.2f}x",
            len(rnf), _ratio_verdict(ratio, _ratios(rnf, naive, _train_time), TIME_BAR))
    _slim_rows(load(SLIM), partial(row, name=SLIM), load(SLIM_TIME))
    for name, stream in (("cost-split_mnist-task", "split_mnist"), ("split_cifar10-task", "split_cifar10"),
                         (SLIM, "SlimResNet18")):
        rnf = _rnf_and(load(name))
        if rnf:
            shares = [sum(r.relevance_seconds) / sum(r.train_seconds) for r in rnf]
            share = _mean(shares)
            row(f"relevance pass <= 5% of RNF's training time ({stream})", name, f"{share:.1%}",
                len(rnf), judged(0.05 - share, spread(shares), "{:+.1%}".format))
    rnf = _rnf_and(cost)
    if rnf and ewc:
        mine, theirs = _mean(r.state_bytes[-1] for r in rnf), _mean(r.state_bytes[-1] for r in ewc)
        row("state kept between experiences < EWC's", "cost-split_mnist-task",
            f"{mine / 1024:.0f} KiB (EWC {theirs / 1024:.0f} KiB)", len(rnf),
            judged((theirs - mine) / 1024, 0.0, "{:+.0f} KiB".format))
    return "\n".join(lines)


def _slim_rows(records: list[RunRecord], row: Callable[..., None], timed: list[RunRecord]) -> None:
    """The SlimResNet18 targets: accuracy against the baselines run and Joint, forgetting, and time and
    peak memory against Naive's: from the quiet pair ``timed`` where it ran, else from the accuracy
    runs (the relevance share is with the other columns')."""
    rnf = _rnf_and(records)
    if not rnf:
        return
    acc = _mean(r.average_accuracy for r in rnf)
    baselines = sorted({r.strategy for r in records if r.status == "ok"} - {"rnf", "joint"})
    shared = set.intersection(*({r.seed for r in _rnf_and(records, s)} for s in ["rnf", *baselines]))
    if baselines and shared:  # like for like: the seeds every strategy ran
        scores = {s: [r.average_accuracy for r in _rnf_and(records, s) if r.seed in shared]
                  for s in ["rnf", *baselines]}
        best = max(baselines, key=lambda s: _mean(scores[s]))
        on = "" if len(shared) == len(rnf) else f", on seeds {', '.join(map(str, sorted(shared)))}, which all ran"
        row(target=f"SlimResNet18 task-IL: accuracy >= every baseline run ({', '.join(baselines)}; best: {best}{on})",
            measured=f"{_mean(scores['rnf']):.3f} ({best} {_mean(scores[best]):.3f})", seeds=len(shared),
            verdict=judged(*gap_and_spread(scores["rnf"], scores[best])))
    joint = _rnf_and(records, "joint")
    if joint:
        gap, width = gap_and_spread([r.average_accuracy for r in rnf], [r.average_accuracy for r in joint])
        row(target="SlimResNet18 task-IL: within 0.02 of Joint",
            measured=f"{acc:.3f} (Joint {_mean(r.average_accuracy for r in joint):.3f})", seeds=len(rnf),
            verdict=judged(gap + 0.02, width))
    forgets = [r.forgetting for r in rnf]
    row(target="SlimResNet18 task-IL: forgetting <= 0.005", measured=f"{_mean(forgets):.4f}", seeds=len(rnf),
        verdict=judged(0.005 - _mean(forgets), spread(forgets), _FOUR_PLACES))
    same = (rnf, _rnf_and(records, "naive"), "same run", SLIM)
    quiet = (_rnf_and(timed), _rnf_and(timed, "naive"), "side by side on a quiet machine, validation split", SLIM_TIME)
    pair = quiet if quiet[0] and quiet[1] else same
    for what, of, bar, (mine, naive, where, name) in (
            ("training time", _train_time, TIME_BAR, pair),
            ("peak memory (RSS above the run's start)", lambda r: r.peak_rss_delta_mb, MEMORY_BAR, pair)):
        if naive:
            ratio = _ratio(mine, naive, of)
            row(target=f"SlimResNet18 {what} <= {bar:.2f}x Naive's ({where})", measured=f"{ratio:.2f}x",
                seeds=len(mine), verdict=_ratio_verdict(ratio, _ratios(mine, naive, of), bar), name=name)


def task_agnostic_table(results: Path = RESULTS, link: str = "benchmarks/results/") -> str:
    """Class-incremental RNF with task inference against its targets and the baselines in the same runs."""
    lines = ["| benchmark (class-IL) | target | RNF (task inference) | task recognised | verdict | seeds | "
             "best without replay | Replay(500) | RNF recognition memory | Replay buffer | results |",
             "|---" * 11 + "|"]
    for name, target in (("split_mnist-class", 0.70), ("split_fmnist-class", 0.65), ("split_cifar10-class", 0.40),
                         (SLIM_CLASS, 0.40)):
        folder = results / name
        records = load_records(folder)[1] if (folder / "results.json").is_file() else []
        rnf = [r for r in _rnf_and(records) if r.config["params"].get("task_inference")]
        if not rnf:
            lines.append(f"| {name} | >= {target} | not run | | | 0 | | | | | |")
            continue
        accs = [r.average_accuracy for r in rnf]
        recognised = _mean(_mean(v for v in r.task_recognition[-1] if v is not None) for r in rnf)
        others = {s: _mean(r.average_accuracy for r in _rnf_and(records, s))
                  for s in {r.strategy for r in records} - {"rnf", "replay", "joint"} if _rnf_and(records, s)}
        best = max(others.items(), key=lambda kv: kv[1], default=None)
        replay = _rnf_and(records, "replay")
        memory = _mean(r.recognition_bytes[-1] for r in rnf) / 1024
        lines.append(" | ".join([
            f"| {name}", f">= {target}", f"{mean_std(present(r.average_accuracy for r in rnf))}", f"{recognised:.3f}",
            judged(_mean(accs) - target, spread(accs)), str(len(rnf)),
            f"{best[0]} {best[1]:.3f}" if best else "–",
            f"{_mean(r.average_accuracy for r in replay):.3f}" if replay else "not run", f"{memory:.0f} KiB",
            f"{_mean(r.state_bytes[-1] for r in replay) / 1024:.0f} KiB" if replay else "–",
            f"[{name}]({link}{name}/summary.md) |"]))
    return "\n".join(lines)


def explanation_table(results: Path = RESULTS, link: str = "benchmarks/results/",
                      order: tuple[str, ...] = EXPLAIN_ORDER) -> str:
    """The explanation drift table (:func:`~avalanche_rnf.bench.explaining.drift_table`) of each result
    directory in ``order``, under a link to its summary."""
    from avalanche_rnf.bench.explaining import drift_table

    parts = []
    for name in order:
        if (results / name / "results.json").is_file():
            records = load_records(results / name)[1]
            table = drift_table(records, STRATEGIES)
            if table:
                parts.append(f"[{name}]({link}{name}/summary.md), seeds: {_seed_counts(records)}\n\n{table}")
    return "\n\n".join(parts) or "No result directory with explanations."
