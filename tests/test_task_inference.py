"""Task-agnostic RNF: RNF with task_inference on class-incremental digits (the recognizer alone is in
test_recognition.py)."""

from __future__ import annotations

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

from avalanche_rnf import RNF, Relevance, TaskInference, Tolerance
from avalanche_rnf.pooled import JointRecognizer
from avalanche_rnf.recognition import horizontal_flip, own_class_logits, recognised_task_logits, resolve_views
from helpers import ClassMLP, MultiHeadMLP, experience_logits


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


def _recognition(digits_cil, layers: str):
    """The share of test inputs whose task is recognised (mean over experiences), the strategy
    trained with recognition from ``layers``, and its metrics."""
    strategy = _trained(digits_cil, TaskInference(layers=layers))
    metrics = strategy.eval(digits_cil.test_stream)
    recognised = [metrics[f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}"] for i in range(5)]
    return sum(recognised) / 5, strategy, metrics


def test_features_of_every_layer_recognise_more_than_the_output_layers_input(digits_cil):
    (last, last_run, _), (every, every_run, _) = (_recognition(digits_cil, layers) for layers in ("last", "all"))
    assert every > last + 0.05  # measured 0.889 against 0.769
    columns = [[len(task.columns) for task in run.rnf.recognizer.tasks] for run in (every_run, last_run)]
    assert all(a > b for a, b in zip(*columns))  # the first hidden layer's kept units too


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

    # the loss over every class: the kept units' features then recognise tasks better on their own
    strategy = _strategy(ClassMLP(), task_inference=TaskInference(layers="all", own_classes=False))
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    runs: list[list[torch.Tensor]] = []

    class Record(SupervisedPlugin):
        def before_eval(self, strategy, **kwargs):
            runs.append([])

        def after_eval_forward(self, strategy, **kwargs):
            runs[-1].append(strategy.mb_output.detach().clone())

    strategy.plugins.append(Record())  # after RNF's plugin: sees the outputs it wrote
    hard = strategy.eval(digits_cil.test_stream)
    strategy.rnf.inference.posterior = 1.0
    soft = strategy.eval(digits_cil.test_stream)
    hard_outputs, soft_outputs = torch.cat(runs[0]), torch.cat(runs[1])
    assert torch.allclose(soft_outputs.logsumexp(1), torch.zeros(len(soft_outputs)), atol=1e-4)  # log-probabilities
    recognised = [f"RNF/TaskRecognition/eval_phase/test_stream/Exp{i:03d}" for i in range(5)]
    assert [soft[k] for k in recognised] == [hard[k] for k in recognised]  # the recognised task is the same
    assert (soft_outputs.argmax(1) != hard_outputs.argmax(1)).any()  # but some predicted classes change
    accuracy = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
    assert soft[accuracy] > 0.8
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
    with pytest.raises(ValueError, match="recognition layers must be 'auto', 'all', 'last', 'input' or 'all\\+input'"):
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
    for benchmark in ("split_mnist", "split_cifar10"):  # the recogniser at the library's defaults everywhere
        assert not {"recognition_power", "task_posterior", "recognition_samples", "recognition_views"} & set(
            strategy_params("rnf", benchmark, "class"))
    stream = build_stream("split_digits", "class", seed=0)
    spec = RunSpec("rnf", strategy_params("rnf", "split_digits", "class"),
                   with_overrides(TRAINING["split_digits"], epochs=4), 0)
    record = run(spec, stream, raise_errors=True)
    assert len(record.task_recognition) == 5
    assert record.task_recognition[0][0] == 1.0 and record.task_recognition[0][1:] == [None] * 4
    assert all(v is not None for v in record.task_recognition[-1])
    assert record.recognition_bytes[-1] > record.recognition_bytes[0] > 0


def test_every_layer_and_the_input_pooled_recognise_more_than_every_layer_alone(digits_cil):
    (every, plain, _), (joint, strategy, metrics) = (_recognition(digits_cil, x) for x in ("all", "all+input"))
    assert joint > every + 0.05  # measured 0.964 against 0.853
    recognizer = strategy.rnf.recognizer
    assert isinstance(recognizer, JointRecognizer) and not isinstance(plain.rnf.recognizer, JointRecognizer)
    shared = recognizer.pooled.tasks[0].columns  # the input's 64 pixels, after the kept units' columns
    assert torch.equal(shared, torch.arange(int(shared[0]), int(shared[0]) + 64))
    assert all(torch.equal(task.columns, shared) for task in recognizer.pooled.tasks)
    assert all(int(task.columns.max()) < int(shared[0]) for task in recognizer.tasks)
    assert [len(t.columns) for t in recognizer.tasks] == [len(t.columns) for t in plain.rnf.recognizer.tasks]

    fresh = ClassMLP()
    fresh.load_state_dict(strategy.model.state_dict())
    restored = _strategy(fresh, task_inference=TaskInference(layers="all+input"))
    restored.rnf.load_state_dict(strategy.rnf.state_dict())
    key = "Top1_Acc_Stream/eval_phase/test_stream/Task000"
    assert restored.eval(digits_cil.test_stream)[key] == metrics[key]


def test_own_class_logits_leave_the_rows_and_the_batch_labels_to_the_loss():
    logits = torch.randn(4, 6, requires_grad=True)
    rows = torch.tensor([False, False, True, True, False, False])
    labels = torch.tensor([2, 3, 3, 5])  # 5: a label outside the rows (e.g. a replayed sample) stays readable
    out = own_class_logits(logits, rows, labels)
    assert torch.isinf(out[:, [0, 1, 4]]).all() and torch.equal(out[:, [2, 3, 5]], logits[:, [2, 3, 5]])
    torch.nn.functional.cross_entropy(out, labels).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[:, [0, 1, 4]] == 0).all()
    assert (logits.grad[:, [2, 3, 5]] != 0).all()


@pytest.mark.parametrize("own", [True, False])
def test_class_inference_trains_the_loss_on_the_experiences_own_classes(digits_cil, own):
    from avalanche.core import SupervisedPlugin

    seen: list[torch.Tensor] = []
    evaluated: list[torch.Tensor] = []

    class Record(SupervisedPlugin):
        def after_forward(self, strategy, **kwargs):  # after RNF's plugin: the outputs the loss reads
            seen.append(strategy.mb_output.detach().clone())

        def after_eval_forward(self, strategy, **kwargs):
            evaluated.append(strategy.mb_output.detach().clone())

    strategy = _strategy(ClassMLP(), task_inference=TaskInference(own_classes=own))
    strategy.plugins.append(Record())
    strategy.train_epochs = 1
    for experience in digits_cil.train_stream[:2]:
        seen.clear()
        strategy.train(experience)
        outputs, rows = torch.cat(seen), list(experience.classes_in_this_experience)
        others = [c for c in range(outputs.shape[1]) if c not in rows]
        assert torch.isfinite(outputs[:, rows]).all()
        assert torch.isinf(outputs[:, others]).all() if own else torch.isfinite(outputs).all()
    strategy.eval(digits_cil.test_stream[:2])
    assert torch.isfinite(torch.cat(evaluated)).all()  # evaluation reads every class's output
