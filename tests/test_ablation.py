"""Unit scores other than LRP (ablations): random, activation and weight magnitude, Taylor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avalanche_rnf import RNF, Relevance, find_unit_layers
from avalanche_rnf.ablation import alternative_scores
from helpers import MultiHeadMLP, quiet_evaluator


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


def _batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g), None)]


def test_each_method_scores_every_unit_as_it_says():
    model = _net()
    layers = find_unit_layers(model)
    x, y, _ = _batches()[0]
    hidden = model[0](x)
    activation = alternative_scores("activation", model, layers, _batches())
    assert torch.allclose(activation.relevance["0"], hidden.abs().sum(0).detach())
    assert activation.n_samples == 8
    weight = alternative_scores("weight", model, layers, _batches())
    assert torch.allclose(weight.relevance["0"] / 8, model[0].weight.abs().sum(1).detach())
    taylor = alternative_scores("taylor", model, layers, _batches())
    hidden.retain_grad()
    model[2](torch.relu(hidden)).gather(1, y[:, None]).sum().backward()
    assert torch.allclose(taylor.relevance["0"], (hidden.grad * hidden).abs().sum(0).detach(), atol=1e-6)
    first = alternative_scores("random", model, layers, _batches(), seed=0).relevance["0"]
    again = alternative_scores("random", model, layers, _batches(), seed=0).relevance["0"]
    other = alternative_scores("random", model, layers, _batches(), seed=1).relevance["0"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="method must be one of lrp, random"):
        Relevance(method="saliency")


@pytest.mark.parametrize("method", ["random", "activation", "weight", "taylor"])
def test_rnf_trains_with_any_scoring_method(digits_til, method):
    torch.manual_seed(0)
    model = MultiHeadMLP()
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05), train_mb_size=32,
                   relevance=Relevance(method=method), evaluator=quiet_evaluator())
    for experience in digits_til.train_stream[:2]:
        strategy.train(experience)
    fractions = strategy.rnf.frozen_fractions[-1]
    assert 0 < fractions["features.1"] < 1
