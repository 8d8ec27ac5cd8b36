"""Task-agnostic RNF: the task recognizer, and RNF with task_inference on class-incremental digits."""

from __future__ import annotations

import io

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin
from torch import Tensor, nn

from avalanche_rnf import RNF, Relevance, TaskInference, Tolerance
from avalanche_rnf.recognition import (
    FeatureTap,
    Tap,
    TaskRecognizer,
    TaskStats,
    horizontal_flip,
    power_transform,
    recognised_task_logits,
    resolve_views,
    task_weighted_log_probs,
    unit_statistics,
)
from helpers import ClassMLP, MultiHeadMLP, experience_logits


# ---------------------------------------------------------------- the recognizer
def _clusters(seed: int = 0):
    """Three tasks of two classes; task t's features live in columns 2t, 2t+1 (others are noise)."""
    g = torch.Generator().manual_seed(seed)
    feats, labels, tasks = [], [], []
    for t in range(3):
        for c in range(2):
            x = torch.randn(200, 6, generator=g) * 0.3
            x[:, 2 * t + c] += 3.0
            feats.append(x)
            labels.append(torch.full((200,), 2 * t + c))
            tasks.append(torch.full((200,), t))
    return torch.cat(feats), torch.cat(labels), torch.cat(tasks)


def test_recognizer_finds_the_task_from_its_statistics():
    train, labels, tasks = _clusters(0)
    test, test_labels, test_tasks = _clusters(1)
    rec = TaskRecognizer()
    for t in range(3):
        rows = tasks == t
        rec.add_task(torch.arange(6), train[rows], labels[rows])
    assert len(rec) == 3 and rec.scores(test).shape == (1200, 3)
    assert (rec.predict(test) == test_tasks).float().mean() > 0.98
    assert rec.task_of_class(8).tolist() == [0, 0, 1, 1, 2, 2, -1, -1]
    assert rec.class_mask(6)[1].tolist() == [False, False, True, True, False, False]
    assert rec.nbytes() == sum(t.nbytes() for t in rec.tasks) > 0

    buffer = io.BytesIO()
    torch.save(rec.state_dict(), buffer)
    buffer.seek(0)
    clone = TaskRecognizer()
    clone.load_state_dict(torch.load(buffer))
    assert torch.equal(clone.scores(test), rec.scores(test))
    clone.tasks[0].means.add_(1.0)  # a copy, not shared with the original
    assert not torch.equal(clone.scores(test), rec.scores(test))


def test_recognizer_keeps_statistics_only_and_rejects_bad_input():
    train, labels, _ = _clusters()
    rec = TaskRecognizer()
    rec.add_task(torch.tensor([0, 1]), train[:400], labels[:400])
    stored = rec.tasks[0]
    assert stored.means.shape == (2, 2) and stored.precision.shape == (2, 2)  # no samples kept
    with pytest.raises(ValueError, match="feature column"):
        rec.add_task(torch.tensor([], dtype=torch.long), train, labels)
    with pytest.raises(ValueError, match="shrinkage"):
        TaskRecognizer(shrinkage=0)
    with pytest.raises(ValueError, match="power"):
        TaskRecognizer(power=1.5)


def test_full_shrinkage_keeps_the_identity_s_scale_and_scores_as_the_full_matrix_would():
    train, labels, tasks = _clusters(0)
    test, _, test_tasks = _clusters(1)
    rec = TaskRecognizer(shrinkage=1.0)
    for t in range(3):
        rec.add_task(torch.arange(6), train[tasks == t], labels[tasks == t])
    stored = rec.tasks[0]
    assert stored.precision.shape == ()
    as_matrix = TaskStats(**{**vars(stored), "precision": stored.precision * torch.eye(6)})
    assert torch.allclose(as_matrix.distance(test), stored.distance(test), rtol=1e-4)
    # nearest class mean: the pooled spread's scale, 1 / (trace / D), is all that is kept
    x, y = train[tasks == 0], labels[tasks == 0]
    residuals = torch.cat([x[y == c] - x[y == c].mean(0) for c in (0, 1)])
    assert torch.allclose(stored.precision, 6 * (len(x) - 2) / residuals.pow(2).sum(), rtol=1e-4)
    assert (rec.predict(test) == test_tasks).float().mean() > 0.98
    clone = TaskRecognizer()
    clone.load_state_dict(rec.state_dict())
    assert torch.equal(clone.scores(test), rec.scores(test))


