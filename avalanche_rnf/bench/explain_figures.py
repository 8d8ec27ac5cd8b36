"""Figures of explanations over a stream (PNG, matplotlib): heatmap grids, drift curves, unit relevance.

Each function takes plain data (arrays or tensors, e.g. from
:class:`~avalanche_rnf.drift.ExplanationDriftPlugin` or ``RNFPlugin.raw_scores``) and the path to
write, and returns that path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _array(a: Any) -> np.ndarray:
    """A float64 array of a numpy array or (CPU or not) tensor."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=np.float64)


def _image(sample: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """One sample's map or input as a 2-D image (channels summed) or, for RGB inputs, ``[H, W, 3]``."""
    if sample.ndim == 3 and sample.shape[0] == 1:
        return sample[0]
    if sample.ndim == 3:
        return sample
    if sample.ndim == 2:
        return sample
    side = math.isqrt(sample.size)
    if shape is None and side * side != sample.size:
        raise ValueError(f"Cannot show a map of {sample.size} features as an image: pass image_shape.")
    return sample.reshape(shape if shape is not None else (side, side))


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def heatmap_grid(runs: Mapping[str, Sequence[Any]], path: str | Path, *, images: Any = None,
                 image_shape: tuple[int, int] | None = None, max_rows: int = 8, title: str = "") -> Path:
    """Heatmaps of the same probe images after each experience, one block of columns per run.

    :param runs: per run (e.g. strategy name), the heatmaps of the probe images after experience
        1, 2, ..., each ``[n_probes, ...]`` (channels are summed; flat maps are reshaped to
        ``image_shape`` or a square).
    :param images: the probe inputs ``[n_probes, ...]``, shown in a first column.
    :param max_rows: probe images shown (rows), from the first.

    Red is relevance for the true label, blue against it; each row shares one colour scale, so a
    change of colour along a row is drift.
    """
    if not runs or any(len(maps) == 0 for maps in runs.values()):
        raise ValueError("heatmap_grid needs at least one run with maps after at least one experience.")
    blocks = {name: [_array(m) for m in maps] for name, maps in runs.items()}
    n = min(max_rows, min(len(m) for maps in blocks.values() for m in maps))
    inputs = None if images is None else _array(images)
    columns: list[tuple[str, list[np.ndarray], bool]] = []
    if inputs is not None:
        columns.append(("input", [_image(inputs[i], image_shape) for i in range(n)], False))
    for name, maps in blocks.items():
        for step, m in enumerate(maps, start=1):
            pixels = [_image(m[i].sum(0) if m[i].ndim == 3 else m[i], image_shape) for i in range(n)]
            columns.append((f"{name}\nafter exp {step}", pixels, True))
    scale = [max(float(np.abs(col[1][i]).max()) for col in columns if col[2]) or 1.0 for i in range(n)]
    fig, axes = plt.subplots(n, len(columns), figsize=(1.3 * len(columns) + 0.4, 1.3 * n + 0.6), squeeze=False)
    for j, (label, pixels, is_map) in enumerate(columns):
        for i in range(n):
            ax = axes[i, j]
            if is_map:
                ax.imshow(pixels[i], cmap="bwr", vmin=-scale[i], vmax=scale[i])
            else:
                img = pixels[i]
                if img.ndim == 3:  # RGB, channels first
                    img = np.moveaxis(img, 0, -1)
                    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=7)
    fig.suptitle(title or "Heatmaps of the first task's probe images")
    fig.tight_layout()
    return _save(fig, path)


def _curves(values: Any) -> np.ndarray:
    """``[seeds, steps]`` from one curve or several."""
    a = _array(values)
    return a[None] if a.ndim == 1 else a


def drift_curves(cosine: Mapping[str, Any], path: str | Path, *, rank: Mapping[str, Any] | None = None,
                 title: str = "") -> Path:
    """Explanation drift over the stream per strategy, like the accuracy-over-experiences figure.

    :param cosine: per strategy, the mean cosine similarity of the old experiences' heatmaps to
        those made right after they were learned, after each experience (one curve, or one per
        seed as ``[seeds, steps]``; NaN where there is no old experience yet, e.g. the first).
    :param rank: the same for the top-k rank correlation: a second panel.

    Lines are means over seeds, bands one standard deviation; 1.0 means no drift.
    """
    panels = [("mean cosine similarity", cosine)] + ([("top-k rank correlation", rank)] if rank is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.2), squeeze=False)
    for ax, (label, data) in zip(axes[0], panels):
        for name, values in data.items():
            curves = _curves(values)
            ok = ~np.isnan(curves).all(0)
            steps, kept = np.arange(1, curves.shape[1] + 1)[ok], curves[:, ok]
            mean, std = np.nanmean(kept, 0), np.nanstd(kept, 0)
            # RNF thick and underneath: a strategy on the same values (1.0 with isolation) stays visible
            style: dict[str, Any] = dict(linewidth=4, markersize=9, color="black", zorder=1.9) if name == "rnf" else {}
            ax.plot(steps, mean, marker="o", label=name, **style)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
        ax.set(xlabel="experiences trained", ylabel=f"{label} (old experiences)", ylim=(-0.05, 1.05), title=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.suptitle(title or "Explanation drift (1.0: explanations unchanged)")
    fig.tight_layout()
    return _save(fig, path)


def unit_relevance(raw_scores: Sequence[Mapping[str, Any]], path: str | Path, *, layers: Sequence[str] | None = None,
                   title: str = "") -> Path:
    """Relevance of every unit per layer (panels) and experience (rows): which units each task relied on.

    :param raw_scores: per experience, the mean relevance per unit of each layer
        (``RNFPlugin.raw_scores``).
    :param layers: the layers to show, top to bottom; default: every layer scored except per-task
        heads (names with ``.classifiers.``), from the input up (``raw_scores`` lists a layer when
        relevance first reaches it, from the output down).

    Each row is scaled to its largest unit, so rows of different experiences compare by pattern;
    units a layer does not have at an experience (grown later, or not scored) are left blank.
    """
    if not raw_scores:
        raise ValueError("unit_relevance needs the scores of at least one experience.")
    if layers is None:
        layers = list(dict.fromkeys(k for s in raw_scores for k in s if ".classifiers." not in k))[::-1]
    if not layers:
        raise ValueError("No layer to show: pass layers=[...].")
    height = 1.0 + len(layers) * (0.6 + 0.35 * len(raw_scores))
    fig, axes = plt.subplots(len(layers), 1, figsize=(8.0, height), squeeze=False)
    for ax, layer in zip(axes[:, 0], layers):
        rows = [_array(s[layer]).reshape(-1) if layer in s else np.zeros(0) for s in raw_scores]
        width = max(len(r) for r in rows) or 1
        image = np.full((len(rows), width), np.nan)
        for e, r in enumerate(rows):
            top = float(np.abs(r).max()) if len(r) else 0.0
            image[e, : len(r)] = np.abs(r) / top if top > 0 else 0.0
        shown = ax.imshow(image, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set(title=layer, xlabel="unit", ylabel="experience")
        ax.set_yticks(range(len(rows)), [str(e + 1) for e in range(len(rows))])
        fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
    fig.suptitle(title or "Unit relevance per layer and experience (each row scaled to its maximum)")
    fig.tight_layout()
    return _save(fig, path)
