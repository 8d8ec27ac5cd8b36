"""Each task's own BatchNorms, for models that are told every input's task.

Freezing a BatchNorm channel for good freezes its affine parameters and running statistics too:
every later task must read the frozen units exactly as the task that kept them left them, scaled
and normalised for that task's data. A task-incremental model is told each input's task, so each
task can keep its own copy of every BatchNorm instead (four vectors per BatchNorm, a few KiB per
task). Later tasks then train every BatchNorm channel as BatchNorm trains, frozen channels
included, while the frozen units' weights stay frozen
(:class:`~avalanche_rnf.freezing.FreezeState`); an input of a finished task is normalised with
that task's values, so the task computes exactly what it did when it finished.

:class:`TaskNorms` keeps the values (:meth:`~TaskNorms.keep`) and hooks the model
(:meth:`~TaskNorms.attach`): in evaluation mode, a forward pass whose task labels name a kept task
computes each of its BatchNorms with that task's values, so the outputs are bit for bit the ones
the task had: without autograd (Avalanche's evaluation) the values are copied into the BatchNorms
for the pass and back after it; with autograd, which may hold the parameters for a backward pass,
each BatchNorm's output is computed again by the same ``F.batch_norm`` call ``nn.BatchNorm2d``
makes. A batch that mixes
tasks is computed task by task, as Avalanche's ``MultiTaskModule`` does itself. In training mode the
hooks change nothing. Attribution methods that merge BatchNorms into the layers before them (zennit's
canonizers) read the values themselves: run them inside :meth:`~TaskNorms.using`, or
:func:`using_task`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from avalanche_rnf.layers import NORM_TENSORS

Values = dict[str, dict[str, Tensor]]
"""BatchNorm name -> its tensors by attribute (those it has of ``NORM_TENSORS``)."""


class _Mixed:
    """Marks a forward pass over a batch that mixes tasks (recomputed task by task)."""


class _Swapped:
    """Marks a forward pass without autograd that runs with a kept task's values copied into the
    BatchNorms (so nothing is computed twice): what to write back after it."""

    def __init__(self, live: int | None, values: Values) -> None:
        self.live, self.values = live, values


_MIXED = _Mixed()


def _labels(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("task_labels")


class TaskNorms:
    """Every finished task's BatchNorm values, and the hooks that compute its inputs with them.

    ``wanted=False``: never enabled. ``enabled`` is ``None`` until the plugin decides (on for
    task-incremental models with BatchNorms).
    """

    def __init__(self, wanted: bool = True) -> None:
        self.wanted = wanted
        self.enabled: bool | None = None
        self.kept: dict[int, Values] = {}
        """Task label -> the values its BatchNorms had when the task finished."""
        self.live: int | None = None
        """The task whose values the parameters hold now (``None``: a task still training)."""
        self.training: set[int] = set()
        """The tasks of the experience that trains now: their inputs read the parameters' own values."""
        self._model: nn.Module | None = None
        self._names: tuple[str, ...] = ()
        self._handles: list[RemovableHandle] = []
        self._tasks: list[int | _Mixed | _Swapped | None] = []
        """Per forward pass under way (they nest when a mixed batch is split): the kept task it computes."""

    def decide(self, model: nn.Module, norms: Sequence[str], possible: bool) -> list[str]:
        """The BatchNorms of ``norms`` each task keeps: all of them where ``possible`` (the model is told
        each input's task and frozen units are isolated), unless not ``wanted``; decided at the first call."""
        names = batch_norms(model, norms)
        if self.enabled is None:
            self.enabled = bool(self.wanted and names and possible)
        return names if self.enabled else []

    # ------------------------------------------------------------------ keeping
    @torch.no_grad()
    def keep(self, model: nn.Module, names: Sequence[str], tasks: Sequence[int]) -> None:
        """Keep the current values of the BatchNorms ``names`` as those of ``tasks``."""
        for task in tasks:
            self.kept[int(task)] = {name: _values(model.get_submodule(name)) for name in names}
        self.live = int(tasks[0]) if len(tasks) == 1 else None
        self.training = set()

    def begin(self, model: nn.Module, tasks: Sequence[int]) -> None:
        """A task starts training: a kept task trains on from its own values; a new one from the current ones."""
        task = int(tasks[0]) if len(tasks) == 1 else None
        if task is not None and task in self.kept and task != self.live:
            self._write(model, self.kept[task])
        self.live = task if task is not None and task in self.kept else None
        self.training = {int(t) for t in tasks}

    @torch.no_grad()
    def _write(self, model: nn.Module, values: Values) -> Values:
        """Copy ``values`` into the BatchNorms; returns the values they held."""
        before: Values = {}
        for name, tensors in values.items():
            norm = model.get_submodule(name)
            before[name] = _values(norm)
            for attr, value in tensors.items():
                getattr(norm, attr).copy_(value)
        return before

    @contextlib.contextmanager
    def using(self, model: nn.Module, task: int) -> Iterator[None]:
        """The parameters hold ``task``'s values for the duration (for code that reads them itself)."""
        task = int(task)
        if not self._differs(task):
            yield
            return
        live, before = self.live, self._write(model, self.kept[task])
        self.live = task
        try:
            yield
        finally:
            self._write(model, before)
            self.live = live

    def _differs(self, task: int) -> bool:
        """``task`` is kept and its values are not the parameters' own now."""
        return task in self.kept and task != self.live and task not in self.training

    # ------------------------------------------------------------------ hooks
    def attach(self, model: nn.Module, names: Sequence[str] | None = None) -> None:
        """Hook ``model`` (called as ``model(x, task_labels)``) and its BatchNorms ``names`` (``None``: those
        kept); nothing changes if it is hooked already."""
        names = tuple(names) if names is not None else tuple(next(iter(self.kept.values()), {}))
        if self._model is model and self._names == names and self._handles:
            return
        self.release()
        if (other := of(model)) is not None:  # e.g. a deep copy's, come with the model
            other.release()
        self._model, self._names = model, names
        if not names:
            return
        self._handles = [model.register_forward_pre_hook(self._enter, with_kwargs=True),
                         model.register_forward_hook(self._leave, with_kwargs=True, always_call=True)]
        for name in names:
            self._handles.append(model.get_submodule(name).register_forward_hook(_KeptNorm(self, name)))

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._model, self._tasks = [], None, []

    def _enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        labels = _labels(args, kwargs) if not module.training and self.kept else None
        task: int | _Mixed | None = None
        if isinstance(labels, int):
            task = labels
        elif isinstance(labels, Tensor) and labels.numel():
            tasks = labels.unique()
            task = int(tasks) if tasks.numel() == 1 else _MIXED
        if isinstance(task, int) and not self._differs(task):
            task = None
        if isinstance(task, int) and not torch.is_grad_enabled():  # no autograd graph can hold the values
            self._tasks.append(_Swapped(self.live, self._write(module, self.kept[task])))
            self.live = task
            return
        self._tasks.append(task)

    def _leave(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        task = self._tasks.pop() if self._tasks else None
        if isinstance(task, _Swapped):
            self._write(module, task.values)
            self.live = task.live
            return None
        if task is not _MIXED or not isinstance(output, Tensor):
            return None
        labels = _labels(args, kwargs)
        if not any(self._differs(int(t)) for t in labels.unique()):
            return None
        x, out = args[0], output.new_zeros(output.shape)
        for t in labels.unique():  # as MultiTaskModule.forward, with each task's own values
            mask = labels == t
            part = module(x[mask], int(t))
            out[mask, : part.shape[1]] = part
        return out

    def active(self) -> int | None:
        """The kept task the innermost forward pass computes (``None``: the parameters' own values)."""
        task = self._tasks[-1] if self._tasks else None
        return task if isinstance(task, int) else None

    # ------------------------------------------------------------------ state
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for values in self.kept.values() for tensors in values.values()
                   for t in tensors.values())

    def state_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "live": self.live,
                "kept": {task: {name: {k: t.cpu().clone() for k, t in tensors.items()}
                                for name, tensors in values.items()} for task, values in self.kept.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load the kept values (a model hooked before stays hooked)."""
        model = self._model
        self.release()
        self.enabled, self.live, self.training = state["enabled"], state["live"], set()
        self.kept = {int(task): {name: {k: t.clone() for k, t in tensors.items()}
                                 for name, tensors in values.items()} for task, values in state["kept"].items()}
        if model is not None and self.kept:
            self.attach(model)


def _values(norm: nn.Module) -> dict[str, Tensor]:
    return {attr: getattr(norm, attr).detach().clone() for attr in NORM_TENSORS
            if getattr(norm, attr, None) is not None}


class _KeptNorm:
    """Forward hook of one BatchNorm: in evaluation mode, its output with the active kept task's values."""

    def __init__(self, owner: TaskNorms, name: str) -> None:
        self.owner, self.name = owner, name

    def __call__(self, module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        task = self.owner.active()
        if task is None or module.training:
            return None
        values = self.owner.kept[task][self.name]
        if any(t.device != output.device for t in values.values()):
            values = self.owner.kept[task][self.name] = {k: t.to(output.device) for k, t in values.items()}
        mean, var = values.get("running_mean"), values.get("running_var")
        return F.batch_norm(args[0], mean, var, values.get("weight"), values.get("bias"), mean is None, 0.0,
                            cast(float, module.eps))


def batch_norms(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Those of the modules ``names`` that are BatchNorms with parameters or running statistics."""
    return [name for name in names if isinstance(norm := model.get_submodule(name), nn.modules.batchnorm._NormBase)
            and (norm.affine or norm.track_running_stats)]


def of(model: nn.Module) -> TaskNorms | None:
    """The :class:`TaskNorms` hooked to ``model``, if any."""
    for hook in model._forward_pre_hooks.values():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, TaskNorms):
            return owner
    return None


@contextlib.contextmanager
def using_task(model: nn.Module, task: int) -> Iterator[None]:
    """``model``'s BatchNorm parameters hold ``task``'s own values for the duration, where RNF keeps
    them per task (a no-op elsewhere): for attributions that merge BatchNorms into their layers."""
    owner = of(model)
    with owner.using(model, task) if owner is not None else contextlib.nullcontext():
        yield
