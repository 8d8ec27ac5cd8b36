"""RNF at its defaults on the models people train: Avalanche's and torchvision's CNNs and ResNets.

Each model trains three tiny experiences in a plain Avalanche ``Naive`` pipeline with
``RNFPlugin()``. Frozen groups must stay bit-identical under SGD (momentum, weight decay) and
AdamW, and in task-incremental runs a finished task's outputs must stay ``torch.equal``.
"""

from __future__ import annotations

import warnings
from typing import Callable

import pytest
import torch
import torchvision.models as tv
from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark
from avalanche.models import (
    IncrementalClassifier,
    MTSimpleCNN,
    MTSlimResNet18,
    SimpleCNN,
    SimpleMLP,
    SlimResNet18,
    as_multitask,
)
from avalanche.models.utils import avalanche_forward
from avalanche.training.determinism.rng_manager import RNGManager
from torch import nn

from avalanche_rnf import RNF, RNFPlugin, maybe_load_checkpoint, save_checkpoint
from helpers import assert_kept, frozen_snapshot, naive, quiet_evaluator

N_CLASSES, PER_CLASS = 6, 8


def _vgg11_bn(n: int) -> nn.Module:
    model = tv.vgg11_bn(num_classes=n)
    model.classifier[0] = nn.Linear(512 * 7 * 7, 32)  # the 4096-wide layers, narrowed to keep the test fast
    model.classifier[3] = nn.Linear(32, 32)
    model.classifier[6] = nn.Linear(32, n)
    return model


def _slim_incremental(n: int) -> nn.Module:
    model = SlimResNet18(n)
    model.linear = IncrementalClassifier(160, initial_out_features=2)  # grows with each experience's classes
    return model


SINGLE_HEAD: dict[str, tuple[Callable[[int], nn.Module], str]] = {
    "SimpleMLP": (lambda n: SimpleMLP(num_classes=n, input_size=3 * 32 * 32, hidden_size=64), "classifier"),
    "SimpleCNN": (lambda n: SimpleCNN(num_classes=n), "classifier"),
    "SlimResNet18": (lambda n: SlimResNet18(n), "linear"),
    "SlimResNet18+IncrementalClassifier": (_slim_incremental, "linear"),
    "resnet18": (lambda n: tv.resnet18(num_classes=n), "fc"),
    "resnet50": (lambda n: tv.resnet50(num_classes=n), "fc"),
    "vgg11_bn": (_vgg11_bn, "classifier"),
    "mobilenet_v3_small": (lambda n: tv.mobilenet_v3_small(num_classes=n), "classifier"),
    "efficientnet_b0": (lambda n: tv.efficientnet_b0(num_classes=n), "classifier"),
    "regnet_x_400mf": (lambda n: tv.regnet_x_400mf(num_classes=n), "fc"),  # grouped convolutions
    "googlenet": (lambda n: tv.googlenet(num_classes=n, aux_logits=False, init_weights=True), "fc"),  # concatenation
    "squeezenet1_1": (lambda n: tv.squeezenet1_1(num_classes=n), ""),  # concatenation, a conv as classifier
}
NO_CLASS_INFERENCE = {"googlenet": "its output layer reads a concatenation", "squeezenet1_1": "a conv as classifier"}
MULTI_HEAD: dict[str, Callable[[], nn.Module]] = {
    "MTSimpleCNN": lambda: MTSimpleCNN(),
    "MTSlimResNet18": lambda: MTSlimResNet18(nclasses=2),
    **{f"as_multitask({name})": (lambda make=make, head=head: as_multitask(make(2), head))
       for name, (make, head) in SINGLE_HEAD.items() if head and "Incremental" not in name},
}


