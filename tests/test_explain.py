"""Input heatmaps, explanation drift and its plugin, and the explanation figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from avalanche.models.utils import avalanche_forward, avalanche_model_adaptation
from avalanche.training import EWC
from avalanche.training.plugins import ReplayPlugin
from torch import nn
from zennit.composites import EpsilonPlus, EpsilonPlusFlat

from avalanche_rnf import RNF
from avalanche_rnf.bench import explain_figures as figures
from avalanche_rnf.canonizers import default_canonizers
from avalanche_rnf.drift import ExplanationDriftPlugin, load_npz
from avalanche_rnf.explain import (
    cosine_similarities,
    cosine_similarity,
    default_composite,
    heatmaps,
    probe_indices,
    rank_correlation,
    rank_correlations,
)
from avalanche_rnf.layers import find_unit_layers
from avalanche_rnf.relevance import make_composite, unit_relevance
from helpers import ClassMLP, MultiHeadMLP, naive, quiet_evaluator

pytestmark = pytest.mark.usefixtures("one_thread")


def _bias_free(sizes=(12, 16, 8, 5)) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Linear(a, b, bias=False)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- heatmaps
@pytest.mark.parametrize("composite", [EpsilonPlus, EpsilonPlusFlat])
def test_heatmaps_conserve_the_start_relevance_on_a_bias_free_net(composite):
    """Linear layers only, so EpsilonPlus is the epsilon rule everywhere; EpsilonPlusFlat adds the flat first layer."""
    torch.manual_seed(0)
    model = _bias_free()
    x, y = torch.randn(20, 12), torch.randint(0, 5, (20,))
    comp = composite(epsilon=1e-9, stabilizer=1e-9, canonizers=default_canonizers())
    maps = heatmaps(model, x, y, composite=comp, batch_size=7)  # batches of 7: the pass is per batch
    assert maps.shape == x.shape
    torch.testing.assert_close(maps.sum(1), torch.ones(20), rtol=0, atol=1e-4)
    constant = torch.allclose(maps, maps[:, :1].expand_as(maps))
    assert constant == (composite is EpsilonPlusFlat)  # the flat rule spreads a Linear unit's relevance evenly


def test_heatmaps_of_an_image_net_keep_its_shape_and_leave_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 64, 3)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    maps = heatmaps(model, x, y)  # conv first: RNF's epsilon_plus_flat, BatchNorm merged
    assert maps.shape == x.shape and torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


def test_default_composite_keeps_rnf_unit_scores_and_gives_linear_first_models_informative_maps():
    torch.manual_seed(0)
    model = ClassMLP(hidden=16)
    x, y = torch.rand(10, 64), torch.randint(0, 10, (10,))
    flat = heatmaps(model, x, y, composite="epsilon_plus_flat")
    assert torch.allclose(flat, flat[:, :1].expand_as(flat))  # the flat rule on a Linear first layer: constant
    assert not torch.allclose(heatmaps(model, x, y), flat)
    layers = find_unit_layers(model)
    batches = [(x, y, torch.zeros_like(y))]
    a = unit_relevance(model, layers, batches, composite=default_composite(model)).relevance
    b = unit_relevance(model, layers, batches, composite=make_composite()).relevance
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_heatmaps_of_a_multi_head_model_use_each_sample_s_task_head(digits_til):
    torch.manual_seed(0)
    model = MultiHeadMLP(hidden=16)
    for exp in digits_til.train_stream[:2]:
        avalanche_model_adaptation(model, exp)
    x, y = torch.rand(4, 64), torch.tensor([0, 1, 0, 1])
    t = torch.tensor([0, 0, 1, 1])
    maps = heatmaps(model, x, y, t)
    torch.testing.assert_close(maps, heatmaps(model, x, y, t, forward=avalanche_forward), rtol=0, atol=0)
    for i in range(4):  # a sample's map does not depend on the others in its batch
        torch.testing.assert_close(maps[i:i + 1], heatmaps(model, x[i:i + 1], y[i:i + 1], t[i:i + 1]))
    other = heatmaps(model, x, y, 1 - t)
    assert not torch.allclose(maps, other)
    with pytest.raises(ValueError, match="outside the model output"):
        heatmaps(model, x, torch.tensor([0, 1, 2, 0]), t)


# ---------------------------------------------------------------- measures and probes
def test_drift_measures():
    torch.manual_seed(0)
    a = torch.randn(5, 1, 8, 8)
    assert cosine_similarity(a, a.clone()) == 1.0 and rank_correlation(a, a.clone(), 10) == 1.0
    assert cosine_similarity(a, -a) == -1.0
    assert cosine_similarity(a, 3 * a) == pytest.approx(1.0, abs=1e-12)
    ordered = torch.arange(10.0)[None]
    assert rank_correlations(ordered, -ordered, 10).tolist() == [-1.0]
    assert rank_correlations(ordered, ordered ** 2, 4).tolist() == [1.0]  # monotone: same ranks
    assert rank_correlations(ordered, torch.zeros(1, 10), 4).tolist() == [0.0]
    e = torch.eye(4)
    assert cosine_similarities(e[:2], e[2:]).tolist() == [0.0, 0.0]
    assert cosine_similarities(torch.zeros(2, 3), torch.zeros(2, 3)).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError):
        cosine_similarity(a, a[:, :, :4])


def test_a_non_finite_heatmap_is_no_explanation_not_drift():
    a = torch.rand(3, 10)
    broken = a.clone()
    broken[1, 4] = float("nan")
    broken[2, 0] = float("inf")
    for measure in (cosine_similarities(a, broken), rank_correlations(a, broken, 5),
                    cosine_similarities(broken, a), rank_correlations(broken, a, 5)):
        assert measure[0].item() == 1.0 and measure[1:].isnan().all()
    assert math.isnan(cosine_similarity(a, broken))


def test_probe_indices_are_seeded_and_class_balanced():
    targets = torch.tensor([0] * 10 + [1] * 2 + [2] * 7)
    picked = probe_indices(targets, 3, seed=5)
    assert targets[picked].tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert torch.equal(picked, probe_indices(targets, 3, seed=5))
    assert not torch.equal(picked, probe_indices(targets, 3, seed=6))
    state = torch.get_rng_state()
    probe_indices(targets, 3)
    assert torch.equal(state, torch.get_rng_state())


# ---------------------------------------------------------------- the plugin
def _run(strategy_of, bench, n=3, epochs=2, **plugin_kwargs):
    torch.manual_seed(0)
    model = MultiHeadMLP(hidden=32)
    drift = ExplanationDriftPlugin(probe_per_class=3, top_k=16, **plugin_kwargs)
    strategy = strategy_of(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), drift, epochs)
    for exp in bench.train_stream[:n]:
        strategy.train(exp)
    return drift, strategy


def _naive(model, optimizer, drift, epochs):
    return naive(model, optimizer, [drift], train_mb_size=32, train_epochs=epochs)


def _rnf(model, optimizer, drift, epochs, **kwargs):
    return RNF(model=model, optimizer=optimizer, plugins=[drift], train_mb_size=32, train_epochs=epochs,
               evaluator=quiet_evaluator(), **kwargs)


def _values(drift, measure):
    return [v for values in drift.values for k, v in values.items() if k.startswith(f"XAI/Drift/{measure}/")]


def test_no_drift_for_a_model_that_does_not_change(digits_til):
    drift, strategy = _run(lambda m, o, d, e: _naive(m, torch.optim.SGD(m.parameters(), lr=0.0), d, e), digits_til)
    assert len(_values(drift, "cosine")) == 3  # task 0 after steps 1 and 2, task 1 after step 2
    assert all(v == 1.0 for v in _values(drift, "cosine") + _values(drift, "rank"))
    assert all(torch.equal(maps[0], maps[-1]) for maps in map(drift.maps_after, (0, 1)))
    published = strategy.evaluator.get_all_metrics()
    assert published["XAI/Drift/cosine/Task000"][1] == [1.0, 1.0]
    assert published["XAI/Drift/rank/Task001"][1] == [1.0]


def test_rnf_with_isolation_keeps_old_explanations_exactly_and_naive_drifts(digits_til):
    rnf, strategy = _run(_rnf, digits_til)  # the drift plugin runs before RNF's: it must wait for the freezing
    assert strategy.rnf.isolate is None and strategy.rnf.freeze.values  # isolation on for multi-head models
    assert len(_values(rnf, "cosine")) == 3
    assert all(v == 1.0 for v in _values(rnf, "cosine") + _values(rnf, "rank"))
    assert all(torch.equal(rnf.maps[t][rnf.learned[t]], rnf.maps[t][2]) for t in (0, 1))
    free, _ = _run(lambda *a: _rnf(*a, isolate=False), digits_til)  # frozen units reading changing ones
    assert min(_values(free, "cosine")) < 1.0
    naive_drift, _ = _run(_naive, digits_til)
    assert naive_drift.values[2]["XAI/Drift/cosine/Task000"] < 0.99
    assert naive_drift.values[2]["XAI/Drift/rank/Task000"] < 0.99
    assert np.isnan(naive_drift.curve()[0]) and naive_drift.curve()[2] < 1.0


def test_the_plugin_does_not_change_what_the_strategy_learns(digits_til):
    """No global random state used, no parameter or mode changed: results compare with runs without it."""
    states = []
    for plugins in ([], [ExplanationDriftPlugin(probe_per_class=2, top_k=8)]):
        torch.manual_seed(0)
        model = MultiHeadMLP(hidden=16)
        strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.05), plugins, train_mb_size=32,
                         train_epochs=1)
        for exp in digits_til.train_stream[:2]:
            strategy.train(exp)
        states.append((model.state_dict(), torch.rand(3), model.training))
    (a, ra, ta), (b, rb, tb) = states
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(ra, rb) and ta == tb


def test_probes_drawn_from_another_stream(digits_til):
    drift, _ = _run(_naive, digits_til, n=2, epochs=1, probe_stream=digits_til.test_stream)
    test_x = {tuple(x.tolist()) for x, *_ in digits_til.test_stream[1].dataset.eval()}
    assert all(tuple(x.tolist()) in test_x for x in drift.probes[1][0])
    assert set(drift.values[1]) == {"XAI/Drift/cosine/Task000", "XAI/Drift/rank/Task000"}
    with pytest.raises(ValueError, match="no probes for experience 1"):
        _run(_naive, digits_til, n=2, epochs=1, probe_stream=digits_til.test_stream[:1])


def test_plugin_next_to_ewc_and_replay(digits_til, digits_cil):
    drift, _ = _run(lambda m, o, d, e: EWC(model=m, optimizer=o, criterion=nn.CrossEntropyLoss(), ewc_lambda=10.0,
                                           plugins=[d], evaluator=quiet_evaluator(), train_mb_size=32,
                                           train_epochs=e), digits_til, n=2)
    assert set(drift.values[1]) == {"XAI/Drift/cosine/Task000", "XAI/Drift/rank/Task000"}
    assert 0.0 < drift.values[1]["XAI/Drift/cosine/Task000"] < 1.0
    torch.manual_seed(0)
    model, replay = ClassMLP(hidden=32), ExplanationDriftPlugin(probe_per_class=2, top_k=8)
    strategy = naive(model, torch.optim.SGD(model.parameters(), lr=0.05), [ReplayPlugin(mem_size=100), replay],
                     train_mb_size=32, train_epochs=1)
    strategy.train(digits_cil.train_stream[:2])  # both experiences in one call
    assert sorted(replay.probes) == [0, 1] and len(replay.values) == 2
    assert replay.probes[1][0].shape == (4, 64) and replay.maps[1][1].dtype == torch.float16
    assert set(replay.values[1]) == {"XAI/Drift/cosine/Task000", "XAI/Drift/rank/Task000"}


def test_state_dict_and_atomic_npz(digits_til, tmp_path):
    drift, strategy = _run(_naive, digits_til, n=2, epochs=1)
    copy = ExplanationDriftPlugin(probe_per_class=3, top_k=16)
    copy.load_state_dict(drift.state_dict())
    assert copy.values == drift.values and copy.learned == drift.learned
    assert all(torch.equal(copy.maps[t][s], drift.maps[t][s]) for t in drift.maps for s in drift.maps[t])
    strategy.plugins[strategy.plugins.index(drift)] = copy
    strategy.train(digits_til.train_stream[2])
    assert len(copy.values) == 3 and "XAI/Drift/cosine/Task001" in copy.values[2]
    path = tmp_path / "out" / "heatmaps.npz"
    (tmp_path / "out").mkdir()
    path.write_bytes(b"old")
    assert copy.save_npz(path) == path
    assert [p.name for p in path.parent.iterdir()] == ["heatmaps.npz"]  # no temporary file left
    (tmp_path / "plain").write_bytes(b"")
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode  # the mode of any new file
    arrays = load_npz(path)
    assert arrays["maps_exp000_after002"].dtype == np.float16
    np.testing.assert_array_equal(arrays["maps_exp001_after002"], copy.maps[1][2].numpy())
    np.testing.assert_array_equal(arrays["y_exp002"], copy.probes[2][1].numpy())
    cosine = arrays["drift_cosine"]
    assert cosine.shape == (3, 3) and np.isnan(cosine[0]).all() and cosine[2, 1] == copy.values[2][
        "XAI/Drift/cosine/Task001"]


# ---------------------------------------------------------------- figures
def test_figures_are_written(tmp_path, digits_til):
    torch.manual_seed(0)
    maps = [torch.randn(3, 64) for _ in range(3)]
    images = torch.rand(3, 64)
    paths = [
        figures.heatmap_grid({"rnf": maps, "naive": maps[::-1]}, tmp_path / "grid.png", images=images),
        figures.heatmap_grid({"cnn": [torch.randn(2, 3, 8, 8)]}, tmp_path / "rgb.png", images=torch.rand(2, 3, 8, 8)),
        figures.drift_curves({"rnf": [np.nan, 1.0, 1.0], "naive": [[np.nan, 0.8, 0.6], [np.nan, 0.7, 0.5]]},
                     tmp_path / "drift.png", rank={"rnf": [np.nan, 1.0, 1.0]}),
    ]
    rnf, strategy = _run(_rnf, digits_til, n=2, epochs=1)
    paths.append(figures.unit_relevance(strategy.rnf.raw_scores, tmp_path / "units.png"))
    for path in paths:
        assert path.exists() and path.stat().st_size > 1000, path
    with pytest.raises(ValueError, match="image_shape"):
        figures.heatmap_grid({"x": [torch.randn(2, 10)]}, tmp_path / "bad.png")
