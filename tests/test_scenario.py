"""``task_inference="auto"``: RNF at its defaults finds the scenario from the model and the stream."""

from __future__ import annotations

import warnings

import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf import Capacity, Retraining, RNFPlugin, TaskInference, Tolerance
from avalanche_rnf.bench.models import MultiHeadMLP
from avalanche_rnf.bench.split_digits import SplitDigits
from avalanche_rnf.scenario import DEFAULT_RECOGNITION, DEFAULT_RETRAINING, RETRAINING_RATE, keeps_last, scenario_of
from helpers import ClassMLP


# ---------------------------------------------------------------- the decision
@pytest.mark.parametrize(
    "multi_head, classes, current, n_outputs, name, mode",
    [
        (True, [{0, 1}, {2, 3}], {0, 1}, None, "task", None),
        (True, [{0, 1}, {0, 1}], {0, 1}, None, "task", None),
        (False, [{0, 1}, {2, 3}, {4, 5}], {0, 1}, 10, "class", "class"),
        (False, [{0, 1}, {0, 1}, {0, 1}], {0, 1}, 2, "domain", "domain"),
        (False, [{0, 1}, {1, 2}], {0, 1}, 3, "other", None),  # shared in part
        (False, [{0, 1}], {0, 1}, 2, "other", None),  # one experience
        (False, None, {0, 1}, 10, "class", "class"),  # lazy stream: the head's size decides
        (False, None, set(range(10)), 10, "domain", "domain"),
        (False, None, {0, 1}, None, "other", None),
        (False, None, {0, 1}, 2, "class", "class"),  # a growing head (IncrementalClassifier) before it grows
    ],
)
def test_the_scenario_follows_the_heads_and_the_classes(multi_head, classes, current, n_outputs, name, mode):
    grows = classes is None and n_outputs == 2
    scenario = scenario_of(multi_head, classes, current, n_outputs, grows)
    assert (scenario.name, scenario.mode) == (name, mode)
    assert scenario.reason


# ---------------------------------------------------------------- in a plain Avalanche pipeline
def _train(model: nn.Module, stream, plugin: RNFPlugin, epochs: int = 2):
    torch.manual_seed(0)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                     criterion=nn.CrossEntropyLoss(), plugins=[plugin], train_mb_size=32, train_epochs=epochs,
                     eval_mb_size=256, evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]))
    for experience in stream:
        strategy.train(experience)
    return strategy


def _stream_accuracy(strategy, stream) -> float:
    return strategy.eval(stream)["Top1_Acc_Stream/eval_phase/test_stream/Task000"]


def test_defaults_infer_classes_on_a_class_incremental_stream_and_beat_no_inference():
    bm = SplitDigits(5, return_task_id=False, seed=0)
    auto = RNFPlugin()  # four epochs: the units are chosen 0.9 epochs before the end, on a model that has learned
    strategy = _train(ClassMLP(), bm.train_stream, auto, epochs=4)
    assert auto.scenario is not None and auto.scenario.name == "class"
    assert auto.task_inference == "class" and len(auto.recognizer) == 5
    assert auto.tolerance == Tolerance(0.005) and len(auto.searches) == 5  # the class scenario's tolerance
    assert (auto.retraining.epochs, auto.retraining.lr_scale) == (0.9, RETRAINING_RATE)  # the one retraining
    assert (auto.inference.layers, auto.recognizer.shrinkage) == DEFAULT_RECOGNITION["class"]  # and its recogniser
    off = _train(ClassMLP(), bm.train_stream, RNFPlugin(task_inference=None), epochs=4)
    assert off.plugins[0].task_inference is None
    assert _stream_accuracy(strategy, bm.test_stream) > _stream_accuracy(off, bm.test_stream) + 0.2


def test_defaults_infer_domains_where_every_experience_holds_the_same_classes():
    bm = SplitDigits(5, return_task_id=False, class_ids_from_zero_in_each_exp=True, seed=0)
    torch.manual_seed(0)
    plugin = RNFPlugin()
    _train(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)),
           bm.train_stream, plugin, epochs=1)
    assert plugin.scenario is not None and plugin.scenario.name == "domain"
    assert plugin.task_inference == "domain" and len(plugin.task_inputs) == 5
    assert (plugin.inference.layers, plugin.recognizer.shrinkage) == DEFAULT_RECOGNITION["domain"]
    assert (plugin.retraining.epochs, plugin.retraining.lr_scale) == (0.9, RETRAINING_RATE)
    assert DEFAULT_RETRAINING == Retraining(0.9, lr_scale=RETRAINING_RATE) != Retraining(0.9)
    restored = RNFPlugin()
    restored.load_state_dict(plugin.state_dict())
    assert (restored.inference.layers, restored.recognizer.shrinkage) == DEFAULT_RECOGNITION["domain"]


@pytest.mark.parametrize("asked", [("auto", "auto"), ("last", 0.3), ("all", "auto")])
def test_the_recogniser_s_auto_settings_follow_the_mode_and_explicit_ones_stay(asked):
    plugin = RNFPlugin(task_inference=TaskInference("auto", layers=asked[0], shrinkage=asked[1]))
    for mode in ("class", "domain"):
        plugin.inference.resolve(mode)
        default = DEFAULT_RECOGNITION[mode]
        want = tuple(d if a == "auto" else a for a, d in zip(asked, default))
        assert (plugin.inference.layers, plugin.recognizer.shrinkage) == want
    explicit = RNFPlugin(task_inference=TaskInference("domain"))  # a mode given: its settings from the start
    assert (explicit.inference.layers, explicit.recognizer.shrinkage) == DEFAULT_RECOGNITION["domain"]


