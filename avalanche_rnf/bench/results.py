"""Run records, continual-learning scores, and the run directory's result files.

``A[i][j]`` is the accuracy on experience ``j`` after training on experience ``i`` (the
accuracy matrix; joint training has a single row, after training on everything).

- average accuracy: mean of the last row;
- learning accuracy (Riemer et al. 2019): mean of ``A[j][j]``, each experience right after
  training on it: what the strategy learned, before any forgetting;
- forgetting (Chaudhry et al. 2018): mean over old experiences of the best accuracy reached
  before the last step minus the final accuracy;
- backward transfer (Lopez-Paz & Ranzato 2017): mean of ``A[T-1][j] - A[j][j]`` over old ones.

Files are replaced atomically after each finished run, so an interrupted sweep loses at most
the run in progress.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

Matrix = list[list[float]]


def average_accuracy(matrix: Matrix) -> float:
    return sum(matrix[-1]) / len(matrix[-1])


def forgetting(matrix: Matrix) -> float | None:
    """Mean drop from the best earlier accuracy to the final one (None with a single row)."""
    t = len(matrix)
    if t < 2:
        return None
    return sum(max(matrix[i][j] for i in range(j, t - 1)) - matrix[-1][j] for j in range(t - 1)) / (t - 1)


def learning_accuracy(matrix: Matrix) -> float | None:
    """Mean accuracy on each experience right after training on it (None with a single row)."""
    t = len(matrix)
    if t < 2:
        return None
    return sum(matrix[j][j] for j in range(t)) / t


def backward_transfer(matrix: Matrix) -> float | None:
    """Mean change from just after learning an experience to the end (None with a single row)."""
    t = len(matrix)
    if t < 2:
        return None
    return sum(matrix[-1][j] - matrix[j][j] for j in range(t - 1)) / (t - 1)


@dataclass
class RunRecord:
    """Everything measured in one run (a strategy on a benchmark with one seed)."""

    benchmark: str
    scenario: str
    strategy: str
    seed: int
    config: dict[str, Any]
    status: str = "ok"  # "ok", "skipped" or "failed"
    reason: str = ""
    traceback: str = ""
    matrix: Matrix = field(default_factory=list)  # own-head accuracy (equal to Avalanche's for single heads)
    matrix_avalanche: Matrix = field(default_factory=list)  # Avalanche's Top1_Acc_Exp
    stream_accuracy_avalanche: float | None = None  # Avalanche's Top1_Acc_Stream after the last experience
    train_seconds: list[float] = field(default_factory=list)  # per training step
    eval_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rss_delta_mb: float = 0.0
    peak_cuda_mb: float | None = None
    state_bytes: list[int] = field(default_factory=list)  # after each training step
    relevance_seconds: list[float] = field(default_factory=list)  # RNF only
    frozen_fractions: list[dict[str, float]] = field(default_factory=list)  # RNF only, per layer
    rnf_search: list[dict[str, float]] = field(default_factory=list)  # RNF with max_drop: the search per step
    task_recognition: list[list[float | None]] = field(default_factory=list)  # RNF task_inference: per step,
    # the share of each experience's test samples whose task was recognised (None: its task not learned yet)
    recognition_bytes: list[int] = field(default_factory=list)  # RNF task_inference: the recognizer's statistics
    device: str = "cpu"
    # --explain (OPTIONAL): drift per measure, [after step][experience] (None: not an old experience yet);
    # heatmap seconds per step (not in train_seconds); the heatmap file, relative to the run directory
    drift: dict[str, list[list[float | None]]] = field(default_factory=dict)
    explain_seconds: list[float] = field(default_factory=list)
    heatmaps: str = ""

    @property
    def key(self) -> str:
        return run_key(self.strategy, self.seed, self.config)

    @property
    def average_accuracy(self) -> float | None:
        return average_accuracy(self.matrix) if self.matrix else None

    @property
    def forgetting(self) -> float | None:
        return forgetting(self.matrix) if self.matrix else None

    @property
    def backward_transfer(self) -> float | None:
        return backward_transfer(self.matrix) if self.matrix else None

    @property
    def learning_accuracy(self) -> float | None:
        return learning_accuracy(self.matrix) if self.matrix else None

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v or k not in OPTIONAL}
        data.update(key=self.key, average_accuracy=self.average_accuracy, forgetting=self.forgetting,
                    backward_transfer=self.backward_transfer, total_train_seconds=sum(self.train_seconds))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


OPTIONAL = ("drift", "explain_seconds", "heatmaps")
"""Fields results.json has only where they were measured (files written before them load unchanged)."""


def run_key(strategy: str, seed: int, config: dict[str, Any]) -> str:
    """Identifies a run: same strategy, seed and configuration means the same run."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{strategy}/seed{seed}/{digest}"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ResultStore:
    """``results.json`` and ``results.csv`` of a run directory, rewritten after every finished run."""

    def __init__(self, out: str | os.PathLike, meta: dict[str, Any] | None = None, resume: bool = False):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.json_path = self.out / "results.json"
        self.records: dict[str, RunRecord] = {}
        self.meta = dict(meta or {})
        if resume and self.json_path.is_file():
            stored = json.loads(self.json_path.read_text())
            self.records = {r["key"]: RunRecord.from_json(r) for r in stored["runs"] if r["status"] != "failed"}
            old = stored.get("meta", {})
            invocation = ("command", "command_dir", "machine")  # the first one's stay on top, later ones' in resumed
            first = {k: old[k] for k in invocation if k in old}
            resumed = [*old.get("resumed", []), {k: self.meta[k] for k in invocation if k in self.meta}]
            self.meta = {**{k: v for k, v in self.meta.items() if k != "command_dir"}, **first, "resumed": resumed}

    def discard(self, strategies: set[str], keys: set[str] | None = None) -> None:
        """Forget the stored runs of ``strategies`` (they run again and replace them); only those
        among ``keys`` if given."""
        self.records = {k: r for k, r in self.records.items()
                        if r.strategy not in strategies or (keys is not None and k not in keys)}

    def reorder(self, keys: list[str]) -> None:
        """Put the runs ``keys`` first, in that order (others after them), and save."""
        first = {k: self.records[k] for k in keys if k in self.records}
        self.records = {**first, **{k: r for k, r in self.records.items() if k not in first}}
        self.save()

    def done(self, key: str) -> bool:
        return key in self.records

    def add(self, record: RunRecord) -> None:
        self.records[record.key] = record
        self.save()

    def save(self) -> None:
        runs = [r.to_json() for r in self.records.values()]
        atomic_write(self.json_path, json.dumps({"meta": self.meta, "runs": runs}, indent=1))
        atomic_write(self.out / "results.csv", to_csv(self.records.values()))


