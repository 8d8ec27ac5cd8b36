"""Generative Replay in the harness: Avalanche's strategy with a VAE fitted to the stream's inputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import MlpVAE
from avalanche.models.generator import VAE_loss
from avalanche.training.plugins import EvaluationPlugin
from PIL import Image

from avalanche_rnf.bench.generative import ConvEncoder, stream_vae
from avalanche_rnf.bench.hparams import TRAINING, strategy_params
from avalanche_rnf.bench.models import model_for
from avalanche_rnf.bench.runner import RunSpec, run
from avalanche_rnf.bench.strategies import build_strategy
from avalanche_rnf.bench.streams import FASHION_MNIST_STATS, MNIST_STATS, build_stream


def test_the_vae_samples_are_normalised_as_the_streams_inputs():
    torch.manual_seed(0)
    ours = stream_vae((1, 28, 28), MNIST_STATS, latent=2, device="cpu")
    avalanche = MlpVAE((1, 28, 28), nhid=2)
    avalanche.load_state_dict(ours.state_dict(), strict=False)  # ours also holds the mean and std
    z = torch.randn(5, 2)
    assert torch.allclose(ours.decoder(z), avalanche.decoder(z), atol=1e-6)  # MNIST: Avalanche's own transform

    fashion = stream_vae((1, 28, 28), FASHION_MNIST_STATS, latent=2, device="cpu").eval()
    (mean,), (std,) = FASHION_MNIST_STATS
    pixels = fashion.decoder.decode(z).view(-1, 1, 28, 28)  # the sigmoid's output, pixels in [0, 1]
    assert torch.allclose(fashion.decoder(z), (pixels - mean) / std, atol=1e-6)
    assert fashion.generate(64).shape == (64, 1, 28, 28)
    flat = stream_vae((6,), ((0.25,), (0.5,)), latent=2, device="cpu")
    assert torch.allclose(flat.decoder(z), (flat.decoder.decode(z) - 0.25) / 0.5, atol=1e-6)

    colour = stream_vae((3, 4, 4), ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5)), latent=2, device="cpu")
    x = colour.decoder.decode(torch.randn(3, 2)).view(-1, 3, 4, 4)
    channel_means = torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)
    assert torch.allclose(colour.decoder.invTrans(x) * torch.tensor([0.2, 0.25, 0.5]).view(3, 1, 1) + channel_means, x,
                          atol=1e-6)
    with pytest.raises(ValueError, match="2 channels"):
        stream_vae((3, 4, 4), ((0.5, 0.5), (0.2, 0.2)), latent=2, device="cpu")


def test_the_conv_vae_keeps_avalanches_interface_and_the_streams_normalisation():
    torch.manual_seed(0)
    stats = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    vae = stream_vae((3, 16, 16), stats, latent=8, device="cpu", kind="conv")
    x = torch.randn(4, 3, 16, 16)
    x_hat, mean, logvar = vae(x)
    assert x_hat.shape == x.shape and mean.shape == logvar.shape == (4, 8)
    VAE_loss(x, (x_hat, mean, logvar)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vae.encoder.parameters())
    vae.eval()
    z = torch.randn(5, 8)
    pixels = vae.decoder.decode(z)
    assert pixels.shape == (5, 3, 16, 16) and 0 <= pixels.min() and pixels.max() <= 1
    channel_means, channel_stds = (torch.tensor(v).view(3, 1, 1) for v in stats)
    assert torch.allclose(vae.decoder(z), (pixels - channel_means) / channel_stds, atol=1e-6)
    assert vae.generate(6).shape == (6, 3, 16, 16)
    with pytest.raises(ValueError, match="H and W multiples of 8, not \\(1, 28, 28\\)"):
        stream_vae((1, 28, 28), MNIST_STATS, latent=2, device="cpu", kind="conv")
    with pytest.raises(ValueError, match="'mlp' or 'conv', not 'gan'"):
        stream_vae((3, 16, 16), stats, latent=2, device="cpu", kind="gan")


def test_generative_replay_with_the_conv_vae_replays_generated_images(tmp_path):
    for split in ("train", "test"):
        for i in range(4):
            folder = tmp_path / split / f"c{i}"
            folder.mkdir(parents=True)
            for k in range(4):
                Image.new("RGB", (8, 8), (60 * i, 20 * k, 100)).save(folder / f"{k}.png")
    stream = build_stream("imagefolder", "class", root=tmp_path, n_experiences=2, image_size=8)
    training = dataclasses.replace(TRAINING["imagefolder"], epochs=1, batch_size=4, width=4, hidden_size=8)
    sizes = BatchSizes()
    strategy = build_strategy("generative_replay", model_for(stream, training), training,
                              {"latent": 4, "vae": "conv"}, evaluator=EvaluationPlugin(loggers=[]), plugins=[sizes],
                              input_shape=tuple(stream.input_shape), normalization=stream.normalization)
    for experience in stream.benchmark.train_stream:
        strategy.train(experience)
    assert isinstance(strategy.generator_strategy.model.encoder, ConvEncoder)
    assert max(sizes.sizes[1]) == 2 * training.batch_size  # each batch doubled by the old VAE's images


def test_the_streams_normalisation_is_avalanches_default():
    from avalanche.benchmarks.classic import cfashion_mnist, cmnist

    for stats, transform in ((MNIST_STATS, cmnist._default_mnist_train_transform),
                             (FASHION_MNIST_STATS, cfashion_mnist._default_fmnist_train_transform)):
        normalize = next(t for t in transform.transforms if type(t).__name__ == "Normalize")
        assert (tuple(normalize.mean), tuple(normalize.std)) == stats


class BatchSizes(SupervisedPlugin):
    def __init__(self):
        super().__init__()
        self.sizes: dict[int, set[int]] = {}

    def before_forward(self, strategy, **kwargs):
        self.sizes.setdefault(strategy.clock.train_exp_counter, set()).add(len(strategy.mb_x))


def test_generative_replay_mixes_generated_samples_into_batches_from_the_second_experience():
    stream = build_stream("split_digits", "class", seed=0)
    training = dataclasses.replace(TRAINING["split_digits"], epochs=1)
    torch.manual_seed(0)
    sizes = BatchSizes()
    strategy = build_strategy("generative_replay", model_for(stream, training), training,
                              strategy_params("generative_replay", "split_digits", "class"),
                              evaluator=EvaluationPlugin(loggers=[]), plugins=[sizes],
                              input_shape=tuple(stream.input_shape), normalization=stream.normalization)
    for experience in stream.benchmark.train_stream[:2]:
        strategy.train(experience)
    assert max(sizes.sizes[0]) <= training.batch_size  # nothing to replay yet
    assert max(sizes.sizes[1]) == 2 * training.batch_size  # each batch doubled by the old VAE's samples
    with pytest.raises(ValueError, match="latent, generator_lr, replay_size and vae"):
        build_strategy("generative_replay", model_for(stream, training), training, {"mem_size": 10},
                       evaluator=EvaluationPlugin(loggers=[]), input_shape=(64,), normalization=stream.normalization)
    with pytest.raises(ValueError, match="input_shape and normalization"):
        build_strategy("generative_replay", model_for(stream, training), training, {}, input_shape=(64,),
                       evaluator=EvaluationPlugin(loggers=[]))


def test_generative_replay_runs_class_incremental_and_is_skipped_where_it_cannot_run():
    stream = build_stream("split_digits", "class", seed=0)
    training = TRAINING["split_digits"]
    params = strategy_params("generative_replay", "split_digits", "class")
    record = run(RunSpec("generative_replay", params, training, 0), stream, raise_errors=True)
    naive = run(RunSpec("naive", strategy_params("naive", "split_digits", "class"), training, 0), stream,
                raise_errors=True)
    assert record.status == "ok" and len(record.matrix) == 5
    assert record.average_accuracy > naive.average_accuracy + 0.2  # replayed digits are remembered
    vae = sum(p.numel() for p in stream_vae((64,), stream.normalization, latent=2, device="cpu").parameters())
    assert record.state_bytes[0] >= 4 * vae  # the generator, later also the previous generator and solver
    assert record.state_bytes[-1] > record.state_bytes[0]
    task = run(RunSpec("generative_replay", params, training, 0), build_stream("split_digits", "task", seed=0))
    assert task.status == "skipped" and "task labels" in task.reason
    online = run(RunSpec("generative_replay", params, dataclasses.replace(training, online=16), 0), stream)
    assert online.status == "skipped" and "generator" in online.reason
