"""A Weights & Biases logger for Avalanche that works with current wandb.

Avalanche 0.6's ``WandBLogger`` calls ``wandb.util.generate_id`` and ``wandb.viz.CustomChart``,
which current wandb no longer has. This one is a plain Avalanche ``BaseLogger``: every metric
the evaluator emits is logged (scalars, images, figures), plus the harness's accuracy matrix
(as a table) and plots. Runs go online when wandb has credentials, offline otherwise (or as
``WANDB_MODE`` says); offline runs sync later with ``wandb sync``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Sequence, cast

import numpy as np
import torch
from avalanche.evaluation.metric_results import AlternativeValues, TensorImage
from avalanche.logging import BaseLogger

Mode = Literal["online", "offline", "disabled", "shared"]
"""wandb's run modes (``wandb.init(mode=...)``)."""


def _logged_in(wandb) -> bool:
    """Whether wandb has usable credentials, without prompting; any failure (no network, bad key) means no."""
    try:
        return bool(wandb.login(prompt=False))
    except Exception:
        return False


class WandBLogger(BaseLogger):
    """Log Avalanche metrics to a W&B run (``project``, ``name``, ``group``, ``config``)."""

    def __init__(self, project: str, name: str | None = None, group: str | None = None,
                 config: dict[str, Any] | None = None, dir: str | os.PathLike | None = None,
                 mode: Mode | None = None):
        super().__init__()
        import wandb

        self.wandb = wandb
        if mode is None:
            # WANDB_MODE as given: wandb.init checks it
            mode = cast(Mode, os.environ.get("WANDB_MODE") or ("online" if _logged_in(wandb) else "offline"))
        if dir is not None:
            Path(dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, group=group, config=config, dir=dir, mode=mode,
                              reinit="create_new")

    def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
        value = self._convert(value)
        if value is not None:
            self.run.log({name: value})

    def _convert(self, value: Any):
        if isinstance(value, AlternativeValues):
            value = value.best_supported_value(float, int, torch.Tensor, TensorImage, object)
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, torch.Tensor):
            if value.numel() == 1:
                return value.item()
            # wandb's annotation says Sequence; the values go to np.histogram, which takes an array
            return self.wandb.Histogram(value.detach().cpu().numpy())  # type: ignore[arg-type]
        if isinstance(value, TensorImage):
            return self.wandb.Image(np.moveaxis(np.asarray(value.image), 0, -1))
        try:
            return self.wandb.Image(value)  # PIL images and matplotlib figures
        except Exception:
            return None

    def log_matrix(self, name: str, matrix: Sequence[Sequence[float | None]]) -> None:
        """An accuracy (or drift) matrix as a table (row: after training step, column: experience; None: empty)."""
        columns: list[str | int] = ["after step", *(f"exp {j}" for j in range(len(matrix[0])))]
        self.run.log({name: self.wandb.Table(columns=columns, data=[[i, *row] for i, row in enumerate(matrix)])})

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A table of ``rows`` under ``columns`` (the explanation drift per strategy, for instance)."""
        self.run.log({name: self.wandb.Table(columns=list(columns), data=[list(row) for row in rows])})

    def log_summary(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if value is not None:
                self.run.summary[key] = value

    def log_images(self, paths: list[Path]) -> None:
        self.run.log({f"plots/{Path(p).stem}": self.wandb.Image(str(p)) for p in paths})

    def close(self) -> None:
        self.run.finish()
