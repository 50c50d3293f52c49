"""Dense variational autoencoder on single magnitude frames (Roche et al. 2019's "VAE").

The encoder MLP ends in two linear heads, posterior mean and log-variance; the decoder mirrors
the encoder and ends in a sigmoid, since frames are scaled to [0, 1]. The map uses the mean.

Scaling: the KL (summed over latent units, mean over the batch) is weighed by ``kl_weight``
against the squared error summed over a frame's bins (``recon_reduction="sum"``: a Gaussian
likelihood of variance ``kl_weight / 2`` per bin, so the objective is the ELBO times
``kl_weight``, whatever the number of bins) or against the per-bin mean ("mean", ``n_bins`` times
stronger for the same weight). As in Lionello's VAEs (models/nets/lionello.py),
the log-variance head starts at ``logvar_init`` with zero weights, so that the first samples of
``z`` are not noise around nearly equal means, and the trainer warms the KL's weight up linearly
from 0 over ``kl_warmup_steps`` optimiser steps (``trainer.loop.kl_scale_at``, passed to
``loss`` as ``kl_scale``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from models.errors import ConfigError
from models.nets.base import LatentCode, LatentModel, ModelOutput, kl_divergence
from models.nets.dense import L2Mode, mlp, per_layer, weight_penalty
from models.nets.registry import register_model

#: log-variance is clamped here so that exp() cannot overflow early in training
LOGVAR_RANGE = (-30.0, 20.0)


@dataclass(frozen=True, kw_only=True)
class FrameVAEConfig:
    """``n_bins -> hidden... -> (mean, logvar)[latent_dim]``; decoder mirrored."""

    input_shape: tuple[int, ...] = (513,)
    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 16
    hidden_activation: str | tuple[str, ...] = "relu"
    output_activation: str = "sigmoid"
    bias: bool = True
    #: beta: weight of KL(q(z|x) || N(0, I)) (summed over latent units, mean over the batch).
    #: Against the summed squared error this is ``2 sigma ** 2`` of a Gaussian likelihood of
    #: standard deviation sigma per bin: 0.02 is sigma = 0.1 on the [0, 1] features. 1 (sigma
    #: 0.71, a likelihood nearly flat over [0, 1]) let a tiny VAE's posterior collapse to the prior
    #: (every frame decoded as the mean frame) and left the full-size one 5x worse in MSE on
    #: synthetic harmonic frames after 1500 steps
    kl_weight: float = 0.02
    #: reconstruction term in the minimised loss: squared error summed over the bins of a frame
    #: ("sum", a Gaussian log-likelihood up to a constant, so beta=1 is the plain ELBO) or the
    #: per-element mean ("mean", which then needs a much smaller kl_weight)
    recon_reduction: Literal["sum", "mean"] = "sum"
    #: initial bias of the log-variance head (weights start at 0): sigma = exp(logvar_init / 2)
    logvar_init: float = -6.0
    #: optimiser steps over which the trainer raises the KL's weight linearly from 0 (0: none)
    kl_warmup_steps: int = 1000
    l2: float = 0.0
    l2_mode: L2Mode = "squared"


@register_model
class FrameVAE(LatentModel):
    """Variational AE on frames ``[shape=(batch, n_bins)]``, code ``[shape=(batch, latent_dim)]``."""

    name: ClassVar[str] = "frame_vae"
    config_class: ClassVar[type] = FrameVAEConfig
    consumes: ClassVar[str] = "stft_frames"
    variational: ClassVar[bool] = True

    def __init__(self, config: FrameVAEConfig) -> None:
        super().__init__(config)
        if len(config.input_shape) != 1 or config.input_shape[0] < 1:
            raise ConfigError(f"frame_vae: input_shape must be (n_bins,), got {config.input_shape}")
        if config.latent_dim < 1 or any(w < 1 for w in config.hidden):
            raise ConfigError("frame_vae: latent_dim and hidden widths must be positive")
        if config.kl_weight < 0 or config.l2 < 0 or config.kl_warmup_steps < 0:
            raise ConfigError("frame_vae: kl_weight, l2 and kl_warmup_steps must be >= 0")
        n_bins, k = config.input_shape[0], config.latent_dim
        acts = per_layer(config.hidden_activation, len(config.hidden), "hidden_activation")
        out = per_layer(config.output_activation, 1, "output_activation")
        self.encoder = mlp((n_bins, *config.hidden), acts, bias=config.bias)
        last = config.hidden[-1] if config.hidden else n_bins
        self.to_mean = nn.Linear(last, k, bias=config.bias)
        self.to_logvar = nn.Linear(last, k, bias=config.bias)
        with torch.no_grad():  # sigma = exp(logvar_init / 2) for every frame at the start
            self.to_logvar.weight.zero_()
            if config.bias:
                self.to_logvar.bias.fill_(config.logvar_init)
        self.decoder = mlp((k, *reversed(config.hidden), n_bins), tuple(reversed(acts)) + out, bias=config.bias)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, n_bins)] -> mean, logvar [shape=(batch, latent_dim)]."""
        h = self.encoder(x)
        logvar = self.to_logvar(h).clamp(*LOGVAR_RANGE)
        return LatentCode(mean=self.to_mean(h), logvar=logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, latent_dim)] -> frames [shape=(batch, n_bins)]."""
        return self.decoder(z)

    def loss(
        self, x: torch.Tensor, out: ModelOutput, labels: torch.Tensor | None = None, *,
        kl_scale: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """Terms: ``recon`` (per-element MSE, comparable across models), ``recon_sum``, ``kl``, ``loss``.

        ``kl_scale`` multiplies ``kl_weight`` in ``loss``: the trainer's warm-up factor; 1 (the
        default) is the full objective.
        """
        sq = (out.recon - x) ** 2
        recon = sq.mean()
        recon_sum = sq.flatten(1).sum(dim=1).mean()
        kl = kl_divergence(out.code.mean, out.code.logvar)
        data = recon_sum if self.config.recon_reduction == "sum" else recon
        total = data + kl_scale * self.config.kl_weight * kl + self.regularization()
        return {"recon": recon, "recon_sum": recon_sum, "kl": kl, "loss": total}

    def regularization(self) -> torch.Tensor:
        return weight_penalty(self, l2=self.config.l2, mode=self.config.l2_mode)