def test_defaults_infer_nothing_for_task_heads_and_with_isolation_off():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    heads = RNFPlugin()
    _train(MultiHeadMLP(hidden=32), bm.train_stream[:2], heads, epochs=1)
    assert heads.scenario is not None and heads.scenario.name == "task" and heads.task_inference is None
    assert heads.isolate is None and heads.freeze.values  # isolation follows the heads, as before
    assert heads.tolerance is None and not heads.searches
    assert (heads.retraining.epochs, heads.retraining.lr_scale) == (DEFAULT_RETRAINING.epochs,
                                                                    DEFAULT_RETRAINING.lr_scale)
    asked = RNFPlugin(retraining=None)
    _train(MultiHeadMLP(hidden=32), bm.train_stream[:1], asked, epochs=1)
    assert asked.retraining.epochs == 0  # only "auto" is the scenario's

    cil = SplitDigits(5, return_task_id=False, seed=0)
    plain = RNFPlugin(isolate=False)  # inference needs isolation: auto leaves it off, and says so
    with pytest.warns(UserWarning, match="infers no task: isolate=False"):
        _train(ClassMLP(), cil.train_stream[:2], plain, epochs=1)
    assert plain.scenario is not None and plain.scenario.name == "class"
    assert plain.task_inference is None and len(plain.recognizer) == 0
    assert plain.retraining.epochs == 0  # nor retraining, which needs isolation


def test_the_last_experience_keeps_every_free_unit_with_task_labels_but_searches_with_class_inference():
    assert [keeps_last("auto", mode) for mode in (None, "domain", "class")] == [True, True, False]
    assert [keeps_last(setting, "class") for setting in (True, False)] == [True, False]  # a setting given stays
    hidden = ("features.1", "features.3")
    heads = RNFPlugin()
    _train(MultiHeadMLP(hidden=32), SplitDigits(2, return_task_id=True, seed=0).train_stream, heads, epochs=1)
    assert all(heads.frozen_fractions[0][name] < 1.0 for name in hidden)
    assert all(heads.frozen_fractions[1][name] == 1.0 for name in hidden)  # the last task keeps the rest
    torch.manual_seed(0)
    classes = RNFPlugin()
    _train(ClassMLP(), SplitDigits(2, return_task_id=False, seed=0).train_stream, classes, epochs=2)
    assert classes.task_inference == "class" and len(classes.searches) == 2  # the last one searched too
    assert all(classes.frozen_fractions[1][name] < 1.0 for name in ("features.0", "features.2"))  # not every unit
    assert Capacity().keep_last == "auto" and RNFPlugin(capacity=Capacity(keep_last=False)).capacity.keep_last is False


def test_online_streams_see_their_origin_stream():
    bm = SplitDigits(5, return_task_id=False, seed=0)
    online = split_online_stream(bm.train_stream, experience_size=64, access_task_boundaries=True, seed=0)
    plugin = RNFPlugin()
    _train(ClassMLP(), online, plugin, epochs=1)
    assert plugin.task_inference == "class" and len(plugin.recognizer) == 5  # from the origin stream's classes


def test_online_task_streams_leave_the_default_retraining_off_without_a_warning():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    online = with_task_labels(split_online_stream(bm.train_stream[:2], experience_size=64,
                                                  access_task_boundaries=True, seed=0))
    plugin = RNFPlugin()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(MultiHeadMLP(hidden=32), online, plugin, epochs=1)
    assert not [w for w in caught if "retraining" in str(w.message)]
    assert plugin.scenario is not None and plugin.scenario.name == "task" and plugin.retraining.epochs == 0
    assert len(plugin.frozen_fractions) == 2


@torch.no_grad()
def _class_logits(model: nn.Module, experience, classes) -> torch.Tensor:
    x = torch.stack([item[0] for item in experience.dataset])
    return model.eval()(x)[:, sorted(classes)]


def test_the_chosen_mode_and_isolation_survive_a_checkpoint():
    bm = SplitDigits(5, return_task_id=False, seed=0)
    model, plugin = ClassMLP(), RNFPlugin()
    _train(model, bm.train_stream[:2], plugin, epochs=1)
    first = set(bm.train_stream[0].classes_in_this_experience)
    before = _class_logits(model, bm.test_stream[0], first)

    fresh = ClassMLP()
    fresh.load_state_dict(model.state_dict())
    restored = RNFPlugin()
    restored.load_state_dict(plugin.state_dict())
    assert restored.task_inference == "class" and restored.inference.mode == "class" and restored.isolate is True
    assert (restored.inference.layers, restored.recognizer.shrinkage) == DEFAULT_RECOGNITION["class"]
    assert restored.scenario == plugin.scenario and restored.scenario is not None
    _train(fresh, bm.train_stream[2:3], restored, epochs=1)  # trained on after the restore
    assert torch.equal(_class_logits(fresh, bm.test_stream[0], first), before)
    assert len(restored.recognizer) == 3


def test_explicit_settings_that_auto_leaves_unused_warn():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    plugin = RNFPlugin(task_inference=TaskInference(layers="last"))
    with pytest.warns(UserWarning, match="TaskInference settings given"):
        _train(MultiHeadMLP(hidden=32), bm.train_stream[:1], plugin, epochs=1)
    assert plugin.task_inference is None


def test_auto_warns_and_infers_nothing_where_the_output_layer_cannot_be_read():
    bm = SplitDigits(5, return_task_id=False, seed=0)
    plugin = RNFPlugin()
    with pytest.warns(UserWarning, match="infers no task"):
        _train(nn.Sequential(nn.Linear(64, 10)), bm.train_stream[:1], plugin, epochs=1)  # no hidden layer
    assert plugin.scenario is not None and plugin.scenario.name == "class" and plugin.task_inference is None