def test_a_shrunk_fit_is_the_pooled_within_class_covariance_of_the_transformed_columns():
    train, labels, tasks = _clusters(0)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(0))  # classes interleaved
    x, y = train[tasks == 1][order], labels[tasks == 1][order]
    columns, shrinkage, power = torch.tensor([5, 0, 3, 2]), 0.3, 0.5
    rec = TaskRecognizer(shrinkage=shrinkage, power=power)
    rec.add_task(columns, x, y)
    f = power_transform(x[:, columns].double(), power)
    classes = y.unique()
    means = torch.stack([f[y == c].mean(0) for c in classes])
    residuals = torch.cat([f[y == c] - means[i] for i, c in enumerate(classes)])
    covariance = residuals.T @ residuals / (len(f) - len(classes))
    shrunk = (1 - shrinkage) * covariance + shrinkage * covariance.trace() / len(columns) * torch.eye(len(columns))
    stored = rec.tasks[0]
    assert torch.equal(stored.classes, classes) and torch.allclose(stored.means, means.float())
    assert torch.allclose(stored.precision, torch.linalg.inv(shrunk).float(), rtol=1e-5)


@pytest.mark.parametrize("shrinkage", [0.01, 1.0])
def test_calibration_batch_by_batch_matches_one_tensor_and_leaves_the_features_as_they_are(shrinkage):
    train, labels, _ = _clusters(0)
    held_out = _clusters(1)[0][:400].double()
    fitted = train[:400].double()
    copy = fitted.clone()
    whole, batched, itself = (TaskRecognizer(shrinkage=shrinkage) for _ in range(3))
    whole.add_task(torch.arange(6), fitted, labels[:400], held_out)
    batched.add_task(torch.arange(6), fitted, labels[:400], iter(held_out.split(64)))
    itself.add_task(torch.arange(6), fitted, labels[:400])
    assert torch.equal(fitted, copy)  # the fit centres its own copy
    assert (whole.tasks[0].centre, whole.tasks[0].spread) == (batched.tasks[0].centre, batched.tasks[0].spread)
    assert whole.tasks[0].centre != itself.tasks[0].centre  # the held-out samples set the scale


def _skewed(seed: int) -> tuple[Tensor, Tensor]:
    """Two one-class tasks whose 4 non-negative features are log-normal, at two medians; and the tasks."""
    g = torch.Generator().manual_seed(seed)
    tasks = torch.arange(2).repeat_interleave(2000)
    return (torch.randn(4000, 4, generator=g) + tasks[:, None]).exp(), tasks


def _fit(power: float, features: Tensor, tasks: Tensor) -> TaskRecognizer:
    rec = TaskRecognizer(power=power)
    for t in range(2):
        rec.add_task(torch.arange(4), features[tasks == t], tasks[tasks == t])
    return rec


def test_power_transform_is_applied_to_fitting_and_scoring_and_helps_skewed_features():
    gains = []
    for seed in range(5):
        (train, tasks), (test, test_tasks) = _skewed(seed), _skewed(seed + 100)
        plain, rooted = _fit(1.0, train, tasks), _fit(0.5, train, tasks)
        gains.append(float((rooted.predict(test) == test_tasks).float().mean()
                           - (plain.predict(test) == test_tasks).float().mean()))
    assert min(gains) > 0 and sum(gains) / len(gains) > 0.03, gains
    prerooted = _fit(1.0, train.sqrt(), tasks)
    assert torch.allclose(rooted.scores(test), prerooted.scores(test.sqrt()), atol=1e-4)
    assert power_transform(-test, 0.5).equal(-power_transform(test, 0.5))  # the sign is kept

    clone = TaskRecognizer()
    clone.load_state_dict(rooted.state_dict())
    assert clone.power == 0.5 and torch.equal(clone.scores(test), rooted.scores(test))


