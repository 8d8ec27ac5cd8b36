"""Streaming LDA peers: on the raw inputs and on the features of a backbone trained on the first experience."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.runner import RunSpec, run
from avalanche_rnf.bench.streams import build_stream


def test_streaming_lda_on_raw_inputs_runs_class_incremental_and_not_with_task_heads():
    stream = build_stream("split_digits", "class", seed=0)
    record = run(RunSpec("slda", strategy_params("slda", "split_digits", "class"), TRAINING["split_digits"], 0),
                 stream, raise_errors=True)
    assert record.status == "ok" and len(record.matrix) == 5
    assert record.average_accuracy > 0.8  # class means and a shared covariance of 8x8 digits, no task labels
    # its state: class means, counts, the covariance and its inverse over the 64 pixels, as float32
    assert record.state_bytes[-1] == 4 * (10 * 64 + 10 + 2 * 64 * 64)
    skipped = run(RunSpec("slda", strategy_params("slda", "split_digits", "task"), TRAINING["split_digits"], 0),
                  build_stream("split_digits", "task", seed=0))
    assert skipped.status == "skipped" and "task heads" in skipped.reason


def test_streaming_lda_on_backbone_features_trains_the_backbone_on_the_first_experience_only():
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_rnf.bench.models import model_for
    from avalanche_rnf.bench.strategies import build_strategy

    stream = build_stream("split_digits", "class", seed=0)
    training = TRAINING["split_digits"]
    torch.manual_seed(0)
    network = model_for(stream, training)
    initial = [p.detach().clone() for p in network.features.parameters()]
    strategy = build_strategy("slda_backbone", network, training, strategy_params("slda_backbone", "split_digits",
                              "class"), evaluator=EvaluationPlugin(loggers=[]), input_shape=tuple(stream.input_shape))
    train = stream.benchmark.train_stream
    strategy.train(train[0])
    first = [p.detach().clone() for p in network.features.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(initial, first))  # trained on the first experience
    strategy.train(train[1])
    assert all(torch.equal(a, b) for a, b in zip(first, network.features.parameters()))  # then frozen
    assert strategy.cK.sum() == len(train[0].dataset) + len(train[1].dataset)  # the LDA read both experiences

    record = run(RunSpec("slda_backbone", strategy_params("slda_backbone", "split_digits", "class"), training, 0),
                 stream, raise_errors=True)
    assert record.status == "ok" and len(record.matrix) == 5
    assert record.average_accuracy > 0.5  # class means of features trained on two of the ten digits
    width = network.classifier.in_features
    assert record.state_bytes[-1] == 4 * (10 * width + 10 + 2 * width * width)
    online = run(RunSpec("slda_backbone", strategy_params("slda_backbone", "split_digits", "class"),
                         dataclasses.replace(training, online=16), 0), stream)
    assert online.status == "skipped" and "first experience" in online.reason
    # a network that flattens its input itself (Avalanche's SimpleMLP) on image-shaped inputs
    from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark
    from avalanche.models import SimpleMLP

    x, y = torch.randn(40, 1, 4, 4), torch.arange(4).repeat_interleave(10)
    parts = [(x[y < 2], y[y < 2]), (x[y >= 2], y[y >= 2])]
    mlp = SimpleMLP(num_classes=4, input_size=16, hidden_size=8)
    images = build_strategy("slda_backbone", mlp, training, {"shrinkage": 1e-4}, evaluator=EvaluationPlugin(loggers=[]),
                            input_shape=(1, 4, 4))
    for experience in tensors_benchmark(parts, parts, task_labels=[0, 0]).train_stream:
        images.train(experience)
    assert images.cK.tolist() == [10, 10, 10, 10]
    with pytest.raises(ValueError, match="output layer is a Linear"):
        build_strategy("slda_backbone", torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()), training,
                       {"shrinkage": 1e-4}, evaluator=EvaluationPlugin(loggers=[]), input_shape=(1, 4, 4))


def test_streaming_lda_reads_what_a_residual_networks_output_layer_reads():
    """On Avalanche's SlimResNet18 the features are the pooled channels its ``linear`` layer reads."""
    from avalanche.models import SlimResNet18
    from avalanche.training.plugins import EvaluationPlugin

    from avalanche_rnf.bench.slda import OutputLayerInput
    from avalanche_rnf.bench.strategies import build_strategy

    torch.manual_seed(0)
    network = SlimResNet18(nclasses=4).eval()
    x = torch.randn(6, 3, 32, 32)
    read = []
    network.linear.register_forward_hook(lambda module, args, out: read.append(args[0]))
    features = OutputLayerInput(network)(x)
    assert features.shape == (6, network.linear.in_features) and torch.equal(features, read[-1])

    from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark

    x, y = torch.randn(16, 3, 32, 32), torch.arange(4).repeat_interleave(4)
    parts = [(x[y < 2], y[y < 2]), (x[y >= 2], y[y >= 2])]
    strategy = build_strategy("slda_backbone", network, TRAINING["split_digits"], {"shrinkage": 1e-4},
                              evaluator=EvaluationPlugin(loggers=[]), input_shape=(3, 32, 32))
    for experience in tensors_benchmark(parts, parts, task_labels=[0, 0]).train_stream:
        strategy.train(experience)
    assert strategy.cK.tolist() == [4, 4, 4, 4]
