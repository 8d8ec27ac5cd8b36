"""Task-agnostic RNF on a domain-incremental stream: every experience shares the output classes."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf import RNF, Capacity, Relevance, Retraining, TaskInference, Tolerance
from avalanche_rnf.bench.split_digits import SplitDigits
from avalanche_rnf.isolation import input_mask, unit_sources

STREAM = "Top1_Acc_Stream/eval_phase/test_stream/Task000"


@pytest.fixture
def digits_dil():
    """Five experiences of two digits each, both labelled 0 and 1: one two-class head for all."""
    return SplitDigits(5, return_task_id=False, class_ids_from_zero_in_each_exp=True, seed=0)


def _mlp(n_classes: int = 2) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_classes))


class _Outputs(SupervisedPlugin):
    """Records each evaluation batch's outputs and the task RNF recognised for each input."""

    def __init__(self, rnf):
        super().__init__()
        self.rnf, self.batches = rnf, []

    def after_eval_forward(self, strategy, **kwargs):  # runs before RNF's own (plugins come first)
        predicted = self.rnf.inference.predicted
        if predicted is not None:
            self.batches.append((strategy.mb_x, strategy.mb_output.detach().clone(), predicted.clone()))


def _strategy(model, plugins=(), **kwargs) -> RNF:
    return RNF(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4),
        tolerance=Tolerance(0.01), relevance=Relevance(reference_size=200),
        train_mb_size=32, train_epochs=8, eval_mb_size=256,
        plugins=list(plugins), evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]), **kwargs,
    )


@torch.no_grad()
def _as_task(model: nn.Sequential, rnf, x: torch.Tensor, task: int) -> torch.Tensor:
    """The outputs task ``task`` computes: the output layer reads only the units kept up to it."""
    model.eval()
    hidden = model[:-1](x)
    source = unit_sources(model, rnf.layers, set())["4"]
    mask = input_mask(model[4], source, {source.layer: rnf.task_inputs[task]}).flatten().float()
    return nn.functional.linear(hidden * mask, model[4].weight, model[4].bias)


def _assert_recognised_tasks_computed(outputs: _Outputs, model: nn.Sequential, rnf) -> None:
    """Evaluation gave each input exactly the outputs of the task it recognised."""
    for x, output, tasks in outputs.batches:
        for task in tasks.unique().tolist():
            rows = tasks == task
            assert torch.equal(output[rows], _as_task(model, rnf, x, task)[rows])


def _inputs(experience) -> torch.Tensor:
    return torch.stack([item[0] for item in experience.dataset])


def test_domain_task_inference_keeps_every_task_exactly_and_recognises_it(digits_dil):
    model = _mlp()
    outputs = _Outputs(None)
    strategy = _strategy(model, plugins=[outputs], task_inference=TaskInference(mode="domain"))
    outputs.rnf = strategy.rnf
    test = digits_dil.test_stream
    after = {}
    for i, experience in enumerate(digits_dil.train_stream):
        strategy.train(experience)
        after[i] = _as_task(model, strategy.rnf, _inputs(test[i]), i)
    assert strategy.rnf.inference.task_experiences == [0, 1, 2, 3, 4]
    for i in range(5):
        assert torch.equal(_as_task(model, strategy.rnf, _inputs(test[i]), i), after[i]), f"task {i} changed"

    outputs.batches.clear()
    metrics = strategy.eval(test)
    _assert_recognised_tasks_computed(outputs, model, strategy.rnf)
    recognised = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(5)]
    assert sum(recognised) / 5 > 0.6  # measured 0.824
    assert metrics[STREAM] > 0.85  # measured 0.940; without task inference 0.702 (the next test)

    # the shared output layer: no row frozen; its bias and the columns of the kept units are
    rnf = strategy.rnf
    assert rnf.freeze.frozen_fraction("4") == 0.0
    assert rnf.inference.entries.masks["4.bias"].all()
    owned = torch.stack(rnf.task_inputs)
    assert owned.sum(0).le(1).all() and owned.any(1).all()  # each task owns units of its own
    assert torch.equal(rnf.inference.entries.masks["4.weight"], owned.any(0).expand(2, -1))
    inference = rnf.inference
    assert inference.tap is None and inference._masking is None and not any(m._forward_hooks for m in model.modules())
    assert rnf.state_nbytes() > rnf.freeze.nbytes() + rnf.recognizer.nbytes()


def test_domain_task_inference_beats_rnf_without_it(digits_dil):
    scores = {}
    for mode in (None, "domain"):
        inference = TaskInference(mode=mode) if mode else None
        strategy = _strategy(_mlp(), task_inference=inference, isolate=None if mode else False)
        for experience in digits_dil.train_stream:
            strategy.train(experience)
        scores[mode] = strategy.eval(digits_dil.test_stream)[STREAM]
    assert scores["domain"] > scores[None] + 0.1  # measured 0.940 against 0.702


