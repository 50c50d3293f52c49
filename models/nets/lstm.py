"""LSTM autoencoder on sequences of magnitude frames (Roche et al. 2019's "LSTM-AE").

Each frame gets its own latent vector, computed with context from its neighbours: an encoder
LSTM (optionally bidirectional) reads the frames, a linear layer maps every time step to the
latent; a decoder LSTM reads the latent sequence and a linear layer plus sigmoid gives frames.
The code therefore has one row per frame, ``(batch, seq_len, latent_dim)``, and the map can show
frames exactly as for the dense models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from models.errors import ConfigError
from models.nets.base import LatentCode, LatentModel
from models.nets.dense import L2Mode, make_activation, per_layer, weight_penalty
from models.nets.registry import register_model


@dataclass(frozen=True, kw_only=True)
class LSTMAEConfig:
    """``input_shape = (seq_len, n_bins)``: the trainer cuts windows of ``seq_len`` frames.

    Any sequence length encodes and decodes; ``seq_len`` only sets the training windows.
    """

    input_shape: tuple[int, ...] = (32, 513)
    latent_dim: int = 16
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    #: the decoder is causal by default, so frames can be decoded one after another
    decoder_bidirectional: bool = False
    latent_activation: str = "identity"
    output_activation: str = "sigmoid"
    l2: float = 0.0
    l2_mode: L2Mode = "squared"


@register_model
class LSTMAE(LatentModel):
    """Recurrent autoencoder with a per-frame latent.

    Shapes: frames ``[shape=(batch, seq_len, n_bins)]`` in [0, 1],
    code ``[shape=(batch, seq_len, latent_dim)]``.
    """

    name: ClassVar[str] = "lstm_ae"
    config_class: ClassVar[type] = LSTMAEConfig
    consumes: ClassVar[str] = "stft_frames"
    #: the trainer feeds windows of ``input_shape[0]`` consecutive frames, not single frames
    sequence: ClassVar[bool] = True

    def __init__(self, config: LSTMAEConfig) -> None:
        super().__init__(config)
        if len(config.input_shape) != 2 or min(config.input_shape) < 1:
            raise ConfigError(f"lstm_ae: input_shape must be (seq_len, n_bins), got {config.input_shape}")
        for field in ("latent_dim", "hidden_size", "num_layers"):
            if getattr(config, field) < 1:
                raise ConfigError(f"lstm_ae: {field} must be positive, got {getattr(config, field)}")
        per_layer(config.latent_activation, 1, "latent_activation")
        per_layer(config.output_activation, 1, "output_activation")
        n_bins, h = config.input_shape[1], config.hidden_size
        enc_dirs = 2 if config.bidirectional else 1
        dec_dirs = 2 if config.decoder_bidirectional else 1
        self.encoder_rnn = nn.LSTM(
            n_bins, h, num_layers=config.num_layers, batch_first=True, bidirectional=config.bidirectional
        )
        self.to_latent = nn.Linear(enc_dirs * h, config.latent_dim)
        self.latent_act = make_activation(config.latent_activation)
        self.decoder_rnn = nn.LSTM(
            config.latent_dim,
            h,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=config.decoder_bidirectional,
        )
        self.to_frames = nn.Linear(dec_dirs * h, n_bins)
        self.output_act = make_activation(config.output_activation)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.input_shape[0], self.config.latent_dim)

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, seq_len, n_bins)] -> code [shape=(batch, seq_len, latent_dim)]."""
        if x.dim() != 3:
            raise ConfigError(f"lstm_ae.encode: expected (batch, seq_len, n_bins), got {tuple(x.shape)}")
        h, _ = self.encoder_rnn(x)
        return LatentCode(mean=self.latent_act(self.to_latent(h)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, seq_len, latent_dim)] -> frames [shape=(batch, seq_len, n_bins)]."""
        if z.dim() != 3:
            raise ConfigError(f"lstm_ae.decode: expected (batch, seq_len, latent_dim), got {tuple(z.shape)}")
        h, _ = self.decoder_rnn(z)
        return self.output_act(self.to_frames(h))

    def regularization(self) -> torch.Tensor:
        return weight_penalty(self, l2=self.config.l2, mode=self.config.l2_mode)
