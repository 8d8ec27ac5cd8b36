"""Frozen values stay bit-for-bit identical through later training, whatever the optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_rnf import Relevance, RNFPlugin, TopFraction
from helpers import IncrementalMLP, MultiHeadConvBN, MultiHeadMLP, assert_kept, frozen_snapshot, naive

OPTIMIZERS = {
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.5, weight_decay=1e-3),
}


def _run(model, bench, optimizer, n_exp=3, **options):
    torch.manual_seed(0)
    plugin = RNFPlugin(selection=TopFraction(0.3), relevance=Relevance(reference_size=100), **options)
    strategy = naive(model, optimizer, [plugin], train_mb_size=16, train_epochs=2)
    snapshots, states = [], []
    for exp in bench.train_stream[:n_exp]:
        strategy.train(exp)
        snapshots.append(frozen_snapshot(plugin, model))
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return plugin, snapshots, states


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("arch", ["mlp", "conv_bn"])
def test_frozen_values_are_bit_exact_across_later_experiences(opt, arch, digits_til, digits_til_images):
    torch.manual_seed(0)
    model = MultiHeadMLP() if arch == "mlp" else MultiHeadConvBN()
    bench = digits_til if arch == "mlp" else digits_til_images
    # task_norms=False: BatchNorms frozen with their channels, rather than kept per task (test_task_norms)
    plugin, snapshots, states = _run(model, bench, OPTIMIZERS[opt](model.parameters()), task_norms=False)

    for first in range(2):
        for later in range(first + 1, 3):
            assert_kept(snapshots[first], snapshots[later])
    # frozen units never change, but training still moved the free ones
    free_changed = [
        name
        for name in states[0]
        if name.startswith("features") and name.endswith("weight") and not torch.equal(states[0][name], states[2][name])
    ]
    assert free_changed
    names = set(snapshots[0])
    if arch == "conv_bn":
        assert {"features.1.running_mean", "features.1.running_var", "features.1.weight", "features.1.bias"} <= names
    assert "classifier.classifiers.0.classifier.weight" in names
    # a finished task's head is frozen whole
    assert torch.equal(
        states[0]["classifier.classifiers.0.classifier.weight"], states[2]["classifier.classifiers.0.classifier.weight"]
    )


def test_grown_incremental_classifier_keeps_frozen_rows(digits_cil):
    torch.manual_seed(0)
    model = IncrementalMLP()
    plugin, snapshots, states = _run(model, digits_cil, torch.optim.Adam(model.parameters(), lr=1e-2))
    w0, w2 = states[0]["classifier.classifier.weight"], states[2]["classifier.classifier.weight"]
    assert w0.shape[0] < w2.shape[0]  # the head grew (Avalanche replaced its nn.Linear)
    rows = snapshots[0]["classifier.classifier.weight"][0][:, 0]  # units frozen after the first experience
    assert rows.any()
    assert torch.equal(w0[rows], w2[: w0.shape[0]][rows])
    assert_kept(snapshots[0], snapshots[2])


def test_frozen_state_survives_an_optimizer_reset(digits_til):
    """Avalanche rebuilds optimizer state between experiences; freezing does not depend on it."""
    torch.manual_seed(0)
    model = MultiHeadMLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    plugin = RNFPlugin(relevance=Relevance(reference_size=100))
    strategy = naive(model, opt, [plugin], train_mb_size=16, train_epochs=1)
    strategy.train(digits_til.train_stream[0])
    before = frozen_snapshot(plugin, model)
    strategy.make_optimizer(reset_optimizer_state=True)
    strategy.train(digits_til.train_stream[1])
    assert_kept(before, frozen_snapshot(plugin, model))


def test_gradient_masking_alone_drifts_but_restore_holds():
    """Why RNF restores values: AdamW's weight decay moves entries whose gradient is zero."""
    from avalanche_rnf import FreezeState
    from avalanche_rnf.layers import UnitLayer

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6))
    state = FreezeState()
    state.freeze(net, UnitLayer("0"), torch.tensor([True, True, True, False, False, False]))
    frozen = net[0].weight[:3].detach().clone()
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.5)
    for restore in (False, True):
        for _ in range(5):
            opt.zero_grad()
            net(torch.randn(8, 4)).pow(2).sum().backward()
            state.mask_grads(net)
            opt.step()
            if restore:
                state.restore(net)
        assert torch.equal(net[0].weight[:3], frozen) == restore
        state.restore(net)


def test_domain_incremental_single_fixed_head_runs_and_holds():
    """Same two labels in every experience, one shared head scored like any other layer (no task inference)."""
    from avalanche_rnf.bench.split_digits import SplitDigits

    bench = SplitDigits(5, return_task_id=False, class_ids_from_zero_in_each_exp=True, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
    plugin, snapshots, _ = _run(model, bench, torch.optim.AdamW(model.parameters(), lr=1e-2), task_inference=None)
    assert_kept(snapshots[0], snapshots[2])
    assert 0 < plugin.freeze.frozen_fraction("0") < 1
    assert plugin.freeze.frozen_fraction("2") > 0  # the shared head is frozen by relevance, not whole


def test_input_width_change_of_a_frozen_layer_is_a_clear_error():
    from avalanche_rnf import FreezeState
    from avalanche_rnf.layers import UnitLayer

    net = nn.Sequential(nn.Linear(4, 3))
    state = FreezeState()
    state.freeze(net, UnitLayer("0"), torch.tensor([True, False, False]))
    net[0] = nn.Linear(5, 3)
    with pytest.raises(RuntimeError, match="changed shape.*Only dimension 0"):
        state.restore(net)


def test_a_frozen_layer_that_shrinks_is_a_clear_error_after_restores():
    from avalanche_rnf import FreezeState
    from avalanche_rnf.layers import UnitLayer

    net = nn.Sequential(nn.Linear(4, 6))
    state = FreezeState()
    state.freeze(net, UnitLayer("0"), torch.tensor([False] * 5 + [True]))
    state.restore(net)  # caches the frozen rows
    net[0] = nn.Linear(4, 3)
    with pytest.raises(RuntimeError, match="shrank from 6 to 3 units"):
        state.restore(net)


def test_a_returning_task_trains_its_head_again(digits_til):
    """Multi-head model on a stream where every experience is task 0 (domain-incremental)."""
    from avalanche_rnf.bench.split_digits import SplitDigits

    bench = SplitDigits(5, return_task_id=False, class_ids_from_zero_in_each_exp=True, seed=0)
    torch.manual_seed(0)
    model = MultiHeadMLP(hidden=32)
    plugin, snapshots, states = _run(model, bench, torch.optim.SGD(model.parameters(), lr=0.1))
    head = "classifier.classifiers.0.classifier.weight"
    assert not torch.equal(states[0][head], states[1][head])  # released while task 0 trains again
    assert plugin.freeze.frozen_fraction("classifier.classifiers.0.classifier") == 1.0  # and frozen again after
    assert_kept({k: v for k, v in snapshots[0].items() if not k.startswith("classifier")}, snapshots[2])
