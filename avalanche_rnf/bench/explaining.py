"""``rnf-bench --explain``: explanation drift measured the same way for every strategy.

Each run gets an :class:`~avalanche_rnf.drift.ExplanationDriftPlugin`: after every experience, LRP
heatmaps of a seeded probe set of each experience seen so far, compared with those made right after
it was learned. The run's record gets the drift matrices and the seconds the heatmaps took (taken out
of its training time); the heatmaps go to ``<run directory>/explanations/<run>.npz`` (RNF's unit
relevance per experience next to them, ``<run>-units.npz``). The summary gets a drift table and three
figures: the heatmap grid, the drift curves and RNF's unit relevance.

PackNet's layers multiply their weights by a task's mask outside ``nn.Linear``, where LRP's rules do
not reach, so its heatmaps are made on plain copies of its network, one per task, with that task's
weights (:class:`PackNetTasks`). Joint training has no old tasks: no plugin, drift not applicable.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import statistics
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch
from avalanche.models import MultiTaskModule
from avalanche.models.packnet import PackNetModel, WeightAndBiasPackNetModule
from torch import Tensor, nn

from avalanche_rnf.bench.results import RunRecord
from avalanche_rnf.drift import MEASURES, ExplanationDriftPlugin, load_npz

if TYPE_CHECKING:
    from avalanche_rnf.bench.runner import RunSpec

FOLDER = "explanations"
"""The run directory's folder of heatmap files."""
NOT_APPLICABLE = {"joint": "joint training has no old tasks"}
CAPTION = ("Explanations of each old experience's probe images after the last experience, against those made "
           "right after it was learned: mean over old experiences (1.0: unchanged), mean ± std over seeds. "
           "Explanation time: the LRP heatmap passes, left out of the training time.")


def with_explanations(specs: Iterable[RunSpec], out: Path) -> list[RunSpec]:
    """The runs with their heatmaps going to run directory ``out`` (their keys change: ``explain`` in the config)."""
    return [dataclasses.replace(spec, explain=str(Path(out).resolve())) for spec in specs]


# ---------------------------------------------------------------- PackNet
def _plain_copy(model: PackNetModel, task: int) -> nn.Module:
    """PackNet's network as it computes ``task``: each masked layer a plain copy holding the weights
    ``task`` sees (those of tasks up to it)."""
    net = copy.deepcopy(model.wrappee)
    for name, module in list(net.named_modules()):
        if isinstance(module, WeightAndBiasPackNetModule):
            layer = module.wrappee
            with torch.no_grad():
                layer.weight.mul_(module.task_index.le(task).to(layer.weight.dtype))
            parent, _, child = name.rpartition(".")
            if not name:
                return layer
            setattr(net.get_submodule(parent), child, layer)
    return net


class PackNetTasks(MultiTaskModule):
    """A PackNet model as plain layers: ``forward(x, task_labels)`` runs each task's copy, as PackNet does."""

    def __init__(self, model: PackNetModel) -> None:
        super().__init__()
        self.nets = nn.ModuleList(_plain_copy(model, t) for t in range(model.task_count + 1))

    def forward_single_task(self, x: Tensor, task_label: int) -> Tensor:
        return self.nets[min(int(task_label), len(self.nets) - 1)](x)

    def forward(self, x: Tensor, task_labels: Tensor | int) -> Tensor:  # type: ignore[override]
        """One task per batch, as PackNet's own forward asks."""
        labels = torch.as_tensor(task_labels).reshape(-1)
        if not bool(labels.eq(labels[0]).all()):
            raise ValueError("PackNet computes one task per batch; got several task labels.")
        return self.forward_single_task(x, int(labels[0]))


class PackNetDriftPlugin(ExplanationDriftPlugin):
    """The drift plugin for PackNet: heatmaps of :class:`PackNetTasks`."""

    def update(self, model: nn.Module, experience: Any, device: Any = "cpu") -> dict[str, float]:
        if not isinstance(model, PackNetModel):
            raise TypeError(f"PackNetDriftPlugin explains PackNet models, got {type(model).__name__}.")
        return super().update(PackNetTasks(model).to(device), experience, device)


