"""Draw ``pipeline.svg``: what RNF does after each experience, and what the network looks like then.

Run from the repository root: ``python docs/figures/pipeline.py`` (matplotlib only; the SVG is committed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_name("pipeline.svg")
TASK_COLOURS = ("#1f77b4", "#ff7f0e")
FREE = "#d9d9d9"

STEPS = (
    ("1  Train", "experience t:\nthe free units learn,\nfrozen ones stay fixed"),
    ("2  LRP relevance", "zennit on a class-balanced\nreference set: one score\nper Linear unit / Conv2d filter"),
    ("3  Select", "fewest units carrying the\nrelevance mass, or the smallest\n"
                  "mass within max_drop (held out),\nat most the capacity share"),
    ("4  Retrain (optional)", "the kept sub-network alone,\nfor the last retrain epochs"),
    ("5  Freeze + isolate", "kept units fixed bit for bit;\ntheir weights from free units\nset to zero; head frozen"),
)


def _box(ax, x, y, w, h, title, text, colour):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.04",
                                fc=colour, ec="#333333", lw=1))
    ax.text(x + w / 2, y + h - 0.09, title, ha="center", va="top", fontsize=10, weight="bold")
    ax.text(x + w / 2, y + h - 0.27, text, ha="center", va="top", fontsize=7.5, linespacing=1.3)


def _arrow(ax, start, end, **kw):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="#333333", **kw))


def draw_pipeline(ax):
    w, h, gap = 1.55, 1.0, 0.28
    for i, (title, text) in enumerate(STEPS):
        x = i * (w + gap)
        _box(ax, x, 0, w, h, title, text, "#eef4fb" if i != 3 else "#f6f6f6")
        if i:
            _arrow(ax, (x - gap, h / 2), (x, h / 2))
    end = len(STEPS) * (w + gap) - gap
    _arrow(ax, (end - w / 2, -0.02), (w / 2, -0.02), connectionstyle="arc3,rad=-0.12")
    ax.text(end / 2, -0.5, "next experience t + 1: fewer free units, earlier tasks unchanged",
            ha="center", va="center", fontsize=9, style="italic")
    ax.set_xlim(-0.1, end + 0.1)
    ax.set_ylim(-0.62, h + 0.05)
    ax.axis("off")


def draw_network(ax):
    """Three layers after two tasks: units of task 1, task 2, free; which weights exist."""
    layers = [6, 6, 6]
    owner = [[0, 0, 1, 1, None, None], [0, 1, 1, None, None, None], [0, 0, 1, None, None, None]]
    pos = {(li, ui): (li * 2.2, 5 - ui) for li, n in enumerate(layers) for ui in range(n)}
    for li in range(len(layers) - 1):
        for a in range(layers[li]):
            for b in range(layers[li + 1]):
                src, dst = owner[li][a], owner[li + 1][b]
                if dst is None:
                    style = dict(color="#bbbbbb", lw=0.5)  # free units read everything
                elif src is not None and src <= dst:
                    style = dict(color=TASK_COLOURS[dst], lw=1.0)  # frozen, read by the same or a later task
                else:
                    continue  # isolated: a frozen unit never reads a free or a later unit
                (x0, y0), (x1, y1) = pos[li, a], pos[li + 1, b]
                ax.plot([x0, x1], [y0, y1], zorder=1, **style)
    for (li, ui), (x, y) in pos.items():
        o = owner[li][ui]
        ax.scatter([x], [y], s=170, zorder=2, c=FREE if o is None else TASK_COLOURS[o], edgecolors="#333333")
    for i, label in enumerate(("task 1 (frozen)", "task 2 (frozen)")):
        ax.scatter([], [], s=60, c=TASK_COLOURS[i], edgecolors="#333333", label=label)
    ax.scatter([], [], s=60, c=FREE, edgecolors="#333333", label="free (trains on the next task)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8.5)
    ax.set_title("after two tasks (isolation on): a task's units read only its own and earlier tasks' units",
                 fontsize=9)
    ax.set_xlim(-0.5, 4.9)
    ax.set_ylim(-0.6, 5.6)
    ax.axis("off")


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "avalanche-rnf"
    fig = plt.figure(figsize=(10, 6.2))
    draw_pipeline(fig.add_axes([0.01, 0.52, 0.98, 0.46]))
    draw_network(fig.add_axes([0.12, 0.02, 0.5, 0.44]))
    fig.savefig(OUT, metadata={"Date": None})
    print(OUT)


if __name__ == "__main__":
    main()
