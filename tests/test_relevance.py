"""Unit relevance: hand-computed LRP, conservation, ranking, fallbacks."""

import pytest
import torch
from torch import nn

from avalanche_rnf import find_unit_layers, make_composite, normalized_scores, unit_relevance
from avalanche_rnf.relevance import UnitScores

EPS = 1e-6


def _stab(z):
    return z + EPS * torch.where(z >= 0, 1.0, -1.0)


def _tiny_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    return net


def test_scores_match_hand_computed_lrp_epsilon():
    net = _tiny_net()
    x = torch.randn(6, 3)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    scores = unit_relevance(
        net, find_unit_layers(net), [(x, y, torch.zeros(6))], composite=make_composite("epsilon_plus_flat")
    )

    w2, b2, w3, b3 = net[2].weight, net[2].bias, net[4].weight, net[4].bias
    with torch.no_grad():
        a1 = torch.relu(net[0](x))
        a2 = torch.relu(a1 @ w2.T + b2)
        z3 = a2 @ w3.T + b3
        r3 = nn.functional.one_hot(y, 2).float()
        r2 = a2 * ((r3 / _stab(z3)) @ w3)  # epsilon rule through the last layer
        z2 = a1 @ w2.T + b2
        r1 = a1 * ((r2 / _stab(z2)) @ w2)  # epsilon rule through the middle layer (ReLU passes relevance)

    assert scores.n_samples == 6
    torch.testing.assert_close(scores.relevance["4"], r3.abs().sum(0))
    torch.testing.assert_close(scores.relevance["2"], r2.abs().sum(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(scores.relevance["0"], r1.abs().sum(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(scores.activation["0"], net[0](x).abs().sum(0))


def test_logit_start_scales_relevance_by_the_logit():
    net = _tiny_net()
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    composite = make_composite("epsilon_plus_flat")
    scores = unit_relevance(net, find_unit_layers(net), [(x, y, None)], composite=composite, start="logit")
    with torch.no_grad():
        logits = net(x).gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(scores.relevance["4"], torch.zeros(2).index_add_(0, y, logits.abs()))


@pytest.mark.parametrize("conv", [False, True])
def test_relevance_is_conserved_on_bias_free_positive_net(conv):
    torch.manual_seed(1)
    if conv:
        net = nn.Sequential(
            nn.Conv2d(1, 3, 3, bias=False),
            nn.ReLU(),
            nn.Conv2d(3, 4, 3, bias=False),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 5, bias=False),
            nn.ReLU(),
            nn.Linear(5, 3, bias=False),
        )
        x = torch.rand(8, 1, 8, 8)
    else:
        net = nn.Sequential(
            nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False)
        )
        x = torch.rand(8, 6)
    for p in net.parameters():
        p.data.abs_()
    y = torch.randint(0, 3, (8,))
    scores = unit_relevance(net, find_unit_layers(net), [(x, y, None)], composite=make_composite("epsilon_plus_flat"))
    for name, rel in scores.relevance.items():
        assert rel.sum().item() == pytest.approx(8.0, rel=1e-4), name


def test_signal_unit_ranks_above_dead_units():
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
        net[0].weight[2] = torch.tensor([1.0, 1.0, 1.0, 1.0])  # the only live unit
        net[2].weight.copy_(torch.randn(2, 5))
        net[2].weight[:, 2] = torch.tensor([2.0, -2.0])
    x = torch.rand(16, 4)
    y = net(x).argmax(1)
    scores = unit_relevance(net, find_unit_layers(net), [(x, y, None)], composite=make_composite("epsilon_plus_flat"))
    normalized, fallbacks = normalized_scores(scores)
    assert not fallbacks
    first = normalized["0"]
    assert first.argmax().item() == 2
    assert first[2] == pytest.approx(1.0)
    assert torch.all(first[[0, 1, 3, 4]] == 0)


def test_batches_are_summed_and_model_state_is_untouched():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(10, 1, 8, 8), torch.randint(0, 3, (10,))
    layers = find_unit_layers(net)
    whole = unit_relevance(net, layers, [(x, y, None)], composite=make_composite("epsilon_plus_flat"))
    parts = unit_relevance(
        net, layers, [(x[:4], y[:4], None), (x[4:], y[4:], None)], composite=make_composite("epsilon_plus_flat")
    )
    for name in whole.relevance:
        torch.testing.assert_close(whole.relevance[name], parts.relevance[name], rtol=1e-4, atol=1e-6)
    assert net.training and net[1].training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_unusable_relevance_falls_back_to_activations_then_to_nothing():
    scores = UnitScores(
        relevance={"a": torch.tensor([float("nan"), 1.0]), "b": torch.zeros(3), "c": torch.tensor([1.0, 3.0])},
        activation={"a": torch.tensor([1.0, 3.0]), "b": torch.zeros(3), "c": torch.ones(2)},
        n_samples=1,
    )
    normalized, fallbacks = normalized_scores(scores)
    assert set(fallbacks) == {"a", "b"}
    assert "NaN" in fallbacks["a"] and "all zero" in fallbacks["b"]
    torch.testing.assert_close(normalized["a"], torch.tensor([0.25, 0.75]))
    assert torch.all(normalized["b"] == 0)
    torch.testing.assert_close(normalized["c"], torch.tensor([0.25, 0.75]))


def test_unknown_composite_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown zennit composite 'nope'"):
        make_composite("nope")


def test_label_outside_output_is_a_clear_error():
    net = _tiny_net()
    with pytest.raises(ValueError, match="outside the model output of width 2"):
        unit_relevance(
            net,
            find_unit_layers(net),
            [(torch.randn(2, 3), torch.tensor([0, 5]), None)],
            composite=make_composite("epsilon_plus_flat"),
        )


def test_linear_units_are_the_last_dimension_of_sequence_outputs():
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6, 2))
    x, y = torch.rand(3, 5, 4), torch.tensor([0, 1, 0])
    scores = unit_relevance(net, find_unit_layers(net), [(x, y, None)], composite=make_composite("epsilon_plus"))
    assert scores.relevance["0"].shape == (6,) and scores.activation["0"].shape == (6,)