# ---------------------------------------------------------------- one run
class Explanations:
    """A run's explanation drift: the plugin (none without ``--explain``, or for joint training), its time
    per training step, and what the run's record and files get at the end."""

    def __init__(self, spec: RunSpec, record: RunRecord) -> None:
        self.record, self.out = record, Path(spec.explain) if spec.explain else None
        self.plugin: ExplanationDriftPlugin | None = None
        if self.out is not None and spec.strategy not in NOT_APPLICABLE:
            kind = PackNetDriftPlugin if spec.strategy == "packnet" else ExplanationDriftPlugin
            self.plugin = kind(seed=spec.seed)
        self._counted = 0

    @property
    def plugins(self) -> list[ExplanationDriftPlugin]:
        return [self.plugin] if self.plugin is not None else []

    def step(self) -> float:
        """Seconds the heatmaps took in the training step just finished (recorded; 0.0 without a plugin)."""
        if self.plugin is None:
            return 0.0
        seconds = sum(self.plugin.seconds[self._counted:])
        self._counted = len(self.plugin.seconds)
        self.record.explain_seconds.append(seconds)
        return seconds

    def finish(self, strategy: Any) -> None:
        """Drift matrices into the record; heatmaps (and RNF's unit relevance) into the run directory; W&B."""
        if self.plugin is None or self.out is None:
            return
        r = self.record
        r.drift = {m: [[None if np.isnan(v) else float(v) for v in row] for row in self.plugin.matrix(m)]
                   for m in MEASURES}
        r.heatmaps = f"{FOLDER}/{r.key.replace('/', '-')}.npz"
        self.plugin.save_npz(self.out / r.heatmaps)
        if r.strategy == "rnf":
            save_arrays(units_path(self.out / r.heatmaps), {f"exp{e:03d}:{layer}": scores.float().numpy()
                                                            for e, s in enumerate(strategy.rnf.raw_scores)
                                                            for layer, scores in s.items()})
        from avalanche_rnf.bench.wandb_logger import WandBLogger

        for logger in getattr(strategy.evaluator, "loggers", []):
            if isinstance(logger, WandBLogger):
                for m in MEASURES:
                    logger.log_matrix(f"explanation_drift_{m}", r.drift[m])
                logger.log_summary({f"final_drift_{m}": final_drift(r, m) for m in MEASURES}
                                   | {"explain_seconds": sum(r.explain_seconds)})


def units_path(heatmaps: Path) -> Path:
    return heatmaps.with_name(heatmaps.stem + "-units.npz")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``arrays`` into ``.npz`` file ``path`` through a temporary file in its folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # keywords are array names
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_units(path: Path) -> list[dict[str, np.ndarray]]:
    """RNF's unit relevance per experience and layer, as :func:`save_arrays` got it in :meth:`Explanations.finish`."""
    out: list[dict[str, np.ndarray]] = []
    for name, scores in load_npz(path).items():
        step, layer = name.split(":", 1)
        index = int(step[3:])
        out += [{} for _ in range(index + 1 - len(out))]
        out[index][layer] = scores
    return out


# ---------------------------------------------------------------- tables
def final_drift(record: RunRecord, measure: str) -> float | None:
    """Mean over the old experiences of the drift after the last step (None without old experiences)."""
    row = [v for v in (record.drift.get(measure) or [[]])[-1] if v is not None]
    return sum(row) / len(row) if row else None


def _pm(values: Sequence[float | None], fmt: str = "{:.3f}") -> str:
    got = [v for v in values if v is not None]
    if len(got) < 2:
        return fmt.format(got[0]) if got else "–"
    return f"{fmt.format(statistics.mean(got))} ± {fmt.format(statistics.stdev(got))}"


COLUMNS = ["strategy", "seeds", "explanation similarity (cosine)", "top-k rank correlation", "accuracy forgetting",
           "explanation time (s)", "share of training time"]