def _stream(task_labels: bool):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_CLASSES * PER_CLASS, 3, 32, 32, generator=g)
    y = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    x = x + y.view(-1, 1, 1, 1) * 0.3  # learnable, a little
    parts = [(x[y // 2 == k], y[y // 2 == k] % 2 if task_labels else y[y // 2 == k]) for k in range(3)]
    return tensors_benchmark(parts, parts, task_labels=[0, 1, 2] if task_labels else [0, 0, 0])


def _optimizer(kind: str, model: nn.Module) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)


def _train(model: nn.Module, optimizer: str, task_labels: bool, **options):
    """Train three experiences with ``RNFPlugin(**options)``; per experience: the frozen snapshot and
    the outputs on the first experience's inputs."""
    torch.manual_seed(0)
    bench = _stream(task_labels)
    rnf = RNFPlugin(**options)
    strategy = naive(model, _optimizer(optimizer, model), [rnf], train_mb_size=8, train_epochs=1)
    x0, _, t0 = (torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v)
                 for v in zip(*(item[:3] for item in bench.train_stream[0].dataset)))
    snapshots, outputs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # capacity warnings on tiny layers, Avalanche deprecations
        for experience in bench.train_stream:
            strategy.train(experience)
            snapshots.append(frozen_snapshot(rnf, model))
            model.eval()
            with torch.no_grad():
                outputs.append(avalanche_forward(model, x0, t0))
    return rnf, snapshots, outputs


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("name", list(MULTI_HEAD))
def test_task_incremental_keeps_old_tasks_exactly(name, optimizer):
    model = MULTI_HEAD[name]()
    rnf, snapshots, outputs = _train(model, optimizer, task_labels=True)
    assert_kept(snapshots[0], snapshots[-1])
    assert_kept(snapshots[1], snapshots[-1])
    assert torch.equal(outputs[0], outputs[-1]), "task 0's outputs changed after later tasks"
    assert any(fraction < 1 for fraction in rnf.frozen_fractions[0].values())


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("name", list(SINGLE_HEAD))
def test_class_incremental_freezes_groups_exactly(name, optimizer):
    model = SINGLE_HEAD[name][0](N_CLASSES)
    rnf, snapshots, _ = _train(model, optimizer, task_labels=False)
    assert_kept(snapshots[0], snapshots[-1])
    assert_kept(snapshots[1], snapshots[-1])
    assert rnf.frozen_fractions[-1]
    # at its defaults RNF infers tasks in a class-incremental stream wherever the output layer allows it
    assert rnf.task_inference == (None if name in NO_CLASS_INFERENCE else "class")


@pytest.mark.parametrize("name", ["SlimResNet18", "resnet18", "mobilenet_v3_small", "regnet_x_400mf", "googlenet"])
def test_class_inference_keeps_the_old_classes_rows_exactly_on_residual_models(name):
    model = SINGLE_HEAD[name][0](N_CLASSES)
    rnf, snapshots, outputs = _train(model, "sgd", task_labels=False, task_inference="class")
    assert_kept(snapshots[0], snapshots[-1])
    assert torch.equal(outputs[0][:, :2], outputs[-1][:, :2]), "the first task's class rows changed"
    assert len(rnf.recognizer) == 3


def test_checkpoint_resume_on_a_residual_model_matches_uninterrupted_run(tmp_path):
    bench = _stream(task_labels=True)

    def make() -> RNF:
        torch.manual_seed(123)
        model = MTSlimResNet18(nclasses=2)
        return RNF(model=model, optimizer=_optimizer("sgd", model), train_mb_size=8, evaluator=quiet_evaluator())

    RNGManager.set_random_seeds(0)
    straight = make()
    for experience in bench.train_stream:
        straight.train(experience)

    RNGManager.set_random_seeds(0)
    interrupted = make()
    interrupted.train(bench.train_stream[0])
    save_checkpoint(interrupted, tmp_path / "rnf.ckpt")
    del interrupted
    RNGManager.set_random_seeds(999)
    resumed, start = maybe_load_checkpoint(make(), tmp_path / "rnf.ckpt")
    assert start == 1
    for experience in bench.train_stream[start:]:
        resumed.train(experience)

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.rnf.frozen_fractions == straight.rnf.frozen_fractions
    x, _, t = (torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v)
               for v in zip(*(item[:3] for item in bench.train_stream[0].dataset)))
    with torch.no_grad():  # the first task computed with its own BatchNorms on both
        assert torch.equal(straight.model.eval()(x, t), resumed.model.eval()(x, t))
    assert sorted(resumed.rnf.task_norms.kept) == [0, 1, 2]