def test_task_weighted_log_probs_are_a_distribution_that_a_confident_classifier_can_sway():
    g = torch.Generator().manual_seed(0)
    logits, scores = torch.randn(50, 6, generator=g), torch.randn(50, 2, generator=g)
    task_of_class = torch.tensor([0, 0, 1, 1, -1, -1])
    out = task_weighted_log_probs(logits, scores, task_of_class, 1.0)
    assert torch.allclose(out[:, :4].exp().sum(1), torch.ones(50), atol=1e-5)
    assert (out[:, 4:] < out[:, :4].min(1, keepdim=True).values).all()  # unlearned classes never win
    hard = torch.where(task_of_class[None] == scores.argmax(1, keepdim=True), logits, -torch.inf).argmax(1)
    assert torch.equal(task_weighted_log_probs(logits, scores, task_of_class, 1e4).argmax(1), hard)
    # task 1 is a little more likely, but its classifier is unsure while task 0's is certain
    sway = task_weighted_log_probs(torch.tensor([[10.0, -10.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.1]]),
                                   task_of_class[:4], 1.0)
    assert sway.argmax().item() == 0


# ---------------------------------------------------------------- the features
def test_unit_statistics_give_values_or_mean_and_spread_over_positions():
    values = torch.randn(5, 3)
    assert torch.equal(unit_statistics(values, 3), values)
    maps = torch.randn(5, 3, 4, 4)
    stats = unit_statistics(maps, 3)
    assert stats.shape == (5, 6)
    assert torch.allclose(stats[:, :3], maps.mean((2, 3))) and torch.allclose(stats[:, 3:], maps.std((2, 3)))
    flat = maps.flatten(1)  # a Linear reading the flattened maps: 16 consecutive features per channel
    assert torch.allclose(unit_statistics(flat, 3), stats)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc, self.out = nn.Linear(16, 5), nn.Linear(5, 2)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        return self.out(torch.relu(self.fc(x.flatten(1))))


def test_feature_tap_reads_layer_inputs_and_maps_kept_units_to_columns():
    model = _ConvNet()
    taps = [Tap("conv2", "conv1", 3), Tap("fc", "conv2", 4), Tap("out", "fc", 5)]
    x = torch.randn(7, 1, 6, 6)
    with FeatureTap(model, taps) as tap:
        model(x)
        features = tap.pop()
        with pytest.raises(RuntimeError, match="did not run"):
            tap.pop()  # one forward pass, one pop
    assert not any(m._forward_pre_hooks for m in model.modules())  # removed on exit
    assert tap.widths == {"conv2": 6, "fc": 8, "out": 5} and features.shape == (7, 19)
    hidden = torch.relu(model.fc(model.pool(torch.relu(model.conv2(torch.relu(model.conv1(x))))).flatten(1)))
    assert torch.allclose(features[:, 14:], hidden)
    keep = {"conv1": torch.tensor([False, True, False]), "conv2": torch.tensor([True, False, False, True]),
            "fc": torch.tensor([False, False, True, False, True])}
    assert tap.columns(keep).tolist() == [1, 4, 6, 9, 10, 13, 16, 18]  # conv1 mean/std, conv2 mean/std, fc
    with pytest.raises(ValueError, match="at least one"):
        FeatureTap(model, [])
    with FeatureTap(model, [Tap("conv1", None, 1), Tap("out", "fc", 5)]) as tap:  # the model's input: every task's
        model(x)
        features = tap.pop()
    assert features.shape == (7, 7) and torch.allclose(features[:, :2], unit_statistics(x, 1))
    assert tap.columns(keep).tolist() == [0, 1, 4, 6]


