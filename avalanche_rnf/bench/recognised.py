"""Peers with RNF's task recogniser: strategies that train with task labels and are evaluated without.

In a domain-incremental stream RNF infers each input's task from statistics it keeps per task (at
its defaults, the class means of the inputs) and runs that task's units; the regularisers get no
task identity at all. :class:`RecognisedTasks` gives any task-incremental strategy the same
recogniser: after each experience it learns the experience's tasks from a class-balanced sample of
their inputs (a :class:`~avalanche_rnf.recognition.TaskRecognizer` with full shrinkage: the
nearest class mean, RNF's domain default), and at evaluation it replaces every input's task label
by the one it recognises, so the strategy's task heads are picked as RNF's units are. It stores
statistics, never inputs. ``rnf-bench --infer-tasks`` adds it to every strategy of a
task-incremental stream. A model that computes one task per forward pass (PackNet's) is run once
per recognised task of a batch (``split_batches``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor
from torch.utils.data import DataLoader

from avalanche_rnf import glue
from avalanche_rnf.recognition import TaskRecognizer
from avalanche_rnf.reference import balanced_indices, check_reference_size

SAMPLES = 3000
"""Inputs per task (class-balanced) whose statistics the recogniser keeps, by default."""

METRIC = "Recognised/TaskRecognition"
"""Share of an evaluated experience's inputs whose task was recognised: ``METRIC/eval_phase/<stream>/Exp<k>``."""


def flattened(inputs: Tensor) -> Tensor:
    """Each input as one row of its values (what a network whose first layer is Linear reads)."""
    return inputs.flatten(1).float()


class RecognisedTasks(SupervisedPlugin):
    """Learn each trained task's input statistics; at evaluation, feed the strategy the recognised task labels.

    :param samples: inputs per task (class-balanced) whose statistics are kept (``None``: all).
    :param shrinkage: the recogniser's covariance shrinkage (``1``: nearest class mean, no covariance).
    :param features: what the recogniser reads of a batch of inputs (default: the flattened inputs).
    :param seed: seed of the samples drawn.
    :param split_batches: at evaluation, run the model once per recognised task of a batch (for models
        that compute one task per forward pass, such as PackNet's).
    """

    def __init__(self, samples: int | None = SAMPLES, shrinkage: float = 1.0,
                 features: Callable[[Tensor], Tensor] = flattened, seed: int = 0,
                 split_batches: bool = False) -> None:
        super().__init__()
        self.samples, self.features, self.seed = check_reference_size(samples, "samples"), features, seed
        self.split_batches = split_batches
        self.recognizer = TaskRecognizer(shrinkage=shrinkage)
        self.task_labels: list[int] = []
        """The task label of each task the recogniser learned, in the order learned."""
        self.recognised = [0, 0]

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        dataset = strategy.adapted_dataset.eval()
        tasks = torch.as_tensor(list(dataset.targets_task_labels))
        targets = torch.as_tensor(list(dataset.targets))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + strategy.clock.train_exp_counter)
        for task in tasks.unique().tolist():
            if task in self.task_labels:  # learned before (Joint training sees every task at once)
                continue
            where = (tasks == task).nonzero().flatten()
            picked = where[balanced_indices(targets[where], self.samples, generator)]
            subset = dataset.subset(picked.tolist())
            loader = DataLoader(subset, batch_size=1024, collate_fn=subset.collate_fn)
            parts = [(self.features(x), y) for x, y, *_ in loader]
            features, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            self.recognizer.add_task(torch.arange(features.shape[1]), features, labels)
            self.task_labels.append(int(task))

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        if self.split_batches:  # an instance attribute shadows the class's forward until after_eval
            strategy.model.forward = per_task(type(strategy.model).forward.__get__(strategy.model))

    def after_eval(self, strategy: Any, **kwargs: Any) -> None:
        if self.split_batches and "forward" in vars(strategy.model):
            del strategy.model.forward

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.recognised = [0, 0]

    def before_eval_forward(self, strategy: Any, **kwargs: Any) -> None:
        if not self.task_labels:
            return
        true = strategy.mbatch[-1]
        predicted = torch.as_tensor(self.task_labels)[self.recognizer.predict(self.features(strategy.mb_x)).cpu()]
        predicted = predicted.to(true.device, true.dtype)
        self.recognised[0] += int((predicted == true).sum())
        self.recognised[1] += len(true)
        strategy.mbatch[-1] = predicted

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        correct, total = self.recognised
        if total:
            name = f"{METRIC}/eval_phase/{glue.stream_name(strategy.experience)}/" \
                   f"Exp{strategy.experience.current_experience:03d}"
            glue.publish(strategy, self, {name: correct / total}, strategy.clock.train_iterations)

    def nbytes(self) -> int:
        """Bytes of the statistics kept."""
        return self.recognizer.nbytes()


def per_task(forward: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """``forward(x, task_labels)`` run once per task label of the batch, the outputs put back in the
    batch's order (narrower outputs padded with zeros)."""
    def grouped(x: Tensor, task_labels: Tensor) -> Tensor:
        tasks = task_labels.unique()
        if len(tasks) == 1:
            return forward(x, task_labels)
        masks = [task_labels == task for task in tasks]
        outputs = [(where, forward(x[where], task_labels[where])) for where in masks]
        width = max(out.shape[1] for _, out in outputs)
        merged = outputs[0][1].new_zeros(len(x), width)
        for where, out in outputs:
            merged[where, :out.shape[1]] = out
        return merged
    return grouped
