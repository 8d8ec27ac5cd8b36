"""Generative Replay (Shin et al. 2017) as a peer that stores no inputs: Avalanche's ``GenerativeReplay``.

Avalanche's strategy trains its own fully connected VAE (``MlpVAE``) after each experience, on that
experience and on samples of the previous VAE, and mixes the previous VAE's samples, labelled by the
previous solver, into every training batch. Its default VAE is built for 28x28 MNIST: the decoder's
sigmoid output is normalised with MNIST's mean and standard deviation. Here the VAE takes the
stream's input shape and normalisation instead, so its samples look like the inputs the solver
trains on (Fashion-MNIST, CIFAR-10 and the 8x8 digits are normalised differently). Everything else
is Avalanche's: ``MlpVAE``, ``VAE_loss``, ``VAETraining``, ``GenerativeReplayPlugin`` and the
generator's optimiser (Adam, learning rate 0.01, weight decay 1e-4, as Avalanche's default). On
colour images a fully connected VAE draws blurs; ``vae="conv"`` swaps in a convolutional encoder
and decoder of the same interface.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from avalanche.models import MlpVAE
from avalanche.models.generator import VAE_loss
from avalanche.training import GenerativeReplay, VAETraining
from avalanche.training.plugins import EvaluationPlugin, GenerativeReplayPlugin
from torch import nn

from avalanche_rnf.bench.hparams import Training


class Normalizing(nn.Module):
    """``(x - mean) / std`` per channel, for inputs whose pixels lie in [0, 1]; channels come first
    in an image (``(C, H, W)``), a flat input has one channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], input_shape: tuple[int, ...]):
        super().__init__()
        if len(mean) != len(std) or len(mean) not in (1, input_shape[0]):
            raise ValueError(f"normalisation of {len(mean)} channels does not fit inputs of shape {input_shape}")
        trailing = (1,) * (len(input_shape) - 1)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, *trailing))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, *trailing))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


FEATURES = 128
"""Width of the encoder's output, which ``MlpVAE``'s mean and log-variance layers read."""


class ConvEncoder(nn.Module):
    """Three stride-2 conv-BatchNorm-LeakyReLU blocks (``width``, 2x, 4x channels), then a Linear-ReLU to
    :data:`FEATURES`: the convolutional counterpart of Avalanche's ``VAEMLPEncoder``."""

    def __init__(self, shape: tuple[int, ...], width: int = 32):
        super().__init__()
        channels, inner = _bottleneck(shape, width)
        blocks: list[nn.Module] = []
        for c_in, c_out in ((channels, width), (width, 2 * width), (2 * width, 4 * width)):
            blocks += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU()]
        self.encode = nn.Sequential(*blocks, nn.Flatten(),
                                    nn.Linear(math.prod(inner), FEATURES), nn.ReLU())

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x)


class ConvDecoder(nn.Module):
    """The encoder mirrored with transposed convolutions, a sigmoid over pixels in [0, 1], then
    ``invTrans`` (set to the stream's normalisation), as Avalanche's ``VAEMLPDecoder``."""

    def __init__(self, shape: tuple[int, ...], nhid: int, width: int = 32):
        super().__init__()
        channels, inner = _bottleneck(shape, width)
        self.shape = shape
        blocks: list[nn.Module] = [nn.Linear(nhid, math.prod(inner)), nn.ReLU(), nn.Unflatten(1, inner)]
        for c_in, c_out in ((4 * width, 2 * width), (2 * width, width)):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.decode = nn.Sequential(*blocks, nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),
                                    nn.Sigmoid())
        self.invTrans: nn.Module = nn.Identity()

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.invTrans(self.decode(z).view(-1, *self.shape))


def _bottleneck(shape: tuple[int, ...], width: int) -> tuple[int, tuple[int, int, int]]:
    """An image's channels, and the shape it has after the three stride-2 blocks."""
    if len(shape) != 3 or shape[1] % 8 or shape[2] % 8:
        raise ValueError(f"the convolutional VAE needs images (C, H, W) with H and W multiples of 8, not {shape}: "
                         f"use vae='mlp'")
    return shape[0], (4 * width, shape[1] // 8, shape[2] // 8)


def stream_vae(input_shape: tuple[int, ...], normalization: tuple[Sequence[float], Sequence[float]], *,
               latent: int, device: str | torch.device, kind: str = "mlp") -> MlpVAE:
    """Avalanche's ``MlpVAE`` for inputs of ``input_shape``, its samples normalised as the stream's inputs;
    ``kind="conv"``: its encoder and decoder replaced by :class:`ConvEncoder` and :class:`ConvDecoder`
    (sampling, generation and the loss stay Avalanche's)."""
    if kind not in ("mlp", "conv"):
        raise ValueError(f"vae is 'mlp' or 'conv', not {kind!r}")
    vae = MlpVAE(input_shape, nhid=latent, device=device)
    if kind == "conv":
        vae.encoder = ConvEncoder(input_shape)  # type: ignore[assignment]
        vae.decoder = ConvDecoder(input_shape, latent)  # type: ignore[assignment]
    vae.decoder.invTrans = Normalizing(*normalization, input_shape)
    return vae.to(device)


def generative_replay(model: nn.Module, training: Training, params: dict[str, Any], input_shape: tuple[int, ...],
                      normalization: tuple[Sequence[float], Sequence[float]], *, optimizer: torch.optim.Optimizer,
                      evaluator, plugins: list | None, device: str | torch.device) -> GenerativeReplay:
    """Avalanche's ``GenerativeReplay`` training ``model`` (the solver) with a VAE fitted to the stream.

    ``params``: ``latent`` (the VAE's latent size; Avalanche's default is 2), ``generator_lr``,
    ``replay_size`` (replayed samples per batch; None: as many as the batch has) and ``vae``
    (``"mlp"``, Avalanche's, or ``"conv"``, for images)."""
    unknown = set(params) - {"latent", "generator_lr", "replay_size", "vae"}
    if unknown:
        raise ValueError(f"generative_replay takes latent, generator_lr, replay_size and vae; got {sorted(unknown)}")
    vae = stream_vae(input_shape, normalization, latent=params.get("latent", 2), device=device,
                     kind=params.get("vae", "mlp"))
    trainable = [p for p in vae.parameters() if p.requires_grad]
    generator = VAETraining(
        model=vae, optimizer=torch.optim.Adam(trainable, lr=params.get("generator_lr", 0.01), weight_decay=1e-4),
        criterion=VAE_loss, train_mb_size=training.batch_size, train_epochs=training.epochs,
        eval_mb_size=training.eval_batch_size, device=device, evaluator=EvaluationPlugin(loggers=[]),
        plugins=[GenerativeReplayPlugin(replay_size=params.get("replay_size"))])
    return GenerativeReplay(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
                            train_mb_size=training.batch_size, train_epochs=training.epochs,
                            eval_mb_size=training.eval_batch_size, device=device, plugins=plugins,
                            evaluator=evaluator, generator_strategy=generator, replay_size=params.get("replay_size"))
