"""Harness parts: scores, own-head accuracy, state sizes, the SI and LwF fixes, the capacity study."""

from __future__ import annotations

import json

import pytest
import torch

from avalanche_rnf.bench.evaluation import own_head_logits
from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.models import make_model
from avalanche_rnf.bench.plots import seen_average
from avalanche_rnf.bench.results import (
    RunRecord,
    average_accuracy,
    backward_transfer,
    forgetting,
    learning_accuracy,
    summary_table,
)
from avalanche_rnf.bench.runner import RunSpec, run
from avalanche_rnf.bench.streams import build_stream


def test_scores_of_a_known_matrix():
    m = [[0.9, 0.1, 0.2],
         [0.7, 0.8, 0.1],
         [0.5, 0.9, 0.6]]
    assert average_accuracy(m) == pytest.approx((0.5 + 0.9 + 0.6) / 3)
    # best earlier accuracy minus final: exp 0: 0.9 - 0.5, exp 1: 0.8 - 0.9
    assert forgetting(m) == pytest.approx((0.4 - 0.1) / 2)
    assert backward_transfer(m) == pytest.approx(((0.5 - 0.9) + (0.9 - 0.8)) / 2)
    assert forgetting([[1.0, 0.5]]) is None and backward_transfer([[1.0, 0.5]]) is None
    assert learning_accuracy(m) == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert learning_accuracy([[1.0, 0.5]]) is None


def test_summary_table_shows_learning_accuracy_apart_from_what_was_kept():
    """A strategy that learns less but keeps it all, against one that learns more and forgets."""
    def record(strategy, matrix):
        return RunRecord("b", "task", strategy, 0, {}, matrix=matrix)

    table = summary_table([record("keeps", [[0.8, 0.5], [0.8, 0.7]]), record("forgets", [[0.9, 0.5], [0.6, 0.9]]),
                           record("joint", [[0.85, 0.85]])])
    header, _, *rows = table.splitlines()
    columns = [c.strip() for c in header.split("|")[1:-1]]
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[1:-1]] for row in rows}
    at = columns.index("learning accuracy")
    assert cells["keeps"][at] == "0.750" and cells["forgets"][at] == "0.900" and cells["joint"][at] == "–"
    assert cells["keeps"][columns.index("average accuracy")] == "0.750"
    assert all(len(c) == len(columns) for c in cells.values())


def test_best_point_is_chosen_among_the_points_run_on_the_most_seeds():
    from avalanche_rnf.bench.results import RunRecord, best_points

    def record(value: float, seed: int, accuracy: float) -> RunRecord:
        return RunRecord("b", "task", "rnf", seed, {"params": {"max_drop": value}}, matrix=[[accuracy]])

    runs = [record(0.1, 0, 0.99), record(0.2, 0, 0.98), record(0.2, 1, 0.94), record(0.3, 0, 0.97),
            record(0.3, 1, 0.97)]
    best = best_points(runs, {"rnf": ["max_drop"]})["rnf"]
    assert best.params == {"max_drop": 0.3} and best.seeds == 2 and best.score == pytest.approx(0.97)


def test_an_exact_tie_keeps_the_value_running_now_and_the_table_marks_every_tied_point():
    from avalanche_rnf.bench.results import RunRecord, best_points
    from avalanche_rnf.bench.summary import search_table

    runs = [RunRecord("b", "task", "rnf", 100, {"params": {"max_drop": v}}, matrix=[[a]])
            for v, a in ((0.001, 0.93), (0.002, 0.93), (0.005, 0.93), (0.01, 0.91))]
    assert best_points(runs, {"rnf": ["max_drop"]})["rnf"].params == {"max_drop": 0.001}  # first one run
    kept = best_points(runs, {"rnf": ["max_drop"]}, current={"rnf": {"max_drop": 0.002}})["rnf"]
    assert kept.params == {"max_drop": 0.002} and kept.score == pytest.approx(0.93)
    # the running value loses when it is not tied with the best
    assert best_points(runs, {"rnf": ["max_drop"]}, current={"rnf": {"max_drop": 0.01}})["rnf"].params == {
        "max_drop": 0.001}
    marked = [row for row in search_table(runs).splitlines() if "**best**" in row]
    assert [row.split(" | ")[2] for row in marked] == ["0.001", "0.002", "0.005"]


def test_a_one_point_sweep_s_table_names_the_parameters_the_sweep_set():
    from avalanche_rnf.bench.results import RunRecord
    from avalanche_rnf.bench.summary import search_table

    params = {"max_drop": None, "reference_size": 300}
    runs = [RunRecord("b", "task", "rnf", seed, {"params": params}, matrix=[[0.9]]) for seed in (100, 101)]
    row = search_table(runs, {"rnf": ["reference_size"]}).splitlines()[-1]
    assert row.startswith("| rnf | reference_size | 300 | 2 | 0.9000 ± 0.0000 |")
    assert search_table(runs).splitlines()[-1].startswith("| rnf | max_drop | None |")  # no sweep: the key one


