"""Accuracy-tolerance selection, isolation and the capacity budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_rnf import Capacity, Tolerance, ToleranceSearch, TopFraction, fair_share
from avalanche_rnf.isolation import Source, isolated_weights, sever, unit_sources
from avalanche_rnf.layers import UnitLayer, UnsupportedModelError, find_unit_layers
from helpers import MultiHeadConvBN, MultiHeadMLP, experience_logits, tolerant_rnf


# ---------------------------------------------------------------- the search
def test_bisection_finds_the_smallest_passing_mass_in_steps_plus_two_passes():
    calls = []

    def accuracy(mass):
        calls.append(mass)
        return 0.5 + 0.5 * min(mass / 0.3, 1.0)  # reaches 0.99 at mass 0.294

    result = ToleranceSearch(0.01, steps=7)(accuracy, 1.0)
    assert len(calls) == result.evaluations == 9
    assert accuracy(result.mass) >= 0.99 and 0.294 <= result.mass <= 0.294 + 2**-7
    assert result.full_accuracy == 1.0


def test_search_ends():
    assert ToleranceSearch(0.01)(lambda m: 0.995, 1.0).mass == 0.0  # earlier units suffice
    unreachable = ToleranceSearch(0.01)(lambda m: 0.5, 1.0)
    assert unreachable.mass == 1.0 and unreachable.evaluations == 2 and unreachable.accuracy == 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.1"])
def test_search_rejects_bad_tolerance(bad):
    with pytest.raises(ValueError, match="max_drop"):
        ToleranceSearch(bad)


def test_fair_share():
    assert fair_share(10, None) == 10 and fair_share(10, 1) == 10
    assert fair_share(10, 4) == 3 and fair_share(0, 4) == 0


@pytest.mark.parametrize("free,left", [(256, 20), (100, 3), (7, 7), (13, 2), (0, 5)])
def test_flex_stretches_the_equal_share(free, left):
    assert fair_share(free, left, 1.0) == fair_share(free, left)
    assert fair_share(free, left) <= fair_share(free, left, 2.0) <= min(free, 2 * fair_share(free, left))
    assert fair_share(free, left, 1e9) == free
    assert fair_share(256, 20, 2.0) == 25 and fair_share(10, 4, 2.0) == 4  # ceil(2 * 256 / 21), ceil(2 * 10 / 5)
    assert fair_share(9, 2, 2.0) == 6  # the last experience still has its share


# ---------------------------------------------------------------- isolation
def test_sources_follow_the_chain_and_skip_heads():
    model = MultiHeadConvBN()
    for task in (0, 1):
        model.classifier.adaptation(type("E", (), {"task_labels": [task], "classes_in_this_experience": [0, 1]})())
    layers = find_unit_layers(model)
    heads = {n.name for n in layers if ".classifiers." in n.name}
    sources = unit_sources(model, layers, heads)
    assert sources["features.0"] is None
    assert sources["features.3"] == Source("features.0", 1)
    assert sources["features.8"] == Source("features.3", 16)  # 8 channels x 4x4 after pooling
    assert {sources[h] for h in heads} == {Source("features.8", 1)}


def test_unreadable_chain_is_rejected():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(UnsupportedModelError, match="data flow was not traced"):
        unit_sources(model, find_unit_layers(model), set())


def test_kept_units_read_only_kept_units():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    layers = find_unit_layers(model)
    sources = unit_sources(model, layers, set())
    keep = {
        "0": torch.tensor([1, 0, 1, 0, 1]).bool(),
        "2": torch.tensor([1, 1, 0, 0]).bool(),
        "4": torch.ones(3).bool(),
    }
    x = torch.randn(7, 6)
    pruned = torch.func.functional_call(model, isolated_weights(model, sources, keep), (x,))
    for layer in layers:
        if sources[layer.name] is not None:
            sever(
                model,
                layer.name,
                sources[layer.name],
                torch.ones_like(keep[layer.name]),
                keep,
            )
    assert torch.equal(model(x), pruned)
    with torch.no_grad():  # whatever non-kept units do now, kept units and outputs do not change
        model[0].weight[~keep["0"]] += 5
        model[2].weight[~keep["2"]] -= 3
    assert torch.equal(model(x), pruned)


# ---------------------------------------------------------------- the plugin
@pytest.mark.parametrize("make", [MultiHeadMLP, MultiHeadConvBN], ids=["mlp", "conv-bn"])
def test_task_functions_are_kept_bit_for_bit_and_lose_at_most_max_drop(make, digits_til, digits_til_images):
    bench = digits_til if make is MultiHeadMLP else digits_til_images
    torch.manual_seed(0)
    strategy = tolerant_rnf(make(), capacity=Capacity("unlimited"))  # the budget may stop the search short of max_drop
    after_own: list[torch.Tensor] = []
    holdout_accuracy, masses = [], []
    for k, exp in enumerate(bench.train_stream[:3]):
        strategy.train(exp)
        result = strategy.rnf.searches[-1]
        if result.mass < 1:  # the tolerance, on held-out data, wherever the search stopped short of everything
            assert result.accuracy >= result.full_accuracy - 0.02
        holdout_accuracy.append(result.accuracy)
        masses.append(result.mass)
        after_own.append(experience_logits(strategy.model, bench.test_stream[k]))
        for j in range(k + 1):  # every earlier task computes exactly what it did when it finished
            assert torch.equal(experience_logits(strategy.model, bench.test_stream[j]), after_own[j])
    assert all(0.8 < a for a in holdout_accuracy)
    assert min(masses) < 1  # at least one search kept less than everything, within the tolerance


def test_holdout_is_taken_out_of_training(digits_til):
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadMLP(), tolerance=Tolerance(0.02, holdout=0.25), train_epochs=1)
    exp = digits_til.train_stream[0]
    seen = []
    original = strategy.rnf.after_train_dataset_adaptation

    def spy(s, **kw):
        original(s, **kw)
        seen.append((len(s.adapted_dataset), len(strategy.rnf._data.held_out_part)))

    strategy.rnf.after_train_dataset_adaptation = spy
    strategy.train(exp)
    ((train, held),) = seen
    assert held == round(0.25 * len(exp.dataset)) and train + held == len(exp.dataset)


def test_without_a_tolerance_nothing_is_held_out(digits_til):
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadMLP(), tolerance=None, train_epochs=1)
    strategy.train(digits_til.train_stream[0])
    assert strategy.rnf.searches == [] and strategy.rnf.frozen_fractions


def test_flex_lets_the_search_keep_more_than_the_equal_share(digits_til):
    kept, searches = {}, {}
    for flex in (1.0, 3.0):
        torch.manual_seed(0)
        strategy = tolerant_rnf(MultiHeadMLP(hidden=16), tolerance=Tolerance(0.0),
                                capacity=Capacity(n_experiences=10, flex=flex))
        strategy.train(digits_til.train_stream[0])
        kept[flex] = strategy.rnf.frozen_fractions[-1]["features.1"]
        searches[flex] = strategy.rnf.searches[-1]
    assert kept[1.0] == 2 / 16  # ceil(16 / 10): the equal share binds, the kept units miss the tolerance
    assert searches[1.0].accuracy < searches[1.0].full_accuracy
    assert 2 / 16 < kept[3.0] <= 4 / 16  # up to ceil(3 * 16 / 12): the search keeps what the tolerance needs
    assert searches[3.0].accuracy == searches[3.0].full_accuracy and searches[3.0].mass < 1


def test_budget_from_n_experiences(digits_til):
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadMLP(hidden=10), tolerance=Tolerance(0.0), capacity=Capacity(n_experiences=2),
                            train_epochs=1)
    strategy.train(digits_til.train_stream[0])
    assert strategy.rnf.frozen_fractions[-1]["features.1"] <= 0.5
    assert strategy.rnf.frozen_fractions[-1]["features.3"] <= 0.5


@pytest.mark.parametrize("search", [True, False])
def test_keep_last_keeps_every_free_unit_on_the_stream_s_last_experience(digits_til, search):
    hidden = ("features.1", "features.3")
    fractions = {}
    for keep_last in (False, True):
        torch.manual_seed(0)
        options = dict(tolerance=Tolerance(0.02)) if search else dict(tolerance=None, selection=TopFraction(0.2))
        strategy = tolerant_rnf(MultiHeadMLP(hidden=16), capacity=Capacity(n_experiences=2, keep_last=keep_last),
                                train_epochs=1, **options)
        for experience in digits_til.train_stream[:2]:
            strategy.train(experience)
        fractions[keep_last] = strategy.rnf.frozen_fractions
        if search and keep_last:
            last = strategy.rnf.searches[-1]
            assert last.mass == 1.0 and last.evaluations == 2 and len(strategy.rnf.searches) == 2
    assert fractions[True][0] == fractions[False][0]  # not the last experience: chosen as before
    assert all(fractions[True][1][name] == 1.0 for name in hidden)
    assert all(fractions[False][1][name] < 1.0 for name in hidden)


def test_bad_options_are_rejected():
    model = MultiHeadMLP()
    with pytest.raises(ValueError, match=r"holdout must be a fraction in \(0, 1\)"):
        tolerant_rnf(model, tolerance=Tolerance(0.02, holdout=1.5))
    with pytest.raises(ValueError, match="capacity must be 'fair', 'unlimited' or a fraction"):
        tolerant_rnf(model, capacity=Capacity("some"))
    with pytest.raises(ValueError, match="flex must be a number of equal shares"):
        tolerant_rnf(model, capacity=Capacity(flex=0.5))
    with pytest.raises(ValueError, match="needs share 'fair'"):
        tolerant_rnf(model, capacity=Capacity("unlimited", flex=2))
    with pytest.raises(ValueError, match="keep_last must be True, False or .auto."):
        tolerant_rnf(model, capacity=Capacity(keep_last="yes"))
    with pytest.raises(ValueError, match="max_drop must be an accuracy fraction"):
        tolerant_rnf(model, tolerance=Tolerance(2))


def test_search_survives_a_checkpoint(digits_til):
    torch.manual_seed(0)
    strategy = tolerant_rnf(MultiHeadMLP(), train_epochs=1)
    strategy.train(digits_til.train_stream[0])
    clone = type(strategy.rnf)(tolerance=Tolerance(0.02))
    clone.load_state_dict(strategy.rnf.state_dict())
    assert clone.searches == strategy.rnf.searches


def test_isolation_is_off_for_single_head_models_without_task_inference(digits_cil):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    strategy = tolerant_rnf(model, train_epochs=1, task_inference=None)
    strategy.train(digits_cil.train_stream[0])
    layer = UnitLayer("2")
    frozen = strategy.rnf.freeze.frozen_units(layer.name, 10)
    assert frozen.any() and (model[2].weight[frozen] != 0).all()
