"""Models used by the benchmarks and the demo.

- MNIST family and split digits: Avalanche's ``SimpleMLP`` (no dropout), hidden width and depth
  from the hyperparameter table; its ReLUs swapped for tanh where a preset asks for it.
- CIFAR-10 and ImageFolder data: :class:`SmallCNN`, four 3x3 conv layers with BatchNorm, or with
  ``rnf-bench --model slim_resnet18`` Avalanche's ``SlimResNet18`` (its standard CIFAR model).
- Task-incremental: the same backbone, its ``classifier`` turned into a ``MultiHeadClassifier``
  by Avalanche's ``as_multitask``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avalanche.models import MultiHeadClassifier, MultiTaskModule, SimpleMLP, SlimResNet18, as_multitask
from torch import nn

from avalanche_rnf.bench.hparams import MODELS

if TYPE_CHECKING:
    from avalanche_rnf.bench.hparams import Training
    from avalanche_rnf.bench.streams import Stream


class MultiHeadMLP(MultiTaskModule):
    """Two-hidden-layer MLP backbone with one head per task (task-incremental learning)."""

    def __init__(self, input_size: int = 64, hidden: int = 128, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(input_size, hidden), activation(), nn.Linear(hidden, hidden), activation()
        )
        self.classifier = MultiHeadClassifier(hidden)

    def forward_single_task(self, x, task_label):
        return self.classifier(self.features(x), task_label)

    def forward(self, x, task_labels):
        return self.classifier(self.features(x), task_labels)


class SmallCNN(nn.Module):
    """conv-BN-ReLU x2, max-pool, conv-BN-ReLU x2, max-pool, global 4x4 pool, Linear-ReLU, classifier.

    ``width`` channels in the first block, twice that in the second; small enough to train on a CPU.
    """

    def __init__(self, n_classes: int = 10, in_channels: int = 3, width: int = 32, hidden: int = 256):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, width), *block(width, width), nn.MaxPool2d(2),
            *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * width * 16, hidden), nn.ReLU(),
        )
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def make_model(family: str, input_shape: tuple[int, ...], n_outputs: int, multi_head: bool,
               hidden_size: int = 256, hidden_layers: int = 2, width: int = 32,
               activation: str = "relu", name: str = "", slim_width: int = 0) -> nn.Module:
    """The benchmark's model: ``SimpleMLP`` for flat or 1-channel inputs, ``SmallCNN`` for RGB images,
    or the model ``name`` (one of :data:`MODELS`; ``""``: the benchmark's own).

    ``activation`` is the MLP's hidden nonlinearity (``"relu"`` or ``"tanh"``); ``slim_width``
    ``SlimResNet18``'s channels in its first stage (0: Avalanche's 20; each later stage doubles them).
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: use one of {', '.join(_ACTIVATIONS)}")
    if name and name not in MODELS:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(MODELS)}")
    if name == "slim_resnet18":
        if tuple(input_shape) != (3, 32, 32):  # it reshapes its input to that
            raise ValueError(f"slim_resnet18 needs 3x32x32 RGB images (split_cifar10, imagefolder with --image-size "
                             f"32), got inputs {tuple(input_shape)}")
        resnet = SlimResNet18(n_outputs, nf=slim_width or 20)
        return as_multitask(resnet, "linear") if multi_head else resnet
    if family == "image":
        model: nn.Module = SmallCNN(n_outputs, in_channels=input_shape[0], width=width, hidden=hidden_size)
    else:
        size = 1
        for d in input_shape:
            size *= d
        model = SimpleMLP(n_outputs, input_size=size, hidden_size=hidden_size, hidden_layers=hidden_layers,
                          drop_rate=0)
        if activation != "relu":
            for parent in list(model.modules()):
                for name, child in parent.named_children():
                    if isinstance(child, nn.ReLU):
                        setattr(parent, name, _ACTIVATIONS[activation]())
    return as_multitask(model, "classifier") if multi_head else model


def model_for(stream: Stream, training: Training, multi_head: bool | None = None) -> nn.Module:
    """``stream``'s model with ``training``'s sizes and activation; multi-head as the stream says unless
    ``multi_head`` is given."""
    return make_model(stream.info.family, stream.input_shape, stream.n_outputs,
                      stream.multi_head if multi_head is None else multi_head,
                      hidden_size=training.hidden_size, hidden_layers=training.hidden_layers,
                      width=training.width, activation=training.activation, name=training.model,
                      slim_width=training.slim_width)