# ---------------------------------------------------------------- RNF with task inference
def _strategy(model, **kwargs):
    torch.manual_seed(0)
    from avalanche.evaluation.metrics import accuracy_metrics

    return RNF(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4),
        tolerance=Tolerance(0.01), relevance=Relevance(reference_size=200),
        train_mb_size=32, train_epochs=8, eval_mb_size=256,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]), **kwargs,
    )


def test_task_inference_recognises_tasks_and_keeps_old_class_logits_exactly(digits_cil):
    torch.manual_seed(0)
    model = ClassMLP()
    strategy = _strategy(model, task_inference=TaskInference())
    test = digits_cil.test_stream
    after = {}
    for i, experience in enumerate(digits_cil.train_stream):
        strategy.train(experience)
        after[i] = experience_logits(model, test[i])[:, list(experience.classes_in_this_experience)]
    metrics = strategy.eval(test)
    for i, experience in enumerate(digits_cil.train_stream):
        now = experience_logits(model, test[i])[:, list(experience.classes_in_this_experience)]
        assert torch.equal(now, after[i]), f"task {i}'s class logits changed"
    recognition = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(5)]
    assert min(recognition) > 0.3 and sum(recognition) / 5 > 0.6
    accuracy = metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
    assert accuracy > 0.7  # without task inference it stays below 0.4 (the next test); retrained at the defaults
    assert strategy.rnf.inference.tap is None and not any(m._forward_pre_hooks for m in model.modules())  # hooks gone
    assert strategy.rnf.state_nbytes() == strategy.rnf.freeze.nbytes() + strategy.rnf.recognizer.nbytes()
    assert len(strategy.rnf.recognizer) == 5

    fresh = ClassMLP()
    fresh.load_state_dict(model.state_dict())
    restored = _strategy(fresh, task_inference=TaskInference())
    restored.rnf.load_state_dict(strategy.rnf.state_dict())
    again = restored.eval(test)  # evaluating right after loading, before any training
    assert again["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == accuracy


def test_features_of_every_layer_recognise_more_than_the_output_layers_input(digits_cil):
    results = {}
    for layers in ("last", "all"):
        torch.manual_seed(0)
        strategy = _strategy(ClassMLP(), task_inference=TaskInference(layers=layers))
        for experience in digits_cil.train_stream:
            strategy.train(experience)
        metrics = strategy.eval(digits_cil.test_stream)
        recognised = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(5)]
        columns = [len(task.columns) for task in strategy.rnf.recognizer.tasks]
        results[layers] = sum(recognised) / 5, columns
    (last, last_columns), (every, every_columns) = results["last"], results["all"]
    assert every > last + 0.05  # measured 0.889 against 0.769
    assert all(a > b for a, b in zip(every_columns, last_columns))  # the first hidden layer's kept units too


def test_the_model_input_recognises_class_incremental_tasks_too(digits_cil):
    torch.manual_seed(0)
    strategy = _strategy(ClassMLP(), task_inference=TaskInference(layers="input"), retraining=None)
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    metrics = strategy.eval(digits_cil.test_stream)
    recognised = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(5)]
    assert all(torch.equal(task.columns, torch.arange(64)) for task in strategy.rnf.recognizer.tasks)
    assert sum(recognised) / 5 > 0.85  # measured 0.933 (0.896 from the kept units' features)
    assert metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"] > 0.85  # measured 0.873 (0.842), no retraining


