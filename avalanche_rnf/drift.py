"""Explanation drift: do a model's explanations of an old task change while it learns new ones?

:class:`ExplanationDriftPlugin` works inside any Avalanche strategy (Naive, EWC, Replay, RNF, ...).
After each training experience it picks a seeded probe set of that experience's training data
(a few samples per class, eval transforms), computes the LRP heatmaps
(:func:`~avalanche_rnf.explain.heatmaps`) of every probe set seen so far, and compares each earlier
experience's heatmaps with those made right after it was learned: the mean cosine similarity and
the rank correlation of the top-k relevant input features (1.0 for both: no drift). Both are
published as metric values ``XAI/Drift/cosine/Task{t:03d}`` and ``XAI/Drift/rank/Task{t:03d}``,
where ``t`` counts the experiences of the stream.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor

from avalanche_rnf import explain, glue
from avalanche_rnf.explain import CompositeSpec, heatmaps

Measure = Literal["cosine", "rank"]
MEASURES: tuple[Measure, ...] = ("cosine", "rank")


def metric_name(measure: Measure, task: int) -> str:
    """The name a drift value is published under."""
    return f"XAI/Drift/{measure}/Task{task:03d}"


class ExplanationDriftPlugin(SupervisedPlugin):
    """Heatmaps of a fixed probe set per experience, and how they drift over later experiences.

    :param probe_per_class: probe samples per class of each experience.
    :param top_k: input features (of the reference map) the rank correlation looks at.
    :param composite: zennit composite or its name; ``None``: :func:`~avalanche_rnf.explain.default_composite`.
    :param seed: seed of the probe sets (the global random state is not touched).
    :param batch_size: samples per LRP pass.
    :param probe_stream: where the probe sets come from: ``None``, each training experience's own
        data (eval transforms); or a stream indexed like the training stream, e.g. the benchmark's
        ``test_stream``: experience ``t``'s probes are then drawn from ``probe_stream[t]``.

    The heatmaps are computed once every plugin has finished the experience (in the next
    ``before_train_dataset_adaptation`` or in ``after_training``, whichever comes first), so they
    show the model as it goes on: after RNF has frozen and isolated its units, for instance.
    Attributes, filled as the stream goes on (``s`` counts the experiences trained, from 0):

    - ``probes[t]``: ``(x, y, task_labels)`` of experience ``t``'s probe set (CPU tensors);
    - ``maps[t][s]``: their heatmaps after step ``s`` (float16, shaped like ``x``);
    - ``learned[t]``: the step that last trained experience ``t`` (its reference maps);
    - ``values[s]``: the metric values published after step ``s``; ``seconds[s]``: time spent.
    """

    def __init__(self, *, probe_per_class: int = 4, top_k: int = 64, composite: CompositeSpec = None, seed: int = 0,
                 batch_size: int = 256, probe_stream: Any = None) -> None:
        super().__init__()
        if isinstance(probe_per_class, bool) or not isinstance(probe_per_class, int) or probe_per_class <= 0:
            raise ValueError(f"probe_per_class must be a positive number of samples, got {probe_per_class!r}.")
        if top_k < 2:
            raise ValueError(f"top_k must be at least 2, got {top_k}.")
        self.probe_per_class, self.top_k, self.composite = probe_per_class, top_k, composite
        self.seed, self.batch_size, self.probe_stream = seed, batch_size, probe_stream
        self.probes: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        self.maps: dict[int, dict[int, Tensor]] = {}
        self.learned: dict[int, int] = {}
        self.values: list[dict[str, float]] = []
        self.seconds: list[float] = []
        self._pending: Any = None
        self._parts = 0  # online: sub-experiences seen of the current origin experience

    # ------------------------------------------------------------------ callbacks
    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        experience = strategy.experience
        if glue.is_online(experience):
            if not getattr(experience, "access_task_boundaries", False):
                raise ValueError("ExplanationDriftPlugin compares explanations when a task ends, but this online "
                                 "stream hides its task boundaries: make it with split_online_stream(..., "
                                 "access_task_boundaries=True).")
            self._parts = 1 if experience.is_first_subexp else self._parts + 1
            if not glue.ends_origin(experience, self._parts):
                return
            experience = experience.origin_experience
        self._pending = experience

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        self._flush(strategy)

    def after_training(self, strategy: Any, **kwargs: Any) -> None:
        self._flush(strategy)

    def _flush(self, strategy: Any) -> None:
        if self._pending is not None:
            experience, self._pending = self._pending, None
            values = self.update(strategy.model, experience, device=strategy.device)
            glue.publish(strategy, self, values, strategy.clock.train_exp_counter)

    # ------------------------------------------------------------------ work
    def pick_probes(self, experience: Any) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, y, task_labels)`` of a seeded class-balanced sample of the experience's data (or of
        ``probe_stream``'s experience of the same index), with eval transforms, on the CPU."""
        if self.probe_stream is not None:
            index = int(experience.current_experience)
            if index >= len(self.probe_stream):
                raise ValueError(f"probe_stream has {len(self.probe_stream)} experiences, so it has no probes for "
                                 f"experience {index}: pass a stream indexed like the training stream.")
            experience = self.probe_stream[index]
        dataset = experience.dataset
        dataset = dataset.eval() if hasattr(dataset, "eval") else dataset
        generator = torch.Generator().manual_seed(glue.sample_seed(self.seed, experience))
        indices = explain.probe_indices(torch.as_tensor(list(dataset.targets)), self.probe_per_class, generator)
        with torch.random.fork_rng(devices=[]):  # random eval transforms must not move the global RNG
            items = [dataset[int(i)][:3] for i in indices]
        if not items:
            raise ValueError(f"Experience {experience.current_experience} has no samples to explain.")
        x = torch.stack([torch.as_tensor(item[0]) for item in items]).cpu()
        y, t = (torch.as_tensor([int(item[k]) for item in items]) for k in (1, 2))
        return x, y, t

    def update(self, model: torch.nn.Module, experience: Any, device: Any = "cpu") -> dict[str, float]:
        """Record the heatmaps after ``experience`` was trained; returns the drift values (and the
        seconds spent, ``XAI/Time_s``)."""
        start = time.perf_counter()
        step = len(self.values)
        index = int(experience.current_experience)
        if index not in self.probes:
            self.probes[index] = self.pick_probes(experience)
        self.learned[index] = step
        values: dict[str, float] = {}
        for task, (x, y, t) in sorted(self.probes.items()):
            maps = heatmaps(model, x.to(device), y.to(device), t.to(device), self.composite, glue.forward,
                            batch_size=self.batch_size)
            self.maps.setdefault(task, {})[step] = maps.detach().to("cpu", torch.float16)
            if self.learned[task] < step:
                values.update(self.drift(task, self.learned[task], step))
        self.seconds.append(time.perf_counter() - start)
        self.values.append(dict(values))
        return {**values, "XAI/Time_s": self.seconds[-1]}

    def drift(self, task: int, reference: int, step: int) -> dict[str, float]:
        """Both drift measures of ``task``'s probe set between two steps, by metric name."""
        a, b = (explain.pixel_maps(self.maps[task][s].float()) for s in (reference, step))
        return {metric_name("cosine", task): explain.cosine_similarity(a, b),
                metric_name("rank", task): explain.rank_correlation(a, b, self.top_k)}

    # ------------------------------------------------------------------ views
    def matrix(self, measure: Measure = "cosine") -> np.ndarray:
        """``[steps, experiences]`` drift values (NaN where an experience was not yet an old one)."""
        tasks = max(self.probes, default=-1) + 1
        out = np.full((len(self.values), tasks), np.nan)
        for step, values in enumerate(self.values):
            for task in range(tasks):
                out[step, task] = values.get(metric_name(measure, task), np.nan)
        return out

    def curve(self, measure: Measure = "cosine") -> list[float]:
        """Per step, the mean drift value over the old experiences (NaN where there is none)."""
        rows = [[v for k, v in values.items() if k.startswith(f"XAI/Drift/{measure}/")] for values in self.values]
        return [float(np.mean(row)) if row else math.nan for row in rows]

    def maps_after(self, task: int) -> list[Tensor]:
        """Heatmaps of ``task``'s probe set after each step since it was first explained."""
        return [self.maps[task][s] for s in sorted(self.maps.get(task, {}))]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything the plugin keeps, as CPU tensors and plain Python values."""
        return {"probes": {k: tuple(v) for k, v in self.probes.items()},
                "maps": {k: dict(v) for k, v in self.maps.items()}, "learned": dict(self.learned),
                "values": [dict(v) for v in self.values], "seconds": list(self.seconds)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.probes = {int(k): (v[0], v[1], v[2]) for k, v in state["probes"].items()}
        self.maps = {int(k): {int(s): m for s, m in v.items()} for k, v in state["maps"].items()}
        self.learned = {int(k): int(v) for k, v in state["learned"].items()}
        self.values = [dict(v) for v in state["values"]]
        self.seconds = list(state["seconds"])
        self._pending = None

    def save_npz(self, path: str | Path) -> Path:
        """Write every probe set and heatmap to ``path`` (an ``.npz``) atomically: a temporary file in
        the same folder, then renamed over ``path``. Arrays: ``x_exp{t:03d}``, ``y_exp{t:03d}``,
        ``task_exp{t:03d}``, ``maps_exp{t:03d}_after{s:03d}`` (float16), ``drift_cosine`` and
        ``drift_rank`` (:meth:`matrix`), ``seconds``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}  # numpy arrays (Any: savez also takes an allow_pickle keyword)
        for task, (x, y, t) in self.probes.items():
            arrays.update({f"x_exp{task:03d}": x.numpy(), f"y_exp{task:03d}": y.numpy(),
                           f"task_exp{task:03d}": t.numpy()})
            for step, maps in self.maps.get(task, {}).items():
                arrays[f"maps_exp{task:03d}_after{step:03d}"] = maps.numpy().astype(np.float16)
        for measure in MEASURES:
            arrays[f"drift_{measure}"] = self.matrix(measure)
        arrays["seconds"] = np.asarray(self.seconds, dtype=np.float64)
        tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # a new file's mode (umask applies)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays :meth:`ExplanationDriftPlugin.save_npz` wrote, by name."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
