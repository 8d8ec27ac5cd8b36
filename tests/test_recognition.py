"""The task recognizer on its own: class statistics, shrinkage, power transform, posteriors and feature taps."""

from __future__ import annotations

import io

import pytest
import torch
from torch import Tensor, nn

from avalanche_rnf.layers import find_unit_layers
from avalanche_rnf.recognition import (
    TaskRecognizer,
    TaskStats,
    pack_symmetric,
    power_transform,
    task_weighted_log_probs,
    unpack_symmetric,
)
from avalanche_rnf.taps import FeatureTap, Tap, recognition_taps, unit_statistics


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
    assert stored.means.shape == (2, 2) and stored.precision_matrix().shape == (2, 2)  # no samples kept
    assert stored.precision.shape == (3,)  # the symmetric precision's upper triangle
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
    assert torch.allclose(stored.precision_matrix(), torch.linalg.inv(shrunk).float(), rtol=1e-5)


def test_a_precision_kept_as_its_upper_triangle_scores_as_the_full_matrix_in_half_the_bytes():
    matrix = torch.randn(7, 7, generator=torch.Generator().manual_seed(0))
    matrix = matrix @ matrix.T
    assert torch.equal(unpack_symmetric(pack_symmetric(matrix)), (matrix + matrix.T) / 2)
    with pytest.raises(ValueError, match="upper triangle"):
        unpack_symmetric(torch.zeros(5))
    train, labels, tasks = _clusters(0)
    test = _clusters(1)[0]
    rec = TaskRecognizer()
    rec.add_task(torch.arange(6), train[tasks == 0], labels[tasks == 0])
    packed = rec.tasks[0]
    full = packed.precision_matrix()
    assert packed.precision.shape == (21,) and torch.equal(full, full.T) and full.shape == (6, 6)
    diff = test[:, None, :] - packed.means[None]
    assert torch.allclose(packed.distance(test), torch.einsum("ncd,de,nce->nc", diff, full, diff).min(-1).values)
    assert packed.nbytes() == sum(t.numel() * 4 for t in (packed.means, packed.precision)) + 8 * (6 + 2)
    older = TaskStats(**{**vars(packed), "precision": full})  # a checkpoint that kept the whole matrix
    assert torch.equal(older.precision, packed.precision)


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


def test_the_input_tap_reads_images_where_the_model_flattens_them():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2352, 16), nn.ReLU(), nn.Linear(16, 4))
    taps = recognition_taps(model, find_unit_layers(model), "all+input")
    assert [(t.layer, t.source) for t in taps] == [("3", "1"), ("", None)]  # the model itself, not its first Linear
    x = torch.rand(5, 3, 28, 28)
    with FeatureTap(model, taps) as tap:
        model(x)
        features = tap.pop()
    assert features.shape == (5, 16 + 588)  # 3 x 14 x 14 pooled (input_values), not the Linear's 2352 values
    assert torch.allclose(features[:, 16:], nn.functional.avg_pool2d(x, 2).flatten(1))
    assert tap.shared().tolist() == list(range(16, 604))
    assert tap.columns({"1": torch.tensor([True] + [False] * 15)}).tolist() == [0] + list(range(16, 604))
    no_tensor = "passed first to the model, but it got no argument; .*layers='all'"
    with FeatureTap(model, taps), pytest.raises(TypeError, match=no_tensor):
        model(x=x)  # a keyword argument: the hook sees no input