CSV_RUN_COLUMNS = ("benchmark", "scenario", "strategy", "seed", "status")


def to_csv(records: Iterable[RunRecord]) -> str:
    """One row per strategy x seed x training step, with the accuracy on every experience.

    A skipped or failed run without results gets one row with its status and reason.
    """
    records = list(records)
    width = max((len(r.matrix[0]) for r in records if r.matrix), default=0)
    header = [*CSV_RUN_COLUMNS, "reason", "trained_up_to", *(f"acc_exp{j}" for j in range(width)), "average_accuracy",
              "avalanche_average_accuracy", "train_seconds", "state_bytes", "relevance_seconds", "frozen_fraction",
              "final_forgetting", "final_backward_transfer", "peak_rss_delta_mb"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for r in records:
        if not r.matrix:
            writer.writerow([r.benchmark, r.scenario, r.strategy, r.seed, r.status, r.reason])
            continue
        steps = len(r.matrix)
        for i, row in enumerate(r.matrix):
            step = i if steps > 1 else len(row) - 1
            reported = r.matrix_avalanche[i] if i < len(r.matrix_avalanche) else []
            writer.writerow([
                r.benchmark, r.scenario, r.strategy, r.seed, r.status, r.reason, step,
                *row, *([""] * (width - len(row))),
                _f(sum(row) / len(row)), _f(sum(reported) / len(reported)) if reported else "",
                _f(r.train_seconds[i]) if i < len(r.train_seconds) else "",
                r.state_bytes[i] if i < len(r.state_bytes) else "",
                _f(r.relevance_seconds[i]) if i < len(r.relevance_seconds) else "",
                _f(r.frozen_fractions[i].get("all")) if i < len(r.frozen_fractions) else "",
                _f(r.forgetting), _f(r.backward_transfer), _f(r.peak_rss_delta_mb),
            ])
    return buf.getvalue()


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


@dataclass(frozen=True)
class Best:
    """A strategy's best point: its parameter values, mean validation accuracy and how many seeds."""

    params: dict[str, Any]
    score: float
    seeds: int


def point_of(record: RunRecord, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` a run had, as JSON gives them back (how :class:`Best` holds a point)."""
    return json.loads(json.dumps({k: record.config["params"].get(k) for k in keys}, sort_keys=True))


def top_points(records: Iterable[RunRecord], keys: dict[str, list[str]]) -> dict[str, list[Best]]:
    """Per strategy, every point of ``keys[strategy]`` level with the best one, in the order run.

    The best has the highest mean validation accuracy over seeds among the points run on the most
    seeds: a mean over fewer (easier or harder) seeds is not comparable, e.g. an older one-seed sweep
    in the same directory as a two-seed one. Points that tie exactly are all kept.
    """
    scores: dict[tuple[str, str], list[float]] = {}
    for r in records:
        accuracy = r.average_accuracy  # None only for a run without a matrix: not a finished one
        if r.status == "ok" and r.strategy in keys and accuracy is not None:
            point = json.dumps(point_of(r, keys[r.strategy]), sort_keys=True)
            scores.setdefault((r.strategy, point), []).append(accuracy)
    top: dict[str, list[Best]] = {}
    for (strategy, point_json), values in scores.items():
        b = Best(json.loads(point_json), sum(values) / len(values), len(values))
        level = top.get(strategy)
        if not level or (b.seeds, b.score) > (level[0].seeds, level[0].score):
            top[strategy] = [b]
        elif (b.seeds, b.score) == (level[0].seeds, level[0].score):
            level.append(b)
    return top


def best_points(records: Iterable[RunRecord], keys: dict[str, list[str]],
                current: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Best]:
    """Per strategy, the best point of ``keys[strategy]`` (``top_points``). Among points that tie
    exactly (e.g. a parameter that changed nothing), ``current[strategy]``, the point the strategy
    runs with now, wins, so that a tie never moves a value; otherwise the first one run."""
    running = current or {}
    return {strategy: next((b for b in level if b.params == dict(running.get(strategy, {}))), level[0])
            for strategy, level in top_points(records, keys).items()}


def present(values: Iterable[float | None]) -> list[float]:
    """The values there are: a run's score is None only where it has none (no accuracy matrix, no metric)."""
    return [v for v in values if v is not None]


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def summary_table(records: Iterable[RunRecord], order: Iterable[str] = ()) -> str:
    """Markdown table: one line per strategy, mean ± std over seeds."""
    by_strategy: dict[str, list[RunRecord]] = {}
    for r in records:
        by_strategy.setdefault(r.strategy, []).append(r)
    order = [s for s in dict.fromkeys(order) if s in by_strategy] + [s for s in by_strategy if s not in order]
    lines = ["| strategy | seeds | average accuracy | forgetting | BWT | learning accuracy | Avalanche-reported | "
             "train time (s) | peak RSS delta (MiB) | state kept (KiB) | RNF relevance (s) |", "|---" * 11 + "|"]
    for name in order:
        runs = [r for r in by_strategy[name] if r.status == "ok"]
        if not runs:
            reason = by_strategy[name][0].reason
            lines.append(f"| {name} | 0 | {by_strategy[name][0].status}: {reason} |" + " |" * 8)
            continue

        def col(get, runs=runs):
            return mean_std([v for v in (get(r) for r in runs) if v is not None])

        failed = sum(r.status == "failed" for r in by_strategy[name])
        lines.append(" | ".join([
            f"| {name}", str(len(runs)) + (f" ({failed} failed)" if failed else ""),
            col(lambda r: r.average_accuracy), col(lambda r: r.forgetting),
            col(lambda r: r.backward_transfer), col(lambda r: r.learning_accuracy),
            col(lambda r: r.stream_accuracy_avalanche),
            _fmt(col(lambda r: sum(r.train_seconds)), 1), _fmt(col(lambda r: r.peak_rss_delta_mb), 0),
            _fmt(col(lambda r: r.state_bytes[-1] / 1024 if r.state_bytes else None), 1),
            _fmt(col(lambda r: sum(r.relevance_seconds) if r.relevance_seconds else None), 2) + " |",
        ]))
    return "\n".join(lines)


def _fmt(text: str, digits: int) -> str:
    """Re-round a ``mean_std`` string's numbers to ``digits`` decimals."""
    parts = text.split(" ± ")
    try:
        return " ± ".join(f"{float(p):.{digits}f}" for p in parts)
    except ValueError:
        return text


def load_records(path: str | os.PathLike) -> tuple[dict[str, Any], list[RunRecord]]:
    """Meta data and run records of a ``results.json`` (or of the run directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = json.loads(path.read_text())
    return data.get("meta", {}), [RunRecord.from_json(r) for r in data["runs"]]