def test_domain_state_round_trips_through_state_dict(digits_dil):
    model = _mlp()
    strategy = _strategy(model, task_inference=TaskInference(mode="domain"))
    for experience in digits_dil.train_stream[:3]:
        strategy.train(experience)
    accuracy = strategy.eval(digits_dil.test_stream[:3])[STREAM]

    fresh = _mlp()
    fresh.load_state_dict(model.state_dict())
    restored = _strategy(fresh, task_inference=TaskInference(mode="domain"))
    restored.rnf.load_state_dict(strategy.rnf.state_dict())
    assert restored.eval(digits_dil.test_stream[:3])[STREAM] == accuracy
    restored.train(digits_dil.train_stream[3])  # the restored frozen columns hold while training on
    assert torch.equal(fresh[4].bias, model[4].bias)
    kept = strategy.rnf.inference.entries.masks["4.weight"]
    assert torch.equal(fresh[4].weight[kept], model[4].weight[kept])


def test_domain_retraining_trains_the_kept_sub_network_as_the_task_computes_it(digits_dil):
    model = _mlp()
    strategy = _strategy(model, task_inference=TaskInference(mode="domain"), retraining=Retraining(2))
    seen = []

    class Watch(SupervisedPlugin):
        def after_training_iteration(self, strategy_, **kwargs):  # after every after_update
            cuts = strategy.rnf.cuts.masks
            if "4.weight" in cuts:
                seen.append(bool(model[4].weight[cuts["4.weight"]].eq(0).all()))

    strategy.plugins.insert(0, Watch())
    for experience in digits_dil.train_stream[:2]:
        strategy.train(experience)
    assert seen and all(seen)  # the output layer read only the kept units while they retrained
    # scored as the task computes it: its own columns of the output layer, not every task's
    assert all(s.retrained_accuracy is not None and s.retrained_accuracy > 0.85 for s in strategy.rnf.searches)
    before = _as_task(model, strategy.rnf, _inputs(digits_dil.test_stream[0]), 0)
    strategy.train(digits_dil.train_stream[2])
    assert torch.equal(_as_task(model, strategy.rnf, _inputs(digits_dil.test_stream[0]), 0), before)


def test_class_inference_on_shared_classes_points_to_domain(digits_dil):
    strategy = _strategy(_mlp(), task_inference=TaskInference("class"))
    strategy.train(digits_dil.train_stream[0])
    with pytest.raises(ValueError, match="task_inference='domain'"):
        strategy.train(digits_dil.train_stream[1])
    with pytest.raises(ValueError, match="task_inference must be 'auto', 'class' or 'domain'"):
        _strategy(_mlp(), task_inference="task")
    with pytest.raises(ValueError, match="task_inference must be 'auto', 'class' or 'domain'"):
        _strategy(_mlp(), task_inference=TaskInference(mode="task"))


def _permuted_digits(n_experiences: int = 3):
    """The ten digits under a fixed pixel permutation per experience (the first unpermuted), as PermutedMNIST."""
    from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark

    from avalanche_rnf.bench.split_digits import digits_datasets

    train, test = digits_datasets()
    g = torch.Generator().manual_seed(0)
    perms = [torch.arange(64)] + [torch.randperm(64, generator=g) for _ in range(n_experiences - 1)]
    return tensors_benchmark([(train.tensors[0][:, p], train.tensors[1]) for p in perms],
                             [(test.tensors[0][:, p], test.tensors[1]) for p in perms],
                             task_labels=[0] * n_experiences)


def test_input_recognition_finds_each_permutation_and_keeps_every_task_exactly():
    bench = _permuted_digits()
    recognised, accuracy = {}, {}
    for layers in ("all", "input"):
        model = _mlp(n_classes=10)
        outputs = _Outputs(None)
        strategy = _strategy(model, plugins=[outputs],
                             task_inference=TaskInference(mode="domain", layers=layers, shrinkage=1.0))
        outputs.rnf = strategy.rnf
        for experience in bench.train_stream:
            strategy.train(experience)
        metrics = strategy.eval(bench.test_stream)
        recognised[layers] = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(3)]
        accuracy[layers] = metrics[STREAM]
        _assert_recognised_tasks_computed(outputs, model, strategy.rnf)
    tasks = strategy.rnf.recognizer.tasks
    assert all(torch.equal(task.columns, torch.arange(64)) and task.precision.shape == () for task in tasks)
    assert min(recognised["input"]) == 1.0 and min(recognised["all"]) < 1.0  # measured 1.0 against 0.998, 0.958, 0.751
    assert accuracy["input"] > accuracy["all"]  # measured 0.881 against 0.810


def test_a_task_without_units_in_front_of_the_output_layer_warns(digits_dil):
    from avalanche_rnf.selection import KeepFree

    model = _mlp()
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), selection=KeepFree(),
                   capacity=Capacity("unlimited"), task_inference=TaskInference(mode="domain", layers="input"),
                   relevance=Relevance(reference_size=50), train_mb_size=32, train_epochs=1,
                   evaluator=EvaluationPlugin(loggers=[]))
    strategy.train(digits_dil.train_stream[0])  # keeps every unit
    with pytest.warns(UserWarning, match="task 1 keeps no unit of '2', in front of the shared output layer"):
        strategy.train(digits_dil.train_stream[1])
    assert not strategy.rnf.task_inputs[1].any()