def drift_rows(records: Iterable[RunRecord], order: Iterable[str] = ()) -> list[list[str]]:
    """Per strategy run with ``--explain``: the final drift (both measures), forgetting, explanation time and
    its share of training time, mean ± std over seeds (empty: no run had explanations)."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.config.get("explain"):
            groups.setdefault(r.strategy, []).append(r)
    rows = []
    for name in [s for s in dict.fromkeys(order) if s in groups] + [s for s in groups if s not in order]:
        ok = [r for r in groups[name] if r.status == "ok"]
        if not ok:
            rows.append([name, "0", f"{groups[name][0].status}: {groups[name][0].reason}", *[""] * 4])
            continue
        forgetting = _pm([r.forgetting for r in ok])
        timed = [r for r in ok if r.drift]
        if not timed:
            reason = NOT_APPLICABLE.get(name, "no explanations")
            rows.append([name, str(len(ok)), f"n/a: {reason}", "n/a", forgetting, "–", "–"])
            continue
        rows.append([name, str(len(timed)), *(_pm([final_drift(r, m) for r in timed]) for m in MEASURES), forgetting,
                     _pm([sum(r.explain_seconds) for r in timed], "{:.2f}"),
                     _pm([100 * sum(r.explain_seconds) / sum(r.train_seconds) for r in timed], "{:.1f}") + " %"])
    return rows


def drift_table(records: Iterable[RunRecord], order: Iterable[str] = ()) -> str | None:
    """:func:`drift_rows` as a markdown table (None: no run had explanations)."""
    rows = drift_rows(records, order)
    if not rows:
        return None
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ---------------------------------------------------------------- figures
def figures(records: Iterable[RunRecord], run_dir: Path, plots: Path, title: str = "") -> list[Path]:
    """The heatmap grid (RNF next to the best other strategy by average accuracy, first seed both ran), the
    drift curves of every strategy, RNF's unit relevance (first seed): PNGs in ``plots``. Figures whose
    heatmap files are not in ``run_dir`` are left out."""
    from avalanche_rnf.bench import explain_figures

    groups: dict[str, list[RunRecord]] = {}
    for r in sorted(records, key=lambda r: r.seed):
        if r.status == "ok" and r.drift:
            groups.setdefault(r.strategy, []).append(r)
    if not groups:
        return []
    paths = [path for path in [_grid(groups, run_dir, plots, title)] if path is not None]
    cosine, rank = ({s: [[_row_mean(row) for row in r.drift[m]] for r in rs] for s, rs in groups.items()}
                    for m in MEASURES)
    paths.append(explain_figures.drift_curves(cosine, plots / "explanation_drift.png", rank=rank,
                                              title=f"{title}: explanation drift (1.0: explanations unchanged)"))
    units = [(r.seed, units_path(run_dir / r.heatmaps)) for r in groups.get("rnf", [])]
    units = [(seed, path) for seed, path in units if path.is_file()]
    if units:
        paths.append(explain_figures.unit_relevance(
            load_units(units[0][1]), plots / "rnf_unit_relevance.png",
            title=f"{title}: RNF's unit relevance per layer and experience (seed {units[0][0]})"))
    return paths


def _grid(groups: dict[str, list[RunRecord]], run_dir: Path, plots: Path, title: str) -> Path | None:
    """The first experience's heatmaps of RNF and the best other strategy (the best two without RNF)."""
    from avalanche_rnf.bench import explain_figures

    files = {s: {r.seed: run_dir / r.heatmaps for r in rs if (run_dir / r.heatmaps).is_file()}
             for s, rs in groups.items()}
    accuracy = {s: statistics.mean(r.average_accuracy or 0.0 for r in rs) for s, rs in groups.items() if files[s]}
    others = sorted((s for s in accuracy if s != "rnf"), key=lambda s: -accuracy[s])
    shown = (["rnf"] if "rnf" in accuracy else []) + others[:1] + (others[1:2] if "rnf" not in accuracy else [])
    seed = min(set.intersection(*(set(files[s]) for s in shown)), default=None) if shown else None
    if seed is None:
        return None
    data = {s: load_npz(files[s][seed]) for s in shown}
    maps = {s: [d[k] for k in sorted(d) if k.startswith("maps_exp000_after")] for s, d in data.items()}
    scores = ", ".join(f"{s} {accuracy[s]:.3f}" for s in shown)
    return explain_figures.heatmap_grid(
        maps, plots / "explanation_heatmaps.png", images=data[shown[0]]["x_exp000"],
        title=f"{title}: the first experience's probe images, seed {seed} (average accuracy {scores})")


def _row_mean(row: list[float | None]) -> float:
    values = [v for v in row if v is not None]
    return float(np.mean(values)) if values else float("nan")