def test_warns_when_first_registered_layer_does_not_run_first():
    class HeadFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 2)
            self.body = nn.Linear(4, 8)

        def forward(self, x):
            return self.head(torch.relu(self.body(x)))

    net = HeadFirst()
    with pytest.warns(UserWarning, match="first-layer rule to 'head'.*'body' runs first"):
        unit_relevance(
            net,
            find_unit_layers(net),
            [(torch.rand(2, 4), torch.tensor([0, 1]), None)],
            composite=make_composite("epsilon_plus_flat"),
        )


def test_large_activations_are_attributed_in_chunks_with_the_same_scores(monkeypatch):
    import avalanche_rnf.relevance as relevance

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    layers = find_unit_layers(model)
    batches = [(torch.randn(32, 3, 16, 16), torch.randint(0, 4, (32,)), None)]
    per_sample = 2 * 8 * 16 * 16 * 4 + 4 * 4  # bytes of the unit layers' outputs
    assert relevance.lean_batch_size(model, layers, relevance.plain_forward, batches[0][0], None) == (
        relevance.ACTIVATION_BUDGET // per_sample)
    whole = unit_relevance(model, layers, batches, composite=make_composite())
    monkeypatch.setattr(relevance, "ACTIVATION_BUDGET", 5 * per_sample)  # chunks of 5 samples
    calls = []
    real = relevance._start_relevance
    monkeypatch.setattr(relevance, "_start_relevance", lambda y, start: calls.append(len(y)) or real(y, start))
    chunked = unit_relevance(model, layers, batches, composite=make_composite())
    assert calls == [5, 5, 5, 5, 5, 5, 2]
    assert chunked.n_samples == whole.n_samples == 32
    for name in whole.relevance:
        assert torch.allclose(chunked.relevance[name], whole.relevance[name], rtol=1e-4, atol=1e-6)
