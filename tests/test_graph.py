"""Units from the model's data flow: coupled channel groups, and which units each layer reads."""

from __future__ import annotations

import warnings

import pytest
import torch
from avalanche.models import SlimResNet18
from torch import nn

from avalanche_rnf import UnsupportedModelError, find_unit_layers
from avalanche_rnf.graph import DataFlow, traced_layers
from avalanche_rnf.isolation import input_mask, isolated_weights, unit_sources
from avalanche_rnf.layers import Source, n_units, weight_of
from avalanche_rnf.relevance import plain_forward
from helpers import traced


def test_slim_resnet18_units_are_its_13_coupled_channel_groups():
    model = SlimResNet18(10)
    layers = traced(model)
    assert len(layers) == 13
    stream = {layer.name: layer for layer in layers}["layer2.0.conv2"]
    coupled = {module for module, _ in stream.modules}
    assert coupled == {"layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2"}
    assert dict(stream.modules)["layer2.0.shortcut.0"] == "layer2.0.shortcut.1"  # its BatchNorm goes with it
    sources = unit_sources(model, layers, set())
    assert sources["layer2.0.shortcut.0"] == Source("conv1", 1)  # the stem and layer1's stream are one group
    assert sources["layer3.0.conv1"] == Source("layer2.0.conv2", 1)  # reads layer2's stream, not layer2.1.conv1
    assert sources["linear"] == Source("layer4.0.conv2", 1)
    assert sources["conv1"] is None


def test_a_flattened_map_reads_each_channel_as_a_block_of_features():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    layers = traced(model, (1, 8, 8))
    assert unit_sources(model, layers, set())["3"] == Source("0", 36)


def test_a_depthwise_conv_joins_the_group_it_reads():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    layers = traced(model, (3, 8, 8))
    assert [(layer.name, layer.coupled) for layer in layers] == [("0", (("1", None),)), ("3", ())]
    sources = unit_sources(model, layers, set())
    assert sources["1"] is None and sources["3"] == Source("0", 1)


class _Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1)).mean((2, 3))


class _Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.rare = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.a(x) if x.shape[0] > 1 else self.rare(x)


def test_models_rnf_cannot_isolate_get_an_error_that_names_the_module():
    with pytest.raises(UnsupportedModelError, match="'rare' did not run"):
        traced(_Branch(), (4,))

    class Shuffled(nn.Module):  # a layer's channels split and concatenated again the other way round
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            h = self.a(x)
            return self.head(torch.cat([h[:, 2:], h[:, :2]], 1))

    with pytest.raises(UnsupportedModelError, match="cannot isolate 'head'"):
        traced(Shuffled(), (3, 4, 4))

    class Permuted(nn.Module):  # an index permutation and a channel shuffle: ops the tracer passes over
        def __init__(self, shuffle: bool):
            super().__init__()
            self.a, self.head, self.shuffle = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1), shuffle

        def forward(self, x):
            h = self.a(x)
            if self.shuffle:
                return self.head(h.view(h.shape[0], 2, 2, *h.shape[2:]).transpose(1, 2).reshape(h.shape))
            return self.head(h[:, [1, 0, 3, 2]])

    for shuffle in (False, True):
        with pytest.raises(UnsupportedModelError, match="'head'.*a forward pass shows inputs that change"):
            traced(Permuted(shuffle), (3, 4, 4))


class _Glue(nn.Module):
    """conv a (8 channels) -> parameter-free glue -> depthwise conv -> conv head."""

    def __init__(self, glue):
        super().__init__()
        self.a, self.glue = nn.Conv2d(3, 8, 1), glue
        self.dw, self.head = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 2, 1)

    def forward(self, x):
        return self.head(self.dw(self.glue(self.a(x))))


def _shuffle(h):  # ShuffleNet's channel shuffle, two groups
    return h.view(h.shape[0], 2, 4, *h.shape[2:]).transpose(1, 2).reshape(h.shape)


@pytest.mark.parametrize("glue", [
    _shuffle,  # in front of a depthwise conv, which reads its own group's channels
    lambda h: h[:, [0, 1, 2, 3, 4, 5, 7, 6]],  # one swap of two neighbours
    lambda h: nn.functional.normalize(h, dim=1),  # a normalisation over channels
    lambda h: h * torch.sigmoid(h.mean(1, keepdim=True)),  # a gate computed over channels
], ids=["shuffle-before-depthwise", "one-swap", "normalize-over-channels", "gate-over-channels"])
def test_ops_the_tracer_cannot_follow_are_caught_by_the_check(glue):
    with pytest.raises(UnsupportedModelError, match="a forward pass shows inputs that change"):
        traced(_Glue(glue), (3, 6, 6))