def test_own_head_logits_ignore_the_zero_padding_of_narrow_heads():
    # Task 0's head has 2 outputs, task 1's head 3: Avalanche pads task 0's logits with a zero.
    out = torch.tensor([[-1.0, -2.0, 0.0], [-3.0, -1.0, 0.0], [0.1, 0.5, 0.2]])
    tasks = torch.tensor([0, 0, 1])
    assert out.argmax(1).tolist() == [2, 2, 1]  # padding wins for the first two samples
    assert own_head_logits(out, tasks, {0: 2, 1: 3}).argmax(1).tolist() == [0, 1, 1]
    assert own_head_logits(out, tasks, {}) is out


@pytest.fixture(scope="module")
def digits_task():
    return build_stream("split_digits", "task", seed=0)


def _run(strategy, stream, **params):
    spec = RunSpec(strategy, {**strategy_params(strategy, "split_digits", "task"), **params},
                   TRAINING["split_digits"], seed=0)
    return run(spec, stream, raise_errors=True)


def test_si_fix_makes_synaptic_intelligence_act_on_cpu(digits_task):
    naive = _run("naive", digits_task)
    upstream = _run("si_upstream", digits_task, si_lambda=100.0)
    fixed = _run("si", digits_task, si_lambda=100.0)
    assert upstream.matrix == naive.matrix  # Avalanche 0.6 on CPU: the penalty is exactly zero
    assert fixed.matrix != naive.matrix
    assert fixed.forgetting < naive.forgetting


def test_state_kept_between_experiences(digits_task):
    sizes = {s: _run(s, digits_task).state_bytes for s in ("naive", "ewc", "replay", "rnf")}
    assert sizes["naive"] == [0] * 5
    assert all(b > 0 for b in sizes["ewc"]) and sizes["ewc"][-1] > sizes["ewc"][0]  # one importance set per task
    per_sample = 64 * 4 + 8  # 64 float32 pixels and an int64 label
    assert sizes["replay"][-1] == min(500, 1347) * per_sample
    assert 0 < sizes["rnf"][-1] < sizes["ewc"][-1]


def test_a_strategy_s_own_learning_rate_replaces_the_benchmark_s_and_lr_overrides_it(monkeypatch):
    from avalanche_rnf.bench import planning
    from avalanche_rnf.bench.arguments import build_parser

    base = planning.strategy_params
    monkeypatch.setattr(planning, "strategy_params", lambda s, b, sc: {
        **{k: v for k, v in base(s, b, sc).items() if k != "lr"}, **({"lr": 0.01} if s == "ewc" else {})})
    parse = build_parser().parse_args
    made = planning.make_plan(parse(["--strategies", "naive,ewc"]))
    lrs = {spec.strategy: spec.training.lr for spec in made["specs"]}
    assert lrs == {"naive": TRAINING["split_digits"].lr, "ewc": 0.01}
    assert [spec.params.get("lr") for spec in made["specs"] if spec.strategy == "ewc"] == [0.01]  # results show it
    forced = planning.make_plan(parse(["--strategies", "naive,ewc", "--lr", "0.2"]))
    assert {spec.training.lr for spec in forced["specs"]} == {0.2}
    asked = planning.make_plan(parse(["--strategies", "naive,ewc", "--lr", "0.2", "--param", "naive.lr=0.3"]))
    assert {spec.strategy: spec.training.lr for spec in asked["specs"]} == {"naive": 0.3, "ewc": 0.2}
    with pytest.raises(ValueError, match="naive's lr must be a positive"):
        planning.make_plan(parse(["--strategies", "naive", "--param", "naive.lr=0"]))


def test_a_sweep_s_running_points_are_the_values_its_strategies_run_with_now(tmp_path):
    from avalanche_rnf.bench import planning
    from avalanche_rnf.bench.arguments import build_parser
    from avalanche_rnf.bench.cli import _running_points

    space = tmp_path / "sweep.json"
    space.write_text(json.dumps({"strategies": {"naive": {"lr": [0.1, 0.2]}, "rnf": {"max_drop": [0.001, 0.02]}}}))
    args = ["--strategies", "naive,rnf", "--sweep", str(space), "--seeds", "100", "--param", "rnf.max_drop=0.02"]
    tuned_lr = planning.strategy_params("naive", "split_digits", "task")["lr"]
    plan = planning.make_plan(build_parser().parse_args(args))
    assert _running_points(plan) == {"naive": {"lr": tuned_lr}, "rnf": {"max_drop": 0.02}}
    plan = planning.make_plan(build_parser().parse_args([*args, "--lr", "0.3"]))
    assert _running_points(plan) == {"naive": {"lr": 0.3}, "rnf": {"max_drop": 0.02}}


def test_joint_training_is_plotted_at_its_average_over_all_experiences():
    assert seen_average([[1.0, 0.5, 0.0]]) == [0.5]
    assert seen_average([[1.0, 0.0], [0.8, 0.6]]) == [1.0, 0.7]


