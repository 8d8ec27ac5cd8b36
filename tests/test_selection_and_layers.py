"""Selection rules, unit-layer discovery, reference sampling."""

import pytest
import torch
from torch import nn

from avalanche_rnf import RelevanceMass, TopFraction, UnsupportedModelError, find_unit_layers
from avalanche_rnf.layers import unsupported_parameters
from avalanche_rnf.reference import balanced_indices, check_reference_size


def test_top_fraction_picks_most_relevant_free_units():
    scores = torch.tensor([0.4, 0.3, 0.2, 0.1, 0.0])
    frozen = torch.tensor([True, False, False, False, False])
    new = TopFraction(0.5)(scores, frozen)
    assert new.tolist() == [False, True, True, False, False]  # ceil(0.5 * 4 free) = 2


def test_top_fraction_never_picks_zero_score_units():
    new = TopFraction(1.0)(torch.tensor([0.5, 0.5, 0.0]), torch.zeros(3, dtype=torch.bool))
    assert new.tolist() == [True, True, False]


def test_relevance_mass_counts_frozen_units_for_free():
    scores = torch.tensor([0.5, 0.25, 0.15, 0.1])
    none = torch.zeros(4, dtype=torch.bool)
    assert RelevanceMass(0.7)(scores, none).tolist() == [True, True, False, False]
    assert RelevanceMass(0.9)(scores, none).tolist() == [True, True, True, False]
    frozen = torch.tensor([True, False, False, False])
    assert RelevanceMass(0.5)(scores, frozen).tolist() == [False] * 4
    assert RelevanceMass(0.8)(scores, frozen).tolist() == [False, True, True, False]


def test_top_fraction_rounds_the_count_exactly():
    assert TopFraction(0.07)(torch.linspace(1, 2, 100), torch.zeros(100, dtype=torch.bool)).sum() == 7


def test_relevance_mass_with_all_zero_scores_selects_nothing():
    assert not RelevanceMass(0.9)(torch.zeros(3), torch.zeros(3, dtype=torch.bool)).any()


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), "0.5"])
@pytest.mark.parametrize("rule", [TopFraction, RelevanceMass])
def test_fraction_outside_unit_interval_is_rejected(rule, bad):
    with pytest.raises(ValueError, match=r"must be a fraction in \(0, 1\]"):
        rule(bad)


def test_find_unit_layers_links_batchnorm_to_its_layer():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4, 3),
        nn.BatchNorm1d(3),
        nn.ReLU(),
        nn.Linear(3, 2),
    )
    layers = find_unit_layers(net)
    assert [(lay.name, lay.norm) for lay in layers] == [("0", "1"), ("4", "5"), ("7", None)]
    assert list(layers[0].tensor_names(net)) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
    ]


def test_model_without_units_is_a_clear_error():
    with pytest.raises(UnsupportedModelError, match="has no nn.Linear or nn.Conv2d layer"):
        find_unit_layers(nn.Sequential(nn.ReLU(), nn.Flatten()))


def test_unsupported_layers_are_named():
    net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match=r"1 \(LayerNorm\)"):
        find_unit_layers(net)
    layers = find_unit_layers(net, strict=False)
    assert unsupported_parameters(net, layers) == ["1.weight", "1.bias"]


@pytest.mark.parametrize(
    "net",
    [
        nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4)),  # zennit would not merge it
        nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, affine=False)),
        nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)),
    ],
)
def test_batchnorm_rnf_cannot_own_is_unsupported(net):
    with pytest.raises(UnsupportedModelError, match="BatchNorm1d must come right after a Linear/Conv2d"):
        find_unit_layers(net)


def test_user_frozen_modules_are_fine():
    net = nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2))
    net[0].requires_grad_(False)
    assert [lay.name for lay in find_unit_layers(net)] == ["1"]


def test_balanced_indices_are_class_balanced_and_reproducible():
    targets = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    idx = balanced_indices(targets, 30, torch.Generator().manual_seed(0))
    counts = torch.bincount(targets[idx], minlength=3)
    assert counts.tolist() == [13, 12, 5] or counts.tolist() == [12, 13, 5]
    assert len(set(idx.tolist())) == 30
    again = balanced_indices(targets, 30, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    assert balanced_indices(targets, None).tolist() == list(range(85))
    assert balanced_indices(targets, 1000).tolist() == list(range(85))


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_reference_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="reference_size must be a positive number"):
        check_reference_size(bad)
