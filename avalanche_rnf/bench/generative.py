"""Generative Replay (Shin et al. 2017) as a peer that stores no inputs: Avalanche's ``GenerativeReplay``.

Avalanche's strategy trains its own fully connected VAE (``MlpVAE``) after each experience, on that
experience and on samples of the previous VAE, and mixes the previous VAE's samples, labelled by the
previous solver, into every training batch. Its default VAE is built for 28x28 MNIST: the decoder's
sigmoid output is normalised with MNIST's mean and standard deviation. Here the VAE takes the
stream's input shape and normalisation instead, so its samples look like the inputs the solver
trains on (Fashion-MNIST, CIFAR-10 and the 8x8 digits are normalised differently). Everything else
is Avalanche's: ``MlpVAE``, ``VAE_loss``, ``VAETraining``, ``GenerativeReplayPlugin`` and the
generator's optimiser (Adam, learning rate 0.01, weight decay 1e-4, as Avalanche's default).
"""

from __future__ import annotations

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


def stream_vae(input_shape: tuple[int, ...], normalization: tuple[Sequence[float], Sequence[float]], *,
               latent: int, device: str | torch.device) -> MlpVAE:
    """Avalanche's ``MlpVAE`` for inputs of ``input_shape``, its samples normalised as the stream's inputs."""
    vae = MlpVAE(input_shape, nhid=latent, device=device)
    vae.decoder.invTrans = Normalizing(*normalization, input_shape)
    return vae.to(device)


def generative_replay(model: nn.Module, training: Training, params: dict[str, Any], input_shape: tuple[int, ...],
                      normalization: tuple[Sequence[float], Sequence[float]], *, optimizer: torch.optim.Optimizer,
                      evaluator, plugins: list | None, device: str | torch.device) -> GenerativeReplay:
    """Avalanche's ``GenerativeReplay`` training ``model`` (the solver) with a VAE fitted to the stream.

    ``params``: ``latent`` (the VAE's latent size; Avalanche's default is 2), ``generator_lr`` and
    ``replay_size`` (replayed samples per batch; None: as many as the batch has)."""
    unknown = set(params) - {"latent", "generator_lr", "replay_size"}
    if unknown:
        raise ValueError(f"generative_replay takes latent, generator_lr and replay_size; got {sorted(unknown)}")
    vae = stream_vae(input_shape, normalization, latent=params.get("latent", 2), device=device)
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
