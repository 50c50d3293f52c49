"""The one interface every model follows, PCA included.

A model consumes one representation (``consumes``), has a frozen config dataclass
(``config_class``), maps a batch to a latent code and back, and knows its own loss. Variational
models return a mean and a log-variance from ``encode``; the mean is what the map shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class LatentCode:
    """What ``encode`` returns.

    mean : torch.Tensor [shape=(batch, *latent_shape)]
        The code itself for deterministic models, the posterior mean for VAEs.
    logvar : torch.Tensor | None [shape=(batch, *latent_shape)]
        Posterior log-variance for VAEs, ``None`` otherwise.
    """

    mean: torch.Tensor
    logvar: torch.Tensor | None = None


@dataclass
class ModelOutput:
    """What ``forward`` returns: everything ``loss`` needs."""

    recon: torch.Tensor
    code: LatentCode
    z: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class LatentModel(nn.Module):
    """Base class of all models.

    Subclasses set the class attributes, build their layers from ``config`` and implement
    ``encode``, ``decode`` and (if they add terms) ``loss``.

    Convention: every config dataclass has a field ``input_shape: tuple[int, ...]`` (one item,
    no batch axis) so that the trainer can fit any model to the feature shape of the
    representation it was given; everything else in the network derives from it.
    """

    #: registry name, e.g. ``"deep_ae"``
    name: ClassVar[str] = ""
    #: the frozen, kw_only config dataclass of this model
    config_class: ClassVar[type]
    #: representation kind consumed: ``"stft_frames"``, ``"stft_sequence"``, ``"logmel"``, ``"waveform"``
    consumes: ClassVar[str] = ""
    #: True for VAEs: ``encode`` gives mean and log-variance
    variational: ClassVar[bool] = False
    #: False for models fitted in closed form (PCA): the trainer calls ``fit`` instead of SGD
    trainable: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self.config = config

    # --- shapes -----------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one item of the batch ``encode`` takes."""
        return tuple(self.config.input_shape)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one item of the code ``encode`` gives."""
        raise NotImplementedError

    # --- the interface ----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> LatentCode:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The code the map uses: the mean for VAEs."""
        return self.encode(x).mean

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        code = self.encode(x)
        z = self.reparameterize(code)
        return ModelOutput(recon=self.decode(z), code=code, z=z)

    def reparameterize(self, code: LatentCode) -> torch.Tensor:
        if code.logvar is None or not self.training:
            return code.mean
        std = torch.exp(0.5 * code.logvar)
        return code.mean + std * torch.randn_like(std)

    def loss(
        self, x: torch.Tensor, out: ModelOutput, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Named loss terms; ``"loss"`` is the total that is minimised.

        The default is the mean squared error plus the KL term for variational models.
        """
        recon = torch.mean((out.recon - x) ** 2)
        terms = {"recon": recon}
        total = recon
        if self.variational and out.code.logvar is not None:
            kl = kl_divergence(out.code.mean, out.code.logvar)
            terms["kl"] = kl
            total = total + getattr(self.config, "kl_weight", 1.0) * kl
        terms["loss"] = total + self.regularization()
        return terms

    def regularization(self) -> torch.Tensor:
        """Weight penalties (l1/l2) added to the loss; zero by default."""
        return torch.zeros((), device=_device_of(self))


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), summed over latent units, averaged over the batch."""
    kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp())
    return kl.flatten(1).sum(dim=1).mean()


def apply_gains(z: torch.Tensor, gains: torch.Tensor | None) -> torch.Tensor:
    """Colonel's synthesis control: scale latent units before decoding.

    ``gains`` broadcasts against ``z`` (one per unit, shape ``latent_shape``).
    """
    return z if gains is None else z * gains.to(z)


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")