def test_channel_local_glue_passes_the_check():
    traced(_Glue(lambda h: nn.functional.max_pool2d(torch.relu(h), 3, 1, 1) * 2 + 1), (3, 6, 6))

    class FlatConcat(nn.Module):  # concatenated maps flattened into a Linear: the tracer loses the channels
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 3, 1), nn.Linear(5 * 4, 2)

        def forward(self, x):
            return self.head(torch.cat([self.a(x), self.b(x)], 1).flatten(1))

    with pytest.raises(UnsupportedModelError, match="cannot couple the output channels of 'b'"):
        traced(FlatConcat(), (3, 2, 2))


def test_concatenated_inputs_read_their_sources_one_after_the_other():
    model = _Concat()
    assert unit_sources(model, traced(model, (3, 4, 4)), set())["head"] == Source("a", 1, (("b", 1),))

    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 3, 1), nn.Linear(5, 2)

        def forward(self, x):
            return self.head(torch.cat([self.a(x), self.b(x)], 1).mean((2, 3)))

    model = Pooled()
    source = unit_sources(model, traced(model, (3, 2, 2)), set())["head"]
    assert source == Source("a", 1, (("b", 1),))
    keep = {"a": torch.tensor([True, False]), "b": torch.tensor([False, False, True])}
    assert torch.equal(input_mask(model.head, source, keep).flatten(), torch.tensor([True, False, False, False, True]))
    with pytest.raises(UnsupportedModelError, match="concatenated from"):
        source.only("head")


def test_a_grouped_conv_reads_only_its_group_s_share_of_the_units():
    model = nn.Sequential(nn.Conv2d(4, 8, 1), nn.Conv2d(8, 6, 3, groups=2), nn.ReLU(), nn.Conv2d(6, 2, 1))
    layers = traced(model, (4, 8, 8))
    source = unit_sources(model, layers, set())["1"]
    assert source == Source("0", 1, (), 2)
    keep = {"0": torch.tensor([True, True, False, False, False, True, False, False])}
    mask = input_mask(model[1], source, keep)
    assert mask.shape == (6, 4, 1, 1)
    assert torch.equal(mask[:3, :, 0, 0], torch.tensor([[True, True, False, False]] * 3))  # group 0: units 0-3
    assert torch.equal(mask[3:, :, 0, 0], torch.tensor([[False, True, False, False]] * 3))  # group 1: units 4-7


@pytest.mark.parametrize("make", [
    lambda: _Concat(),
    lambda: nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 6, 3, groups=2), nn.ReLU(), nn.Conv2d(6, 2, 1)),
])
def test_kept_units_behind_concatenations_and_grouped_convs_read_only_kept_units(make):
    torch.manual_seed(0)
    model = make().eval()
    layers = traced(model, (3, 6, 6))
    sources = unit_sources(model, layers, set())
    keep = {layer.name: torch.rand(n_units(model.get_submodule(layer.name))) < 0.5 for layer in layers}
    x = torch.randn(4, 3, 6, 6)
    last = layers[-1].name
    keep[last] = torch.ones_like(keep[last])
    before = torch.func.functional_call(model, isolated_weights(model, sources, keep), (x,))
    with torch.no_grad():  # whatever the free units of the other layers learn later ...
        for layer in layers[:-1]:
            for module, _ in layer.modules:
                weight_of(model.get_submodule(module))[~keep[layer.name]] += torch.randn(1).item()
    after = torch.func.functional_call(model, isolated_weights(model, sources, keep), (x,))
    assert torch.equal(before, after)  # ... the kept sub-network's outputs do not move


def test_a_batchnorm_left_trainable_is_passed_over_and_a_misplaced_one_named():
    stray = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = find_unit_layers(stray, strict=False)
    x = (torch.randn(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))
    layers = traced_layers(stray, found, x, plain_forward)
    assert [(layer.name, layer.norm) for layer in layers] == [("0", None), ("3", None)]
    assert dict(layers[1].reads)["3"] == Source("0", 1)

    class Misplaced(nn.Module):  # registered after conv a, but normalises conv b's channels
        def __init__(self):
            super().__init__()
            self.a, self.norm, self.b = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3)

        def forward(self, x):
            return self.norm(self.b(self.a(x)))

    with pytest.raises(UnsupportedModelError, match="cannot freeze 'norm'"):
        traced(Misplaced(), (3, 8, 8))


def test_the_trace_is_cached_per_model_structure():
    model = SlimResNet18(10)
    flow = DataFlow(plain_forward)
    found = find_unit_layers(model)
    assert flow.layers(model, found) is found  # nothing to trace with yet
    flow.example = (torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))
    first = flow.layers(model, found)
    assert flow.layers(model, found) is first
    model.linear = nn.Linear(160, 12)  # grown
    assert flow.layers(model, find_unit_layers(model)) is not first

