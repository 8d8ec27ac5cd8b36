"""The pooled-covariance recogniser: streaming LDA over features every task shares."""

from __future__ import annotations

import io

import pytest
import torch

from avalanche_rnf import pooled
from avalanche_rnf.pooled import WEIGHT, JointRecognizer, PooledRecognizer, input_values
from avalanche_rnf.recognition import TaskRecognizer, unpack_symmetric


def _tasks(seed: int, n: int = 300):
    """Three tasks of two classes in 5 shared features, one correlated covariance for every class."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(5, 5, generator=torch.Generator().manual_seed(7)) * 0.5 + torch.eye(5)
    centres = torch.randn(6, 5, generator=torch.Generator().manual_seed(8)) * 1.5
    out = []
    for t in range(3):
        y = torch.arange(2 * t, 2 * t + 2).repeat_interleave(n)
        x = centres[y] + torch.randn(len(y), 5, generator=g) @ mixing
        out.append((x, y))
    return out


def test_scores_are_the_log_summed_gaussian_likelihoods_of_each_task_s_classes_under_the_pooled_covariance():
    tasks = _tasks(0)
    shrinkage = 0.2
    rec = PooledRecognizer(shrinkage)
    for x, y in tasks:
        rec.add_task(torch.arange(5), x, y)
    # the same fit, from every sample at once
    x, y = (torch.cat(parts).double() for parts in zip(*tasks))
    means = torch.stack([x[y == c].mean(0) for c in range(6)])
    residuals = x - means[y.long()]
    covariance = residuals.T @ residuals / (len(x) - 6)
    shrunk = (1 - shrinkage) * covariance + shrinkage * covariance.trace() / 5 * torch.eye(5, dtype=x.dtype)
    test = torch.cat([x for x, _ in _tasks(1)])
    gaussians = torch.distributions.MultivariateNormal(means, covariance_matrix=shrunk)
    log_likelihood = gaussians.log_prob(test.double()[:, None])  # [N, classes]
    expected = torch.stack([log_likelihood[:, 2 * t:2 * t + 2].logsumexp(1) for t in range(3)], 1)
    scores = rec.scores(test).double()
    # equal up to one constant per input (the quadratic term every class shares)
    difference = scores - expected
    assert torch.allclose(difference, difference[:, :1].expand_as(difference), atol=1e-3)
    truth = torch.arange(3).repeat_interleave(600)
    assert (rec.predict(test) == truth).float().mean() > 0.9
    assert rec.task_of_class(7).tolist() == [0, 0, 1, 1, 2, 2, -1]


def test_statistics_only_a_checkpoint_round_trip_and_shared_columns_enforced():
    tasks = _tasks(0)
    rec = PooledRecognizer()
    for x, y in tasks[:2]:
        rec.add_task(torch.tensor([0, 2, 4]), x, y)
    assert rec.scatter is not None and rec.scatter.shape == (6,) and rec.tasks[1].means.shape == (2, 3)
    assert rec.nbytes() < 6 * 4 + 200  # the scatter's upper triangle and the class means, no samples
    buffer = io.BytesIO()
    torch.save(rec.state_dict(), buffer)
    buffer.seek(0)
    clone = PooledRecognizer()
    clone.load_state_dict(torch.load(buffer))
    test = _tasks(1)[0][0]
    assert torch.equal(clone.scores(test), rec.scores(test))
    full = {**rec.state_dict(), "scatter": unpack_symmetric(rec.scatter)}  # as checkpoints kept it before
    older = PooledRecognizer()
    older.load_state_dict(full)
    assert torch.equal(older.scatter, rec.scatter) and torch.equal(older.scores(test), rec.scores(test))
    clone.add_task(torch.tensor([0, 2, 4]), *tasks[2])  # learning goes on from the loaded statistics
    assert clone.scores(test).shape == (len(test), 3) and rec.scores(test).shape == (len(test), 2)
    with pytest.raises(ValueError, match="shares"):
        rec.add_task(torch.tensor([0, 1, 2]), *tasks[2])
    with pytest.raises(ValueError, match="feature column"):
        PooledRecognizer().add_task(torch.tensor([], dtype=torch.long), *tasks[0])


def test_joint_scores_add_weighted_per_task_scores_to_the_pooled_log_posterior():
    tasks = _tasks(0)
    features = [torch.cat([x, x[:, :2] * 2], 1) for x, _ in tasks]  # columns 5, 6: "own" features
    joint = JointRecognizer()
    with pytest.raises(ValueError, match="shares"):
        joint.add_task(torch.arange(7), features[0], tasks[0][1])
    for f, (_, y) in zip(features, tasks):
        joint.add_task(torch.arange(7), f, y, shared=torch.arange(5))
    own, pooled = TaskRecognizer(), PooledRecognizer()
    for f, (_, y) in zip(features, tasks):
        own.add_task(torch.tensor([5, 6]), f, y)
        pooled.add_task(torch.arange(5), f, y)
    assert all(torch.equal(t.columns, torch.tensor([5, 6])) for t in joint.tasks)
    test = torch.cat(features)
    expected = WEIGHT * own.scores(test) + pooled.scores(test).log_softmax(1)
    assert torch.allclose(joint.scores(test), expected)
    clone = JointRecognizer()
    clone.load_state_dict(joint.state_dict())
    assert torch.equal(clone.scores(test), joint.scores(test))
    assert joint.nbytes() == own.nbytes() + pooled.nbytes()


def test_input_values_pool_images_to_the_limit_and_leave_flat_inputs_as_they_are(monkeypatch):
    images = torch.rand(2, 3, 32, 32)
    values = input_values(images)
    assert values.shape == (2, 768)  # 3 x 16 x 16: 3072 values halved once in each direction
    assert torch.allclose(values[0, 0], images[0, 0, :2, :2].mean())
    assert input_values(images, limit=192).shape == (2, 192)
    assert input_values(torch.rand(2, 1, 28, 28)).shape == (2, 784)  # MNIST: under the limit
    monkeypatch.setattr(pooled, "INPUT_VALUES", 768)
    assert input_values(torch.rand(2, 1, 28, 28)).shape == (2, 196)  # the limit read when called
    flat = torch.rand(2, 784)
    assert torch.equal(input_values(flat), flat)