def test_lwf_state_is_its_teacher_copy_of_the_model(digits_task):
    record = _run("lwf", digits_task)
    model = make_model("digits", (64,), 2, True, hidden_size=128, hidden_layers=2)
    backbone = sum(p.nbytes for n, p in model.named_parameters() if "classifier" not in n)
    head = 2 * 128 * 4 + 2 * 4
    assert backbone + head <= record.state_bytes[0] <= backbone + 5 * head


def test_capacity_scores_a_fresh_network_of_each_width_on_the_last_experience(tmp_path):
    import json

    from avalanche_rnf.bench import capacity

    assert capacity.main(["--benchmark", "split_digits", "--widths", "2", "64", "--seeds", "0", "1",
                          "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "result.json").read_text())
    accuracy = saved["accuracy"]
    assert set(accuracy) == {"2", "64"} and all(set(v) == {"0", "1"} for v in accuracy.values())
    assert all(0 <= a <= 1 for v in accuracy.values() for a in v.values())
    assert accuracy["64"]["0"] > 0.9  # trained: a digit pair is easy
    assert saved["training"]["hidden_layers"] == 2
    assert "| 64 | 2 |" in (tmp_path / "result.md").read_text()


def test_capacity_trains_at_the_learning_rate_asked_for(tmp_path):
    import json

    from avalanche_rnf.bench import capacity

    args = ["--benchmark", "split_digits", "--widths", "4", "--seeds", "0"]
    assert capacity.main([*args, "--lr", "0.2", "--out", str(tmp_path / "fast")]) == 0
    assert capacity.main([*args, "--out", str(tmp_path / "harness")]) == 0
    fast, harness = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("fast", "harness"))
    assert fast["training"]["lr"] == 0.2 and harness["training"]["lr"] == TRAINING["split_digits"].lr
    assert fast["accuracy"] != harness["accuracy"]
    assert "lr 0.2," in (tmp_path / "fast" / "result.md").read_text()
    with pytest.raises(SystemExit):
        capacity.main([*args, "--lr", "0", "--out", str(tmp_path / "bad")])


@pytest.mark.parametrize("reset", [False, True])
def test_reset_optimizer_clears_adams_state_before_each_experience(digits_task, reset):
    from dataclasses import replace

    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_rnf.bench.strategies import build_strategy

    training = replace(TRAINING["split_digits"], epochs=1, optimizer="adam", lr=0.001, reset_optimizer=reset)
    model = make_model("digits", digits_task.input_shape, digits_task.n_outputs, True, hidden_size=16)
    strategy = build_strategy("naive", model, training, {}, evaluator=EvaluationPlugin(loggers=[]))
    steps = []
    for experience in digits_task.benchmark.train_stream[:2]:
        strategy.train(experience)
        steps.append(-(-len(experience.dataset) // training.batch_size))
    first_layer = next(model.parameters())
    adam_steps = int(strategy.optimizer.state[first_layer]["step"])
    assert adam_steps == (steps[1] if reset else sum(steps))


def test_tanh_mlp_has_no_relu_left():
    model = make_model("mnist", (1, 28, 28), 10, False, hidden_size=8, hidden_layers=2, activation="tanh")
    kinds = [type(m) for m in model.modules()]
    assert torch.nn.ReLU not in kinds and kinds.count(torch.nn.Tanh) == 2
    with pytest.raises(ValueError, match="sigmoid"):
        make_model("mnist", (1, 28, 28), 10, False, activation="sigmoid")


def test_lwf_shrink_ce_divides_the_cross_entropy_by_the_experience_count(digits_task):
    from dataclasses import replace

    from avalanche.core import SupervisedPlugin
    from avalanche.training.plugins import EvaluationPlugin, LwFPlugin

    from avalanche_rnf.bench.strategies import ShrinkingCrossEntropyPlugin, build_strategy

    class Spy(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.ratios: list[tuple[int, float]] = []

        def after_backward(self, strategy, **kwargs):
            ce = strategy.criterion()
            self.ratios.append((strategy.clock.train_exp_counter, float(ce.detach() / strategy.loss.detach())))

    training = replace(TRAINING["split_digits"], epochs=1)
    model = make_model("digits", digits_task.input_shape, digits_task.n_outputs, True, hidden_size=16)
    params = {"alpha": [0.0, 0.0, 0.0], "temperature": 2.0, "shrink_ce": True}
    strategy = build_strategy("lwf", model, training, params, evaluator=EvaluationPlugin(loggers=[]),
                              plugins=[spy := Spy()])
    kinds = [type(p) for p in strategy.plugins]
    assert kinds.index(ShrinkingCrossEntropyPlugin) < kinds.index(LwFPlugin)
    for experience in digits_task.benchmark.train_stream[:3]:
        strategy.train(experience)
    for exp, ratio in spy.ratios:
        assert ratio == pytest.approx(exp + 1, rel=1e-5)
    assert {exp for exp, _ in spy.ratios} == {0, 1, 2}
