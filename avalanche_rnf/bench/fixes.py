"""Workarounds for avalanche-lib 0.6 bugs that would distort the comparison.

Synaptic Intelligence on CPU: ``SynapticIntelligencePlugin.extract_weights`` stores
``param.detach().cpu().flatten()``, which on a CPU tensor is a view of the live parameter, not a
copy. The "old" and "new" weights, and the anchor weights of the penalty, then all alias the
current weights: the path integral and the penalty are exactly zero and SI trains exactly like
Naive (on CUDA ``.cpu()`` copies, so GPU runs are unaffected). :class:`CopyingSIPlugin` runs
Avalanche's own plugin with the extraction copying; ``si_upstream`` in the harness keeps the
unfixed behaviour for comparison.

Class-balanced buffers over many task-labelled experiences: ``ClassBalancedBuffer`` (ER-ACE's, and
online Replay's in the harness) concatenates and subsets its samples after every experience. The
task-label attribute of a stream with more than one task does not flatten, so it nests one level
deeper per update; after about a thousand sub-experiences (an online task-incremental stream)
reading a sample exceeds Python's recursion limit. :class:`FlatClassBalancedBuffer` stores each
class's task labels as one flat tensor after each update; the samples it keeps are unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from avalanche.training.plugins import SynapticIntelligencePlugin
from avalanche.training.storage_policy import ClassBalancedBuffer


@torch.no_grad()
def _copy_weights(model, target, excluded_parameters):
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().flatten().cpu().clone()


@torch.no_grad()
def _copy_grads(model, target, excluded_parameters):
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.grad.detach().flatten().cpu().clone()


@contextmanager
def _copying_extraction():
    cls = SynapticIntelligencePlugin
    saved = cls.__dict__["extract_weights"], cls.__dict__["extract_grad"]
    cls.extract_weights, cls.extract_grad = staticmethod(_copy_weights), staticmethod(_copy_grads)
    try:
        yield
    finally:
        cls.extract_weights, cls.extract_grad = saved


class CopyingSIPlugin(SynapticIntelligencePlugin):
    """Avalanche's SI plugin with weights and gradients copied when stored (see module docstring)."""

    def before_training_exp(self, strategy, **kwargs):
        with _copying_extraction():
            super().before_training_exp(strategy, **kwargs)

    def before_training_iteration(self, strategy, **kwargs):
        with _copying_extraction():
            super().before_training_iteration(strategy, **kwargs)

    def after_training_iteration(self, strategy, **kwargs):
        with _copying_extraction():
            super().after_training_iteration(strategy, **kwargs)

    def after_training_exp(self, strategy, **kwargs):
        with _copying_extraction():
            super().after_training_exp(strategy, **kwargs)


class FlatClassBalancedBuffer(ClassBalancedBuffer):
    """Avalanche's ``ClassBalancedBuffer`` with each class's task labels flattened after each update
    (see module docstring)."""

    def update_from_dataset(self, new_data, strategy=None):
        super().update_from_dataset(new_data, strategy)
        for group in self.buffer_groups.values():
            labels = getattr(group.buffer, "targets_task_labels", None)
            if labels is not None:
                group.buffer = group.buffer.update_data_attribute("targets_task_labels", torch.as_tensor(list(labels)))
