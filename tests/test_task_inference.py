"""Task-agnostic RNF: the task recognizer, and RNF with task_inference on class-incremental digits."""

from __future__ import annotations

import io

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_rnf import RNF
from avalanche_rnf.recognition import TaskRecognizer
from helpers import MultiHeadMLP, experience_logits


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


# ---------------------------------------------------------------- RNF with task inference
class MLP(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.classifier(self.features(x))


def _strategy(model, **kwargs):
    torch.manual_seed(0)
    from avalanche.evaluation.metrics import accuracy_metrics

    return RNF(
        model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4),
        max_drop=0.01, reference_size=200, train_mb_size=32, train_epochs=8, eval_mb_size=256,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]), **kwargs,
    )


def test_task_inference_recognises_tasks_and_keeps_old_class_logits_exactly(digits_cil):
    torch.manual_seed(0)
    model = MLP()
    strategy = _strategy(model, task_inference=True)
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
    assert accuracy > 0.6  # without task inference it stays below 0.4 (the next test)
    output = model.classifier
    assert strategy.rnf._hook is None and not output._forward_pre_hooks  # the feature hook is gone after eval
    assert strategy.rnf.state_nbytes() == strategy.rnf.freeze.nbytes() + strategy.rnf.recognizer.nbytes()
    assert len(strategy.rnf.recognizer) == 5

    fresh = MLP()
    fresh.load_state_dict(model.state_dict())
    restored = _strategy(fresh, task_inference=True)
    restored.rnf.load_state_dict(strategy.rnf.state_dict())
    again = restored.eval(test)  # evaluating right after loading, before any training
    assert again["Top1_Acc_Stream/eval_phase/test_stream/Task000"] == accuracy


def test_without_task_inference_class_incremental_rnf_forgets_like_naive(digits_cil):
    model = MLP()
    strategy = _strategy(model)
    for experience in digits_cil.train_stream:
        strategy.train(experience)
    metrics = strategy.eval(digits_cil.test_stream)
    assert metrics["Top1_Acc_Stream/eval_phase/test_stream/Task000"] < 0.4
    assert not any(k.startswith("RNF/TaskRecognition") for k in metrics)


def test_task_inference_needs_isolation_and_a_single_head(digits_til):
    with pytest.raises(ValueError, match="isolation"):
        _strategy(MLP(), task_inference=True, isolate=False)
    strategy = _strategy(MultiHeadMLP(), task_inference=True)
    with pytest.raises(ValueError, match="single-head"):
        strategy.train(digits_til.train_stream[0])
    assert strategy.clock.train_exp_iterations == 0  # refused before training, not after an experience


def test_periodic_evaluation_inside_an_experience_leaves_outputs_as_they_are(digits_cil):
    model = MLP()
    strategy = _strategy(model, task_inference=True)
    strategy.train(digits_cil.train_stream[0])
    strategy.rnf._in_experience = True  # as in an evaluation during the next experience
    metrics = strategy.eval(digits_cil.test_stream[:2])
    assert not any(k.startswith("RNF/TaskRecognition") for k in metrics)
    assert strategy.rnf._hook is None


def test_harness_runs_rnf_with_task_inference_in_class_incremental_mode():
    from benchmarks.hparams import TRAINING, strategy_params, with_overrides
    from benchmarks.runner import RunSpec, run
    from benchmarks.streams import build_stream

    assert strategy_params("rnf", "split_mnist", "class")["task_inference"] is True
    assert "task_inference" not in strategy_params("rnf", "split_mnist", "task")
    stream = build_stream("split_digits", "class", seed=0)
    spec = RunSpec("rnf", strategy_params("rnf", "split_digits", "class"),
                   with_overrides(TRAINING["split_digits"], epochs=4), 0)
    record = run(spec, stream, raise_errors=True)
    assert len(record.task_recognition) == 5
    assert record.task_recognition[0][0] == 1.0 and record.task_recognition[0][1:] == [None] * 4
    assert all(v is not None for v in record.task_recognition[-1])
    assert record.recognition_bytes[-1] > record.recognition_bytes[0] > 0
