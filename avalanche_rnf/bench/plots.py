"""Figures of a run directory's results (PNG, matplotlib), means over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from avalanche_rnf.bench.results import RunRecord  # noqa: E402


def _by_strategy(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "ok" and r.matrix:
            out.setdefault(r.strategy, []).append(r)
    return out


def _integer_ticks(ax: Axes) -> None:
    """Ticks at whole numbers of experiences on the x axis (its default locator, AutoLocator, is a MaxNLocator)."""
    locator = ax.xaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def seen_average(matrix: list[list[float]]) -> list[float]:
    """Mean accuracy over the experiences trained so far, after each step (joint: over all)."""
    if len(matrix) == 1:
        return [float(np.mean(matrix[0]))]
    return [float(np.mean(row[: i + 1])) for i, row in enumerate(matrix)]


def plot_all(records: list[RunRecord], out: str | Path, title: str = "") -> list[Path]:
    """Write every figure into ``out`` and return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups = _by_strategy(records)
    if not groups:
        return []
    paths = [average_accuracy(groups, out / "average_accuracy.png", title),
             matrices(groups, out / "accuracy_matrices.png", title),
             costs(groups, out / "costs.png", title)]
    if "rnf" in groups and groups["rnf"][0].frozen_fractions:
        paths.append(frozen_fractions(groups["rnf"], out / "rnf_frozen_fraction.png", title))
    return paths


def average_accuracy(groups: dict[str, list[RunRecord]], path: Path, title: str) -> Path:
    """Average accuracy over the experiences seen so far, per strategy (the paper's Figure 1)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, runs in groups.items():
        curves = np.array([seen_average(r.matrix) for r in runs])
        mean, std = curves.mean(0), curves.std(0)
        steps = np.arange(1, curves.shape[1] + 1)
        if curves.shape[1] == 1:  # joint training: one point after the whole stream
            steps = np.array([len(runs[0].matrix[0])])
            ax.errorbar(steps, mean, yerr=std, fmt="*", markersize=11, label=name)
            continue
        style: dict[str, Any] = dict(linewidth=2.5, color="black") if name == "rnf" else {}
        ax.plot(steps, mean, marker="o", label=name, **style)
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
    ax.set(xlabel="experiences trained", ylabel="average accuracy over seen experiences",
           title=title or "Average accuracy", ylim=(0, 1.02))
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def matrices(groups: dict[str, list[RunRecord]], path: Path, title: str) -> Path:
    """Accuracy-matrix heatmap per strategy: row = after training step, column = experience."""
    names = [n for n, runs in groups.items() if len(runs[0].matrix) > 1]
    cols = min(3, max(len(names), 1))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        m = np.mean([r.matrix for r in groups[name]], axis=0)
        ax.axis("on")
        ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        ax.set(title=name, xlabel="experience", ylabel="after step")
        if m.shape[0] <= 10:
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
    fig.suptitle(title or "Accuracy matrices")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def costs(groups: dict[str, list[RunRecord]], path: Path, title: str) -> Path:
    """Training time, peak memory above the run's start, and state kept between experiences."""
    names = list(groups)
    panels = [
        ("training wall time (s)", lambda r: sum(r.train_seconds)),
        ("peak RSS above start (MiB)", lambda r: r.peak_rss_delta_mb),
        ("state kept (KiB)", lambda r: (r.state_bytes[-1] if r.state_bytes else 0) / 1024),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (label, get) in zip(axes, panels):
        values = [[get(r) for r in groups[n]] for n in names]
        ax.bar(names, [np.mean(v) for v in values], yerr=[np.std(v) for v in values], capsize=3,
               color=["black" if n == "rnf" else "tab:blue" for n in names])
        ax.set(title=label)
        ax.tick_params(axis="x", rotation=45)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "Cost")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def frozen_fractions(runs: list[RunRecord], path: Path, title: str) -> Path:
    """RNF's frozen fraction per layer after each experience (per-task heads, frozen whole, left out)."""
    layers = list(dict.fromkeys(k for f in runs[0].frozen_fractions for k in f if ".classifiers." not in k))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    steps = np.arange(1, len(runs[0].frozen_fractions) + 1)
    for layer in layers:
        values = np.mean([[f.get(layer, np.nan) for f in r.frozen_fractions] for r in runs], axis=0)
        ax.plot(steps, values, marker="o", label=layer, linewidth=2.5 if layer == "all" else 1.2)
    ax.set(xlabel="experiences trained", ylabel="frozen fraction of units", ylim=(0, 1.02),
           title=title or "RNF frozen fraction per layer")
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