def test_task_posterior_weighs_each_class_by_its_tasks_probability(digits_cil):
    from avalanche.core import SupervisedPlugin

    strategy = _strategy(ClassMLP(), task_inference=TaskInference())
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    hard = strategy.eval(digits_cil.test_stream)
    outputs = []

    class Record(SupervisedPlugin):
        def after_eval_forward(self, strategy, **kwargs):
            outputs.append(strategy.mb_output.detach().clone())

    strategy.plugins.append(Record())  # after RNF's plugin: sees the outputs it wrote
    strategy.rnf.inference.posterior = 1.0
    soft = strategy.eval(digits_cil.test_stream)
    assert all(torch.allclose(o.logsumexp(1), torch.zeros(len(o)), atol=1e-4) for o in outputs)  # log-probabilities
    recognised = [f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}" for i in range(5)]
    assert [soft[k] for k in recognised] == [hard[k] for k in recognised]  # the recognised task is the same
    accuracy = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
    assert soft[accuracy] > 0.8 and soft[accuracy] != hard[accuracy]
    strategy.rnf.inference.posterior = 1e4  # a near one-hot task posterior: the hard choice again
    assert strategy.eval(digits_cil.test_stream)[accuracy] == hard[accuracy]


def _trained(digits_cil, task_inference):
    torch.manual_seed(0)
    strategy = _strategy(ClassMLP(), task_inference=task_inference)
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    return strategy


def test_recognition_views_average_the_features_of_each_input_and_its_views(digits_cil):
    from avalanche.core import SupervisedPlugin

    def reverse(x):
        return x.flip(-1)

    plain, same, viewed = (_trained(digits_cil, TaskInference(views=v)) for v in ([], [lambda x: x], [reverse]))
    for strategy in (same, viewed):  # the views change recognition only, not training
        assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), strategy.model.parameters()))
    for a, b, c in zip(plain.rnf.recognizer.tasks, same.rnf.recognizer.tasks, viewed.rnf.recognizer.tasks):
        assert torch.allclose(a.means, b.means) and torch.allclose(a.precision, b.precision, rtol=1e-3, atol=1e-3)
        assert not torch.allclose(a.means, c.means)  # fitted on the averaged features
    every = _trained(digits_cil, TaskInference(samples=None))  # a digits task has fewer than 3000 samples
    assert all(torch.equal(a.means, b.means) for a, b in zip(plain.rnf.recognizer.tasks, every.rnf.recognizer.tasks))
    batches = []

    class Record(SupervisedPlugin):
        def after_eval_forward(self, strategy, **kwargs):
            batches.append((strategy.mb_x.clone(), strategy.mb_output.detach().clone()))

    viewed.plugins.append(Record())
    metrics = viewed.eval(digits_cil.test_stream)
    assert metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"] > 0.5
    rnf, model = viewed.rnf, viewed.model
    with rnf.inference.capture(model, rnf.layers) as tap, torch.no_grad():
        for x, output in batches:
            logits = model(x)
            own = tap.pop()
            model(reverse(x))
            scores = rnf.recognizer.scores((own + tap.pop()) / 2)
            assert torch.equal(output, recognised_task_logits(logits, scores.argmax(1), rnf.recognizer.class_mask(10)))


def test_views_by_name_or_callable():
    images = torch.arange(6.0).reshape(1, 1, 2, 3)
    assert horizontal_flip(images)[0, 0].tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    assert resolve_views(["hflip", abs]) == [horizontal_flip, abs]
    for bad, message in (("hflip", "sequence"), (["vflip"], "unknown view"), ([3], "callable")):
        with pytest.raises(ValueError, match=message):
            resolve_views(bad)


