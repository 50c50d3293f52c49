"""Dense autoencoders on single magnitude-STFT frames: shallow AE and deep AE.

Covers Roche et al. 2019 (shallow and deep AEs compared with PCA across latent sizes) and
Colonel et al. 2017 (Table 1 depth-1 nets; Table 3 deep nets 512-256-128-64 with all-sigmoid,
all-ReLU and the "hybrid": sigmoid on the latent and the output, ReLU elsewhere, no additive
bias, l2 weight penalty). The decoder mirrors the encoder.

Colonel's synthesis control multiplies the latent by gains before decoding: use
``base.apply_gains(z, gains)`` with per-unit gains, or :func:`band_gains` to expand the GUI's
five band dials into per-unit gains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from models.errors import ConfigError
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import register_model

#: activation names accepted by every frame model's config
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

L2Mode = Literal["norm", "squared"]


def make_activation(name: str) -> nn.Module:
    """A fresh activation module from its config name (raises ConfigError if unknown)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ConfigError(
            f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


def per_layer(value: str | Sequence[str], n_layers: int, what: str) -> tuple[str, ...]:
    """Expand one activation name, or check a per-layer tuple, to ``n_layers`` names."""
    if isinstance(value, str):
        names = (value,) * n_layers
    else:
        names = tuple(value)
        if len(names) != n_layers:
            raise ConfigError(f"{what}: expected 1 or {n_layers} activation names, got {len(names)}")
    for name in names:
        if name not in ACTIVATIONS:
            raise ConfigError(f"{what}: unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return names


def mlp(widths: Sequence[int], activations: Sequence[str], *, bias: bool) -> nn.Sequential:
    """Linear layers ``widths[0] -> widths[1] -> ...``, each followed by its activation.

    ``activations`` has ``len(widths) - 1`` names; an ``"identity"`` adds no module so that
    state-dict keys stay ``<index>.weight`` for the Linear layers.
    """
    layers: list[nn.Module] = []
    for n_in, n_out, act in zip(widths[:-1], widths[1:], activations, strict=True):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if act != "identity":
            layers.append(make_activation(act))
    return nn.Sequential(*layers)


def weight_penalty(module: nn.Module, *, l2: float, mode: L2Mode) -> torch.Tensor:
    """``l2 * ||W||_2`` over every weight matrix of ``module`` (biases are not penalised).

    ``mode="norm"`` is Colonel's eq. 6 as printed: the Euclidean norm of all weights taken as one
    vector (not squared). ``mode="squared"`` is the usual weight decay, the sum of squares.
    """
    weights = [p for p in module.parameters() if p.dim() >= 2]
    if l2 == 0.0 or not weights:
        device = weights[0].device if weights else torch.device("cpu")
        return torch.zeros((), device=device)
    sq = torch.stack([w.pow(2).sum() for w in weights]).sum()
    return l2 * (sq.sqrt() if mode == "norm" else sq)


def band_gains(
    n_units: int, edges: Sequence[int], gains: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Per-unit latent gains from band dials, as in Colonel's GUI.

    The latent units ``0 .. n_units-1`` are split into ``len(gains)`` contiguous bands at the
    interior ``edges`` (the GUI's sliders): band ``b`` covers units ``edges[b-1] <= i < edges[b]``
    with ``edges[-1] = 0`` and ``edges[len(gains)-1] = n_units`` implied. A band may be empty.

    Parameters
    ----------
    n_units : int
        Latent size (64 in Colonel's hybrid).
    edges : sequence of int [shape=(len(gains) - 1,)]
        Non-decreasing unit indices in ``[0, n_units]``.
    gains : sequence of float [shape=(n_bands,)]
        One gain per band (5 dials in the GUI).

    Returns
    -------
    torch.Tensor [shape=(n_units,), dtype=float32]
        Gains to pass to ``base.apply_gains``.
    """
    g = torch.as_tensor(gains, dtype=torch.float32).flatten()
    e = [int(v) for v in edges]
    if n_units < 1:
        raise ConfigError(f"band_gains: n_units must be positive, got {n_units}")
    if len(e) != g.numel() - 1:
        raise ConfigError(f"band_gains: {g.numel()} bands need {g.numel() - 1} edges, got {len(e)}")
    if any(b < a for a, b in zip(e, e[1:])) or any(v < 0 or v > n_units for v in e):
        raise ConfigError(f"band_gains: edges {e} must be non-decreasing within [0, {n_units}]")
    band = torch.bucketize(torch.arange(n_units), torch.tensor(e, dtype=torch.long), right=True)
    return g[band]


class DenseAutoencoder(LatentModel):
    """Shared body of the shallow and deep dense AEs: encoder MLP, mirrored decoder MLP.

    Subclasses describe the layer plan through ``_plan()``. Input and output are
    ``[shape=(batch, n_bins)]`` frames in [0, 1]; the code is ``[shape=(batch, latent_dim)]``.
    """

    consumes: ClassVar[str] = "stft_frames"

    def __init__(self, config: ShallowAEConfig | DeepAEConfig) -> None:
        super().__init__(config)
        if len(config.input_shape) != 1 or config.input_shape[0] < 1:
            raise ConfigError(f"{self.name}: input_shape must be (n_bins,), got {config.input_shape}")
        if config.latent_dim < 1:
            raise ConfigError(f"{self.name}: latent_dim must be positive, got {config.latent_dim}")
        if config.l2 < 0:
            raise ConfigError(f"{self.name}: l2 must be >= 0, got {config.l2}")
        hidden, enc_acts, dec_acts = self._plan()
        n_bins = config.input_shape[0]
        self.encoder = mlp((n_bins, *hidden, config.latent_dim), enc_acts, bias=config.bias)
        self.decoder = mlp((config.latent_dim, *reversed(hidden), n_bins), dec_acts, bias=config.bias)

    def _plan(self) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
        """(encoder hidden widths, encoder activations, decoder activations incl. output)."""
        raise NotImplementedError

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, n_bins)] -> code [shape=(batch, latent_dim)]."""
        return LatentCode(mean=self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, latent_dim)] -> frames [shape=(batch, n_bins)]."""
        return self.decoder(z)

    def regularization(self) -> torch.Tensor:
        return weight_penalty(self, l2=self.config.l2, mode=self.config.l2_mode)


@dataclass(frozen=True, kw_only=True)
class ShallowAEConfig:
    """One hidden layer: ``n_bins -> latent_dim -> n_bins``.

    Defaults are Colonel's Table 1 nets: sigmoid everywhere, no additive bias (Roche's shallow AE
    differs only by ``bias=True`` in our presets; the abstract gives no more detail).
    """

    input_shape: tuple[int, ...] = (1025,)
    latent_dim: int = 64
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    bias: bool = False
    #: weight of the weight penalty (see ``l2_mode``); 0 disables it
    l2: float = 0.0
    l2_mode: L2Mode = "norm"


@register_model
class ShallowAE(DenseAutoencoder):
    """Shallow autoencoder (Roche's "AE", Colonel's depth-1 topologies)."""

    name: ClassVar[str] = "shallow_ae"
    config_class: ClassVar[type] = ShallowAEConfig

    def _plan(self) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
        c = self.config
        return (
            (),
            per_layer(c.activation, 1, "activation"),
            per_layer(c.output_activation, 1, "output_activation"),
        )


@dataclass(frozen=True, kw_only=True)
class DeepAEConfig:
    """Deep dense AE: ``n_bins -> hidden... -> latent_dim -> reversed(hidden)... -> n_bins``.

    Defaults are Colonel's hybrid: encoder 1025-512-256-128-64, ReLU on hidden layers, sigmoid on
    the latent and on the output, no additive bias.
    """

    input_shape: tuple[int, ...] = (1025,)
    #: encoder hidden widths before the latent layer
    hidden: tuple[int, ...] = (512, 256, 128)
    latent_dim: int = 64
    #: one name for all encoder hidden layers, or one per hidden layer
    hidden_activation: str | tuple[str, ...] = "relu"
    latent_activation: str = "sigmoid"
    #: decoder hidden layers (``len(hidden)`` of them, in decoder order); None mirrors the encoder
    decoder_activation: str | tuple[str, ...] | None = None
    output_activation: str = "sigmoid"
    bias: bool = False
    l2: float = 0.0
    l2_mode: L2Mode = "norm"


@register_model
class DeepAE(DenseAutoencoder):
    """Deep autoencoder with per-layer activations (Roche's "DAE", Colonel's Table 3 nets)."""

    name: ClassVar[str] = "deep_ae"
    config_class: ClassVar[type] = DeepAEConfig

    def _plan(self) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
        c = self.config
        if any(w < 1 for w in c.hidden):
            raise ConfigError(f"deep_ae: hidden widths must be positive, got {c.hidden}")
        n = len(c.hidden)
        enc_hidden = per_layer(c.hidden_activation, n, "hidden_activation")
        if c.decoder_activation is None:
            dec_hidden = tuple(reversed(enc_hidden))
        else:
            dec_hidden = per_layer(c.decoder_activation, n, "decoder_activation")
        enc = enc_hidden + per_layer(c.latent_activation, 1, "latent_activation")
        dec = dec_hidden + per_layer(c.output_activation, 1, "output_activation")
        return tuple(c.hidden), enc, dec
