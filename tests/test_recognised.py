"""Peers with RNF's task recogniser: task-incremental strategies evaluated with recognised task labels."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark
from avalanche.core import SupervisedPlugin
from avalanche.models import SimpleMLP, as_multitask
from avalanche.training import JointTraining, Naive

from avalanche_rnf.bench import cli
from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.recognised import RecognisedTasks, per_task
from avalanche_rnf.bench.results import load_records
from avalanche_rnf.bench.runner import RunSpec, run
from avalanche_rnf.bench.streams import build_stream
from helpers import quiet_evaluator


def _two_tasks():
    """Two tasks of two classes whose inputs lie far apart (task 0 around +2, task 1 around -2)."""
    generator = torch.Generator().manual_seed(0)
    parts = []
    for shift in (2.0, -2.0):
        x = torch.randn(80, 6, generator=generator) * 0.5 + shift
        y = (x[:, 0] > shift).long()
        parts.append((x, y))
    return tensors_benchmark(parts, parts, task_labels=[0, 1])


class _Labels(SupervisedPlugin):
    """Overwrites the task labels before the forward pass (``value``), or records them (``value`` None)."""

    def __init__(self, value: int | None = None):
        super().__init__()
        self.value, self.seen = value, []

    def before_eval_forward(self, strategy, **kwargs):
        if self.value is None:
            self.seen.append(strategy.mb_task_id.clone())
        else:
            strategy.mbatch[-1] = torch.full_like(strategy.mbatch[-1], self.value)


def _model():
    torch.manual_seed(0)
    return as_multitask(SimpleMLP(num_classes=2, input_size=6, hidden_size=16, drop_rate=0), "classifier")


def test_evaluation_runs_the_heads_of_the_recognised_tasks_not_the_given_labels():
    bench = _two_tasks()
    recognised, seen = RecognisedTasks(samples=40), _Labels()
    model = _model()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=16,
                     train_epochs=1, evaluator=quiet_evaluator(), plugins=[_Labels(0), recognised, seen])
    for experience in bench.train_stream:
        strategy.train(experience)
    assert recognised.task_labels == [0, 1] and len(recognised.recognizer) == 2
    seen.seen.clear()
    strategy.eval(bench.test_stream)
    # every label was set to 0 before the recogniser ran; it gave each input its own task back
    assert torch.equal(torch.cat(seen.seen), torch.tensor([0] * 80 + [1] * 80))
    metrics = strategy.evaluator.get_last_metrics()
    shares = {k.rsplit("/", 1)[-1]: v for k, v in metrics.items() if k.startswith("Recognised/TaskRecognition/")}
    assert shares == {"Exp000": 1.0, "Exp001": 0.0}  # measured against the labels given, here all 0
    assert recognised.nbytes() > 0


def test_joint_training_learns_each_task_it_saw_at_once():
    bench = _two_tasks()
    recognised, seen = RecognisedTasks(samples=40), _Labels()
    model = _model()
    strategy = JointTraining(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                             criterion=torch.nn.CrossEntropyLoss(), train_mb_size=16, train_epochs=1,
                             evaluator=quiet_evaluator(), plugins=[recognised, seen])
    strategy.train(bench.train_stream)
    assert sorted(recognised.task_labels) == [0, 1]
    strategy.eval(bench.test_stream)
    assert torch.equal(torch.cat(seen.seen), torch.tensor([0] * 80 + [1] * 80))


def test_harness_runs_record_recognition_and_count_the_statistics_as_state():
    stream = build_stream("split_digits", "task", seed=0)
    training = dataclasses.replace(TRAINING["split_digits"], epochs=1)
    params = strategy_params("naive", "split_digits", "task")
    plain = run(RunSpec("naive", params, training, 0), stream, raise_errors=True)
    inferred = run(RunSpec("naive", params, training, 0, infer_tasks=True), stream, raise_errors=True)
    assert inferred.config["infer_tasks"] is True and "infer_tasks" not in plain.config
    assert len(inferred.task_recognition) == stream.n_experiences
    last = inferred.task_recognition[-1]
    assert all(0.5 < v <= 1 for v in last)  # digits' pixels tell their task apart well
    assert inferred.recognition_bytes[-1] > 0
    assert inferred.state_bytes[-1] == plain.state_bytes[-1] + inferred.recognition_bytes[-1]



def test_packnet_runs_once_per_recognised_task_of_a_batch():
    """PackNet's network computes one task per forward pass; recognised labels differ within a batch."""
    stream = build_stream("split_digits", "task", seed=0)
    training = dataclasses.replace(TRAINING["split_digits"], epochs=2)  # train, prune, fine-tune
    packed = run(RunSpec("packnet", strategy_params("packnet", "split_digits", "task"), training, 0,
                         infer_tasks=True), stream, raise_errors=True)
    assert packed.status == "ok" and len(packed.task_recognition) == stream.n_experiences
    assert any(v < 1 for v in packed.task_recognition[-1])  # so some batches held several tasks
    assert packed.average_accuracy > 0.5


def test_per_task_forward_puts_each_task_output_back_in_place():
    def forward(x, task_labels):
        assert task_labels.eq(task_labels[0]).all(), "one task per call"
        width = 2 + int(task_labels[0])
        return x[:, :1].repeat(1, width) * (1 + task_labels[:, None])

    x, tasks = torch.arange(5.0)[:, None], torch.tensor([1, 0, 1, 2, 0])
    out = per_task(forward)(x, tasks)
    assert out.shape == (5, 4)
    assert torch.equal(out[:, 0], x[:, 0] * (1 + tasks))
    assert torch.equal(out[1, 2:], torch.zeros(2)) and torch.equal(out[3, 2:], torch.full((2,), 9.0))


def test_cli_names_the_directory_and_rejects_streams_without_task_labels(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["--epochs", "1", "--strategies", "naive", "--infer-tasks", "--out", str(out)]) == 0
    meta, (record,) = load_records(out)
    assert meta["plan"]["infer_tasks"] is True and record.task_recognition
    assert "task labels inferred at evaluation" in (out / "summary.md").read_text()
    assert cli.main(["--scenario", "class", "--infer-tasks", "--out", str(tmp_path / "bad")]) == 2
    assert "use --scenario task" in capsys.readouterr().err


@pytest.mark.parametrize("samples", [0, -1])
def test_bad_sample_counts_are_refused(samples):
    with pytest.raises(ValueError, match="samples"):
        RecognisedTasks(samples=samples)