def test_recognition_options_are_checked():
    with pytest.raises(ValueError, match="recognition layers must be 'auto', 'all', 'last' or 'input'"):
        _strategy(ClassMLP(), task_inference=TaskInference(layers="first"))
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match="recognition samples must be a positive number"):
            _strategy(ClassMLP(), task_inference=TaskInference(samples=bad))
    assert _strategy(ClassMLP(), task_inference=TaskInference(samples=None)).rnf.inference.samples is None
    with pytest.raises(ValueError, match="recognition views .* need mode 'class'"):
        _strategy(ClassMLP(), task_inference=TaskInference(mode="domain", views=["hflip"]))
    views = _strategy(ClassMLP(), task_inference=TaskInference(views=["hflip"])).rnf.inference.views
    assert views == [horizontal_flip]
    for bad in (0, 1.5, "0.3"):
        with pytest.raises(ValueError, match=r"recognition shrinkage must be 'auto' or in \(0, 1\]"):
            _strategy(ClassMLP(), task_inference=TaskInference(shrinkage=bad))
    assert _strategy(ClassMLP(), task_inference=TaskInference(shrinkage=0.3)).rnf.recognizer.shrinkage == 0.3
    for bad in (0, 2, "0.5"):
        with pytest.raises(ValueError, match=r"recognition power must be in \(0, 1\]"):
            _strategy(ClassMLP(), task_inference=TaskInference(power=bad))
    assert _strategy(ClassMLP(), task_inference=TaskInference(power=0.5)).rnf.recognizer.power == 0.5
    for bad in (0, -1.0, "1"):
        with pytest.raises(ValueError, match="task posterior must be None or a positive scale"):
            _strategy(ClassMLP(), task_inference=TaskInference(posterior=bad))
    with pytest.raises(ValueError, match="task posterior .* needs mode 'class'"):
        _strategy(ClassMLP(), task_inference=TaskInference(mode="domain", posterior=1.0))
    assert _strategy(ClassMLP(), task_inference=TaskInference(posterior=2.0)).rnf.inference.posterior == 2.0


def test_without_task_inference_class_incremental_rnf_forgets_like_naive(digits_cil):
    model = ClassMLP()
    strategy = _strategy(model, task_inference=None)
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    metrics = strategy.eval(digits_cil.test_stream)
    assert metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"] < 0.4
    assert not any(k.startswith("RNF/TaskRecognition") for k in metrics)


def test_task_inference_needs_isolation_and_a_single_head(digits_til):
    with pytest.raises(ValueError, match="isolation"):
        _strategy(ClassMLP(), task_inference=TaskInference("class"), isolate=False)
    strategy = _strategy(MultiHeadMLP(), task_inference=TaskInference("class"))
    with pytest.raises(ValueError, match="single-head"):
        strategy.train(digits_til.train_stream[0])
    assert strategy.clock.train_exp_iterations == 0  # refused before training, not after an experience


def test_periodic_evaluation_inside_an_experience_leaves_outputs_as_they_are(digits_cil):
    model = ClassMLP()
    strategy = _strategy(model, task_inference=TaskInference())
    strategy.train(digits_cil.train_stream[0])
    strategy.rnf._in_experience = True  # as in an evaluation during the next experience
    metrics = strategy.eval(digits_cil.test_stream[:2])
    assert not any(k.startswith("RNF/TaskRecognition") for k in metrics)
    assert strategy.rnf.inference.tap is None


def test_harness_runs_rnf_with_task_inference_in_class_incremental_mode():
    from avalanche_rnf.bench.hparams import TRAINING, strategy_params, with_overrides
    from avalanche_rnf.bench.runner import RunSpec, run
    from avalanche_rnf.bench.streams import build_stream

    assert strategy_params("rnf", "split_mnist", "class")["task_inference"] is True
    assert "task_inference" not in strategy_params("rnf", "split_mnist", "task")
    cifar = strategy_params("rnf", "split_cifar10", "class")  # recognition options chosen per benchmark
    assert cifar["recognition_power"] == 0.5 and cifar["task_posterior"] == 1.0
    assert cifar["recognition_samples"] is None and cifar["recognition_views"] == ["hflip"]
    assert "recognition_power" not in strategy_params("rnf", "split_mnist", "class")
    assert "recognition_power" not in strategy_params("lwf", "split_cifar10", "class")
    stream = build_stream("split_digits", "class", seed=0)
    spec = RunSpec("rnf", strategy_params("rnf", "split_digits", "class"),
                   with_overrides(TRAINING["split_digits"], epochs=4), 0)
    record = run(spec, stream, raise_errors=True)
    assert len(record.task_recognition) == 5
    assert record.task_recognition[0][0] == 1.0 and record.task_recognition[0][1:] == [None] * 4
    assert all(v is not None for v in record.task_recognition[-1])
    assert record.recognition_bytes[-1] > record.recognition_bytes[0] > 0
