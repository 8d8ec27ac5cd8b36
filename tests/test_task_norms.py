"""Each task keeps its own BatchNorms in task-incremental models."""

import pytest
import torch
from avalanche.models import MultiTaskModule
from torch import nn

from avalanche_rnf import task_norms
from avalanche_rnf.explain import heatmaps
from avalanche_rnf.task_norms import TaskNorms
from helpers import MultiHeadConvBN, tolerant_rnf


class _Tiny(MultiTaskModule):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
        self.heads = nn.ModuleList([nn.Linear(4 * 4 * 4, 3), nn.Linear(4 * 4 * 4, 2)])
        self.max_class_label = 3  # width of a mixed batch's outputs

    def forward_single_task(self, x, task_label):
        return self.heads[task_label](self.features(x))


def _tiny() -> tuple[_Tiny, TaskNorms, torch.Tensor]:
    torch.manual_seed(0)
    model = _Tiny()
    norm = model.features[1]
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    norms = TaskNorms()
    norms.attach(model, ["features.1"])
    return model.eval(), norms, torch.randn(6, 1, 6, 6)


@torch.no_grad()
def _train_on(model: nn.Module) -> None:
    """What a later task's training does to a BatchNorm."""
    model.features[1].weight.add_(0.3)
    model.features[1].bias.sub_(0.2)
    model.features[1].running_mean.add_(0.1)


def test_a_kept_task_computes_with_its_own_values_bit_for_bit():
    model, norms, x = _tiny()
    zeros, ones = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    norms.keep(model, ["features.1"], [0])
    mixed = torch.tensor([0, 1, 1, 0, 1, 0])
    first = model(x, zeros), model(x, 0), model(x[mixed == 0], 0)
    norms.begin(model, [1])
    _train_on(model)
    live = model(x, ones)
    assert torch.equal(model(x, zeros), first[0]) and torch.equal(model(x, 0), first[1])
    weight = model.features[1].weight.detach().clone()
    with torch.no_grad():  # the values copied in for the pass (Avalanche evaluates without autograd)
        assert torch.equal(model(x, zeros), first[0]) and torch.equal(model(x, 0), first[1])
        with pytest.raises(RuntimeError):
            model(torch.randn(2, 3, 6, 6), 0)  # a failing pass still writes the live values back
    assert torch.equal(model.features[1].weight, weight) and norms.live is None
    assert not torch.equal(model.features(x), _plain(model, x))  # the live values moved
    norms.release()
    assert torch.equal(model(x, ones), live)  # a task not kept reads the live values
    assert not torch.equal(model(x, zeros), first[0])  # without the hooks, task 0 would change

    norms.attach(model, ["features.1"])
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            out = model(x, mixed)
            assert torch.equal(out[mixed == 0], first[2])
            assert torch.equal(out[mixed == 1, :2], model(x[mixed == 1], 1))
            assert torch.equal(out[mixed == 1, 2], torch.zeros(3))

    model.train()
    torch.manual_seed(1)
    trained = model(x, zeros)  # training mode: the live values, batch statistics
    norms.release()
    assert torch.equal(trained, model(x, zeros))


def _after_task_0() -> tuple[_Tiny, TaskNorms, torch.Tensor, torch.Tensor]:
    """Task 0 kept (its outputs on ``x`` returned), then task 1 training on."""
    model, norms, x = _tiny()
    norms.keep(model, ["features.1"], [0])
    expected = model(x, 0)
    norms.begin(model, [1])
    _train_on(model)
    return model, norms, x, expected


def _plain(model: _Tiny, x: torch.Tensor) -> torch.Tensor:
    with task_norms.using_task(model, 0):
        return model.features(x)


def test_gradients_flow_in_evaluation_mode_and_using_restores_the_live_values():
    model, norms, x, expected = _after_task_0()
    live = model.features[1].weight.detach().clone()
    xg = x.clone().requires_grad_(True)
    model(xg, 0).sum().backward()  # no in-place change of a tensor autograd saved
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert task_norms.of(model) is norms
    with task_norms.using_task(model, 0):
        assert torch.equal(model.features[1].weight, norms.kept[0]["features.1"]["weight"])
        assert torch.equal(model(x, 0), expected)  # no second swap on top
    assert torch.equal(model.features[1].weight, live)
    with pytest.raises(RuntimeError), task_norms.using_task(model, 0):
        raise RuntimeError
    assert torch.equal(model.features[1].weight, live) and norms.live is None


def test_state_round_trip_and_a_fresh_attach():
    model, norms, x, expected = _after_task_0()
    norms.enabled = True
    other = TaskNorms()
    other.load_state_dict(norms.state_dict())
    norms.release()
    other.attach(model)
    assert other.enabled and torch.equal(model(x, 0), expected)
    assert other.nbytes() == 4 * 4 * 4  # weight, bias, running mean and variance of 4 channels


