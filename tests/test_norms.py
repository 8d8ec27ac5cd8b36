"""Frozen BatchNorm channels normalise with their running statistics while the model trains."""

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from avalanche_rnf.freezing import FreezeState
from avalanche_rnf.layers import UnitLayer
from avalanche_rnf.norms import FrozenNorms
from helpers import MultiHeadConvBN, tolerant_rnf


def _frozen_conv_bn(frozen: list[int]) -> tuple[nn.Sequential, FreezeState, list[UnitLayer]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    norm = model[1]
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    nn.init.uniform_(norm.bias, -0.5, 0.5)
    layers = [UnitLayer("0", "1")]
    freeze = FreezeState()
    units = torch.zeros(4, dtype=torch.bool)
    units[frozen] = True
    freeze.freeze(model, layers[0], units)
    return model, freeze, layers


def test_frozen_channels_train_as_they_are_evaluated_and_free_ones_on_batch_statistics():
    model, freeze, layers = _frozen_conv_bn([0, 2])
    x = torch.randn(8, 2, 6, 6)
    evaluated = model.eval()(x)
    model.train()
    before = model(x)  # batch statistics everywhere (and the running statistics move)
    freeze.restore(model)
    norms = FrozenNorms()
    norms.hold(model, layers, freeze)
    held = model(x)
    assert len(norms) == 1
    assert torch.allclose(held[:, [0, 2]], evaluated[:, [0, 2]], atol=1e-6)
    assert not torch.allclose(before[:, [0, 2]], evaluated[:, [0, 2]], atol=1e-3)
    assert torch.equal(held[:, [1, 3]], before[:, [1, 3]])
    held.sum().backward()  # the free channels still learn through the hooked output
    assert model[0].weight.grad is not None and model[0].weight.grad[[1, 3]].abs().sum() > 0

    model.zero_grad()
    freeze.restore(model)
    norms.hold(model, layers, freeze, isolated=True)  # the held channels written without autograd
    detached = model(x)
    assert torch.equal(detached, held)
    weights = torch.randn_like(detached)
    (detached * weights).sum().backward()
    hooked = model[0].weight.grad.clone()
    norms.release()
    model.zero_grad()
    freeze.restore(model)
    (model(x) * weights).sum().backward()
    assert torch.equal(model[0].weight.grad, hooked)  # the gradient is BatchNorm's own, as without the hooks
    model.zero_grad()
    freeze.restore(model)
    norms.hold(model, layers, freeze)

    norms.release()
    freeze.restore(model)
    assert len(norms) == 0 and torch.equal(model(x), before)
    freeze.restore(model)
    unhooked = model.eval()(x)
    norms.hold(model, layers, freeze)
    assert torch.equal(model.eval()(x), unhooked)  # evaluation is untouched
    assert torch.equal(unhooked[:, [0, 2]], evaluated[:, [0, 2]])


def test_a_norm_without_frozen_channels_is_not_hooked():
    model, freeze, layers = _frozen_conv_bn([])
    norms = FrozenNorms()
    norms.hold(model, layers, freeze)
    assert len(norms) == 0


class _TrainingOutputs(SupervisedPlugin):
    """Per training iteration: how far the frozen channels of the first BatchNorm are from their
    evaluation-mode values on the same mini-batch."""

    def __init__(self, rnf):
        super().__init__()
        self.rnf, self.gaps, self._seen = rnf, [], None

    def before_forward(self, strategy, **kwargs):
        norm = strategy.model.features[1]
        self._stats = norm.running_mean.clone(), norm.running_var.clone()  # before this step's update
        self._handle = norm.register_forward_hook(lambda m, args, out: setattr(self, "_seen", (args[0], out)))

    def after_forward(self, strategy, **kwargs):
        self._handle.remove()
        rows = self.rnf.freeze.frozen_units("features.0", 8).nonzero().flatten()
        if rows.numel():
            x, out = self._seen
            norm = strategy.model.features[1]
            expected = nn.functional.batch_norm(x, *self._stats, norm.weight, norm.bias, training=False, eps=norm.eps)
            self.gaps.append(float((out - expected)[:, rows].abs().max().detach()))


def test_rnf_trains_later_tasks_on_the_frozen_channels_evaluation_values(digits_til_images):
    # task heads would let each task keep its own BatchNorms (task_norms): held at running statistics without
    strategy = tolerant_rnf(MultiHeadConvBN(hidden=16), train_mb_size=32, train_epochs=1, tolerance=None,
                            task_norms=False)
    rnf = strategy.rnf
    probe = _TrainingOutputs(rnf)
    strategy.plugins.append(probe)
    for experience in digits_til_images.train_stream[:2]:
        strategy.train(experience)
    assert probe.gaps and max(probe.gaps) < 1e-5
    assert len(rnf.norms) == 0  # released when the experience ends
