"""The option classes (avalanche_rnf.options): their checks, the plugin's shorthand for them, and
the harness's mapping of its flat parameter names onto them (avalanche_rnf.bench.strategies.rnf_options)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from avalanche_rnf import (
    RNF,
    Capacity,
    Relevance,
    RelevanceMass,
    Retraining,
    RNFPlugin,
    TaskInference,
    Tolerance,
    TopFraction,
)
from avalanche_rnf.recognition import horizontal_flip
from helpers import MultiHeadMLP


# ---------------------------------------------------------------- each class checks its values
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Relevance(composite="lrp-magic"), "Unknown zennit composite 'lrp-magic'"),
        (lambda: Relevance(start="max"), "start must be 'onehot' or 'logit', got 'max'"),
        (lambda: Relevance(reduction="sum"), "reduction must be 'abs' or 'positive', got 'sum'"),
        (lambda: Relevance(reference_size=0), "reference_size must be a positive number of samples"),
        (lambda: Relevance(reference_size=2.5), "reference_size must be a positive number of samples"),
        (lambda: Relevance(batch_size=0), "batch_size must be positive, got 0"),
        (lambda: Tolerance(1.0), r"max_drop must be an accuracy fraction in \[0, 1\), got 1.0"),
        (lambda: Tolerance(-0.1), r"max_drop must be an accuracy fraction in \[0, 1\)"),
        (lambda: Tolerance("0.01"), r"max_drop must be an accuracy fraction in \[0, 1\)"),
        (lambda: Tolerance(0.01, holdout=0), r"holdout must be a fraction in \(0, 1\), got 0"),
        (lambda: Tolerance(0.01, holdout=1.5), r"holdout must be a fraction in \(0, 1\), got 1.5"),
        (lambda: Tolerance(0.01, steps=-1), "steps must be a non-negative integer, got -1"),
        (lambda: Capacity("some"), r"capacity must be 'fair', 'unlimited' or a fraction in \(0, 1\], got 'some'"),
        (lambda: Capacity(0), r"capacity must be 'fair', 'unlimited' or a fraction in \(0, 1\], got 0"),
        (lambda: Capacity(1.5), r"capacity must be 'fair', 'unlimited' or a fraction in \(0, 1\], got 1.5"),
        (lambda: Capacity(True), r"capacity must be 'fair', 'unlimited' or a fraction in \(0, 1\], got True"),
        (lambda: Capacity(keep_last="yes"), "keep_last must be True, False or 'auto', got 'yes'"),
        (lambda: Capacity(n_experiences=0), "n_experiences must be positive, got 0"),
        (lambda: Retraining(0), "retraining epochs must be a positive number of epochs, got 0"),
        (lambda: Retraining(-0.5), "retraining epochs must be a positive number of epochs, got -0.5"),
        (lambda: Retraining(True), "retraining epochs must be a positive number of epochs, got True"),
        (lambda: Retraining("1"), "retraining epochs must be a positive number of epochs, got '1'"),
        (lambda: Retraining(1, lr_scale=0), "retraining lr_scale must be a positive factor, got 0"),
        (lambda: Retraining(1, lr_scale=True), "retraining lr_scale must be a positive factor, got True"),
        (lambda: TaskInference("task"), "task_inference must be 'auto', 'class' or 'domain', got 'task'"),
        (lambda: TaskInference(layers="first"),
         r"recognition layers must be 'auto', 'all', 'last', 'input' or 'all\+input', got 'first'"),
        (lambda: TaskInference(samples=0), "recognition samples must be a positive number of samples"),
        (lambda: TaskInference(shrinkage=0), r"recognition shrinkage must be 'auto' or in \(0, 1\], got 0"),
        (lambda: TaskInference(power=1.5), r"recognition power must be in \(0, 1\], got 1.5"),
        (lambda: TaskInference(posterior=-1.0), "task posterior must be None or a positive scale, got -1.0"),
        (lambda: TaskInference("domain", posterior=1.0), "task posterior weighs .* it needs mode 'class'"),
        (lambda: TaskInference("domain", views=["hflip"]), "recognition views average .* they need mode 'class'"),
        (lambda: TaskInference(views=["vflip"]), "unknown view"),
    ],
)
def test_each_option_rejects_a_bad_value_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_defaults_are_valid_and_the_options_cannot_be_changed_once_made():
    for option in (Relevance(), Tolerance(0.01), Capacity(), Retraining(1), TaskInference()):
        field = dataclasses.fields(option)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(option, field, None)
    assert Tolerance(0.0).max_drop == 0.0 and Capacity(1.0).share == 1.0 and Retraining(0.5).epochs == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"relevance": "abs"}, "relevance must be a Relevance, got 'abs'"),
        ({"tolerance": [0.01]}, r"tolerance must be a Tolerance, got \[0.01\]"),
        ({"tolerance": 1.5}, r"max_drop must be an accuracy fraction in \[0, 1\)"),
        ({"capacity": "some"}, "capacity must be 'fair', 'unlimited' or a fraction"),
        ({"capacity": Tolerance(0.01)}, "capacity must be a Capacity"),
        ({"retraining": 0}, "retraining epochs must be a positive number"),
        ({"retraining": True}, "retraining must be a Retraining, got True"),
        ({"task_inference": "task"}, "task_inference must be 'auto', 'class' or 'domain'"),
        ({"task_inference": 1}, "task_inference must be 'auto', 'class' or 'domain', got 1"),
        ({"task_inference": "domain", "isolate": False}, "task_inference needs isolation"),
    ],
)
def test_the_plugin_rejects_what_is_not_an_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNFPlugin(**kwargs)


# ---------------------------------------------------------------- shorthand forms
def _settings(plugin: RNFPlugin) -> dict:
    """Everything the plugin made of its options."""
    inference = plugin.inference
    search = plugin.search
    return {
        "selection": plugin.selection,
        "relevance": plugin.relevance,
        "tolerance": "auto" if "tolerance" in plugin._auto else plugin.tolerance,
        "search": (search.max_drop, search.steps) if search is not None else None,
        "capacity": plugin.capacity,
        "retraining": "auto" if "retraining" in plugin._auto else (plugin.retraining.epochs,
                                                                   plugin.retraining.lr_scale),
        "isolate": plugin.isolate,
        "task_inference": plugin.task_inference,
        "inference": (inference.mode, inference.layers, inference.samples, inference.posterior, inference.views,
                      inference.recognizer.shrinkage, inference.recognizer.power),
    }


@pytest.mark.parametrize(
    "short, full",
    [
        ({"tolerance": 0.01}, {"tolerance": Tolerance(0.01)}),
        ({"tolerance": 0}, {"tolerance": Tolerance(0.0)}),
        ({"capacity": "unlimited"}, {"capacity": Capacity("unlimited")}),
        ({"capacity": 0.2}, {"capacity": Capacity(0.2)}),
        ({"retraining": 1}, {"retraining": Retraining(1)}),
        ({"retraining": 0.5}, {"retraining": Retraining(0.5, lr_scale=1.0)}),
        ({"task_inference": "domain"}, {"task_inference": TaskInference(mode="domain")}),
        ({"task_inference": "class"}, {"task_inference": TaskInference(mode="class")}),
        ({"task_inference": None}, {"task_inference": False}),
    ],
    ids=["tolerance", "tolerance-zero", "capacity-unlimited", "capacity-fraction", "retraining",
         "retraining-fraction", "domain", "class", "off"],
)
def test_a_shorthand_gives_the_same_settings_as_the_full_option(short, full):
    made = _settings(RNFPlugin(**short))
    assert made == _settings(RNFPlugin(**full))
    assert made != _settings(RNFPlugin())  # the option did change something


def test_the_shorthand_settings_are_those_of_the_option():
    plugin = RNFPlugin(tolerance=0.01, capacity="unlimited", retraining=1, task_inference="domain")
    assert plugin.tolerance == Tolerance(0.01, holdout=0.1, steps=7)
    assert plugin.capacity == Capacity("unlimited", n_experiences=None, keep_last="auto")
    assert (plugin.retraining.epochs, plugin.retraining.lr_scale) == (1, 1.0)
    assert plugin.task_inference == "domain" and plugin.isolate is True  # task inference turns isolation on
    assert _settings(RNFPlugin(task_inference=True)) == _settings(RNFPlugin(task_inference="class"))


def test_off_and_defaults():
    plugin = RNFPlugin()
    assert plugin.tolerance is None and plugin.search is None
    assert plugin.capacity == Capacity("fair") and plugin.relevance == Relevance()
    assert plugin.retraining.epochs == 0 and plugin.isolate is None
    # task inference is chosen when training starts (tests/test_scenario.py); until then none
    assert plugin.inference.mode == "auto" and plugin.task_inference is None and plugin.scenario is None
    assert _settings(RNFPlugin(task_inference=TaskInference())) == _settings(plugin)
    assert _settings(RNFPlugin(task_inference=False)) == _settings(RNFPlugin(task_inference=None))
    assert _settings(RNFPlugin(tolerance="auto", retraining="auto", relevance=None)) == _settings(plugin)
    assert _settings(RNFPlugin(tolerance=None)) != _settings(plugin)  # "auto": the scenario's (tests/test_scenario.py)
    assert _settings(RNFPlugin(retraining=None)) != _settings(plugin)


def test_the_strategy_passes_every_option_to_its_plugin():
    model = MultiHeadMLP(hidden=16)
    options = dict(selection=TopFraction(0.3), relevance=Relevance(reference_size=50, batch_size=32),
                   tolerance=Tolerance(0.02, holdout=0.2, steps=5),
                   capacity=Capacity(0.5, n_experiences=3, keep_last=True),
                   retraining=Retraining(0.5, lr_scale=2.0), head_transfer=False, seed=3)
    strategy = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **options)
    assert _settings(strategy.rnf) == _settings(RNFPlugin(**options))
    assert strategy.rnf.heads.transfer is False and strategy.rnf.seed == 3
    shorthand = RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), tolerance=0.02,
                    capacity="unlimited", retraining=1, task_inference="class")
    assert _settings(shorthand.rnf) == _settings(RNFPlugin(tolerance=Tolerance(0.02), capacity=Capacity("unlimited"),
                                                           retraining=Retraining(1), task_inference="class"))
    assert RNF(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               task_inference=TaskInference(views=["hflip"])).rnf.inference.views == [horizontal_flip]


# ---------------------------------------------------------------- the harness's flat names
def test_rnf_options_maps_flat_names_to_the_options():
    from avalanche_rnf.bench.strategies import rnf_options

    options = rnf_options({"max_drop": 0.001, "holdout": 0.05, "keep_last": True, "retrain_epochs": 1,
                           "retrain_lr_scale": 4, "reference_size": 300, "mass": 0.9})
    selection = options.pop("selection")
    assert isinstance(selection, RelevanceMass) and selection.mass == 0.9
    assert options == {
        "tolerance": Tolerance(0.001, holdout=0.05),
        "capacity": Capacity(keep_last=True),
        "retraining": Retraining(1, lr_scale=4),
        "relevance": Relevance(reference_size=300),
        "task_inference": None,
    }


def test_rnf_options_maps_every_group():
    from avalanche_rnf.bench.strategies import rnf_options

    options = rnf_options({
        "max_drop": 0.002, "search_steps": 5, "capacity": 0.09, "n_experiences": 10, "keep_last": True,
        "retrain_epochs": 0.9, "retrain_lr_scale": 5, "task_inference": "domain", "recognition_layers": "input",
        "recognition_samples": None, "recognition_shrinkage": 1.0, "recognition_power": 0.5,
        "composite": "epsilon_plus", "start": "logit", "reduction": "positive", "relevance_batch_size": 64,
        "unit_scores": "taylor", "isolate": True, "head_transfer": False,
    })
    assert options == {
        "selection": None,
        "tolerance": Tolerance(0.002, steps=5),
        "capacity": Capacity(0.09, n_experiences=10, keep_last=True),
        "retraining": Retraining(0.9, lr_scale=5),
        "task_inference": TaskInference("domain", layers="input", samples=None, shrinkage=1.0, power=0.5),
        "relevance": Relevance("epsilon_plus", start="logit", reduction="positive", batch_size=64, method="taylor"),
        "isolate": True,
        "head_transfer": False,
    }
    cls = rnf_options({"task_inference": True, "task_posterior": 1.0, "recognition_views": ["hflip"]})
    assert cls["task_inference"] == TaskInference("class", posterior=1.0, views=["hflip"])


def test_rnf_options_leaves_out_what_is_switched_off():
    from avalanche_rnf.bench.strategies import rnf_options

    off = rnf_options({"max_drop": None, "retrain_epochs": 0, "retrain_lr_scale": 2, "task_inference": False,
                       "recognition_layers": "last"})
    assert off == {"selection": None, "relevance": Relevance(), "task_inference": None, "tolerance": None,
                   "retraining": None}
    assert _settings(RNFPlugin(**off)) == _settings(RNFPlugin(task_inference=None, tolerance=None, retraining=None))


def test_every_rnf_parameter_set_of_the_harness_maps_onto_the_strategy_s_keywords():
    from avalanche_rnf.bench.hparams import SCENARIO_DEFAULTS, TUNED, strategy_params
    from avalanche_rnf.bench.strategies import rnf_options

    keywords = set(inspect.signature(RNF).parameters)
    settings = {(benchmark, scenario) for benchmark, scenario in TUNED} | {
        ("split_mnist", scenario) for strategy, scenario in SCENARIO_DEFAULTS if strategy == "rnf"}
    checked = 0
    for benchmark, scenario in sorted(settings):
        params = {k: v for k, v in strategy_params("rnf", benchmark, scenario).items() if k != "lr"}  # training's
        options = rnf_options(params)
        assert set(options) <= keywords, (benchmark, scenario, set(options) - keywords)
        RNFPlugin(**options)  # every option is valid
        checked += 1
    assert checked >= 2


def test_the_report_names_each_setting_a_run_changed_from_the_library_defaults():
    from avalanche_rnf.bench.defaults_diff import non_defaults
    from avalanche_rnf.bench.hparams import strategy_params

    retrains = {"retrain_epochs": 0.9, "retrain_lr_scale": 2.0}
    assert non_defaults(retrains, "task") == []  # every isolated scenario retrains
    assert non_defaults({"retrain_epochs": 0.9}, "task") == ["retrain_lr_scale=1.0"]  # the harness's scale: 1
    assert non_defaults({}, "task") == ["retrain_epochs=0"]
    assert non_defaults({"retrain_epochs": 0.9, "retrain_lr_scale": 4}, "task") == ["retrain_lr_scale=4"]
    assert non_defaults({"task_inference": True, "max_drop": 0.005, **retrains}, "class") == []  # class retrains too
    assert non_defaults({"task_inference": True, "max_drop": 0.005}, "class") == ["retrain_epochs=0"]
    assert non_defaults({"task_inference": True, "max_drop": 0.005, "retrain_epochs": 1}, "class") == [
        "retrain_epochs=1", "retrain_lr_scale=1.0"]
    assert non_defaults({"task_inference": "domain", "retrain_epochs": 0.9, "retrain_lr_scale": 2.0}, "domain") == []
    assert non_defaults({"task_inference": "domain"}, "domain") == ["retrain_epochs=0"]
    # the recogniser's settings count where they differ from the mode's (input, shrinkage 1 in domain streams)
    domain = {"task_inference": "auto", "retrain_epochs": 0.9, "retrain_lr_scale": 2.0}
    assert non_defaults({**domain, "recognition_layers": "input", "recognition_shrinkage": 1.0}, "domain") == []
    assert non_defaults({**domain, "recognition_layers": "all", "recognition_shrinkage": 0.01}, "domain") == [
        "recognition_layers=all", "recognition_shrinkage=0.01"]
    assert non_defaults({"task_inference": "auto", "max_drop": 0.005, "recognition_layers": "input", **retrains},
                        "class") == ["recognition_layers=input"]
    assert non_defaults({"task_inference": None, **retrains}, "class") == ["task_inference=None", "max_drop=None"]
    assert non_defaults({}, "class") == ["task_inference=None", "max_drop=None",  # the harness asks for all three
                                         "retrain_epochs=0"]
    assert non_defaults({"task_inference": "auto", "max_drop": 0.005, **retrains}, "class") == []
    assert non_defaults({"task_inference": "auto", **retrains}, "task") == []
    assert non_defaults({"task_inference": "domain", **retrains}, "task") == ["task_inference=domain"]
    assert non_defaults({"lr": 0.02, **retrains}, "task") == []  # the run's training, not an RNF setting
    # fields of an option count only where it is on; values equal to the defaults never count
    assert non_defaults({"max_drop": None, "holdout": 0.05, "retrain_epochs": 0, "retrain_lr_scale": 4,
                         "capacity": "fair", "keep_last": True, "reference_size": 300, "mass": 0.95,
                         "isolate": None, "head_transfer": True, "unit_scores": "lrp"}, "class") == [
        "task_inference=None", "max_drop=None", "retrain_epochs=0"]
    assert non_defaults({"mass": 0.9, "isolate": False, "capacity_flex": 2, "unit_scores": "random", **retrains},
                        "task") == [
        "mass=0.9", "isolate=False", "capacity_flex=2", "unit_scores=random"]
    assert non_defaults(strategy_params("rnf", "split_mnist", "task"), "task") == [
        "max_drop=0.002", "retrain_epochs=1", "retrain_lr_scale=4", "holdout=0.05"]
    assert non_defaults(strategy_params("rnf", "split_cifar10", "task"), "task") == [  # tuned with the last task capped
        "max_drop=0.002", "retrain_epochs=1", "retrain_lr_scale=1.0", "keep_last=False"]
    assert non_defaults({"task_inference": True, "recognition_shrinkage": 0.01, "recognition_power": 0.5,
                         "max_drop": 0.005, **retrains}, "class") == ["recognition_power=0.5"]
    assert non_defaults({"task_inference": None, "recognition_power": 0.5, **retrains}, "class") == [
        "task_inference=None", "max_drop=None"]


def test_explicit_views_count_as_default_where_auto_settles_on_them():
    from avalanche_rnf.bench.defaults_diff import non_defaults

    mirrored = {"task_inference": "auto", "max_drop": 0.005, "retrain_epochs": 0.9, "retrain_lr_scale": 2.0,
                "recognition_views": ["hflip"]}
    assert non_defaults(mirrored, "class", "split_cifar10") == []  # training flips CIFAR images
    assert non_defaults(mirrored, "class", "split_mnist") == ["recognition_views=['hflip']"]  # it does not flip MNIST
    assert non_defaults(mirrored, "class") == ["recognition_views=['hflip']"]  # the benchmark unknown
    assert non_defaults({**mirrored, "recognition_views": []}, "class", "split_cifar10") == ["recognition_views=[]"]
    assert non_defaults({**mirrored, "recognition_views": []}, "class", "split_mnist") == []
    domain = {**mirrored, "task_inference": "domain", "max_drop": None}
    assert non_defaults(domain, "domain", "split_cifar10") == ["recognition_views=['hflip']"]  # class mode only