def test_an_experience_that_trains_a_kept_task_again_reads_the_live_values():
    model, norms, x = _tiny()
    norms.keep(model, ["features.1"], [0])
    norms.begin(model, [0, 1])  # several task labels in one experience, task 0 among them
    _train_on(model)
    live = model.features(x)
    with torch.no_grad():
        assert torch.equal(model.features(x), live)
        with task_norms.using_task(model, 0):  # what the relevance pass and calibration read: the live values
            assert torch.equal(model.features(x), live)
    assert torch.equal(model(x, 0), model.heads[0](live))
    norms.keep(model, ["features.1"], [0, 1])
    assert norms.kept[0]["features.1"]["weight"] is not norms.kept[1]["features.1"]["weight"]
    assert norms.nbytes() == 2 * 4 * 4 * 4


def test_reloading_keeps_the_hooks_and_a_deep_copy_hands_them_over():
    model, norms, x, expected = _after_task_0()
    norms.load_state_dict(norms.state_dict())
    assert task_norms.of(model) is norms and torch.equal(model(x, 0), expected)
    copy = __import__("copy").deepcopy(model)  # e.g. LwF's copy of the model: its own hooks, its own values
    assert task_norms.of(copy) is not None and task_norms.of(copy) is not norms
    norms.attach(copy)
    assert task_norms.of(copy) is norms
    weight = copy.features[1].weight.detach().clone()
    with torch.no_grad():
        assert torch.equal(copy(x, 0), expected)
    assert torch.equal(copy.features[1].weight, weight)


def test_rnf_trains_frozen_channels_norms_and_keeps_old_tasks_exactly(digits_til_images):
    torch.manual_seed(0)
    model = MultiHeadConvBN(hidden=16)
    strategy = tolerant_rnf(model, train_mb_size=32, train_epochs=1, tolerance=None)
    rnf = strategy.rnf
    stream = digits_til_images.train_stream
    x0, y0, t0 = (torch.stack([torch.as_tensor(stream[0].dataset[i][k]) for i in range(24)]) for k in range(3))
    x1, t1 = (torch.stack([torch.as_tensor(stream[1].dataset[i][k]) for i in range(24)]) for k in (0, 2))
    mixed_x, mixed_t = torch.cat([x0, x1]), torch.cat([t0, t1])
    strategy.train(stream[0])
    rows = rnf.freeze.frozen_units("features.0", 8)
    weight = model.features[1].weight.detach().clone()
    model.eval()
    with torch.no_grad():
        first = model(x0, t0)
    maps = heatmaps(model, x0, y0, t0)
    strategy.train(stream[1])
    model.eval()
    with torch.no_grad():
        mixed = model(mixed_x, mixed_t)
    strategy.train(stream[2])
    model.eval()
    assert rnf.task_norms.enabled and sorted(rnf.task_norms.kept) == [0, 1, 2]
    assert "features.0.weight" in rnf.freeze.values
    assert not any(name.startswith(("features.1.", "features.4.")) for name in rnf.freeze.values)
    assert len(rnf.norms) == 0  # nothing held at running statistics: each task trains its own
    assert rows.any() and not torch.equal(model.features[1].weight[rows], weight[rows])  # frozen channels trained
    with torch.no_grad():
        assert torch.equal(model(x0, t0), first)
        assert torch.equal(model(mixed_x, mixed_t), mixed)
    assert torch.equal(heatmaps(model, x0, y0, t0), maps)  # explanations of task 0 unchanged as well
    assert rnf.state_nbytes() >= rnf.task_norms.nbytes() > 0


def test_task_norms_off_freezes_the_norms_with_their_channels(digits_til_images):
    torch.manual_seed(0)
    model = MultiHeadConvBN(hidden=16)
    strategy = tolerant_rnf(model, train_mb_size=32, train_epochs=1, tolerance=None, task_norms=False)
    for experience in digits_til_images.train_stream[:2]:
        strategy.train(experience)
    assert strategy.rnf.task_norms.enabled is False and not strategy.rnf.task_norms.kept
    assert {"features.1.weight", "features.1.running_var"} <= set(strategy.rnf.freeze.values)
    assert task_norms.of(model) is None


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd_nesterov"])
def test_old_tasks_outputs_stay_equal_under_any_optimizer(optimizer, digits_til_images):
    torch.manual_seed(0)
    model = MultiHeadConvBN(hidden=16)
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
            "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
            "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)}
    strategy = tolerant_rnf(model, optimizer=make[optimizer](model.parameters()), train_mb_size=32, train_epochs=1,
                            tolerance=None)
    stream = digits_til_images.train_stream
    x0, t0 = (torch.stack([torch.as_tensor(stream[0].dataset[i][k]) for i in range(24)]) for k in (0, 2))
    strategy.train(stream[0])
    with torch.no_grad():
        first = model.eval()(x0, t0)
    for experience in stream[1:3]:
        strategy.train(experience)
    with torch.no_grad():
        assert torch.equal(model.eval()(x0, t0), first)
