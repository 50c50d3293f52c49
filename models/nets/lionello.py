"""End-to-end waveform VAEs with a bottleneck classifier (Lionello & Purwins).

Two encoders/decoders share one variational bottleneck and loss:

- **DC-VAE** (Table 1): conv 16 x 32; a dilation block of 50 gated residual layers (32 channels,
  kernel 2, dilations ``2 ** ((i-1) mod 10)`` and ``2 ** ((i-1) mod 5)``); five stride-2 kernel-2
  convolutions with one filter; a 1x1 convolution; two dense layers for mean and variance of a
  20-d code; a decoder mirroring all of it.
- **CC-VAE** (Table 2): stride-2 convolutions with 128-128-256-512-1024 filters (kernels 5, 4,
  4, 4, 4), a 1x1 convolution to one channel, the same bottleneck, a mirrored decoder.

The loss (section 3.1) is ``1.0 * MSE + 1e-4 * KL(q(z|x) || N(0, I)) + 1.01 * CE``; the
cross-entropy comes from a small classifier on ``z`` (3 hidden layers of 10 units for digits, one
hidden layer of ``n_classes`` units for drums). We follow the paper, not the public code: the KL
is against N(0, 1), the reconstruction error is a mean over samples, and evaluation (``eval()``)
uses the posterior mean.

Scaling of the KL against the reconstruction (``kl_against``). The KL is summed over the latent
units and averaged over the batch; the MSE is a mean over samples. With ``kl_against="mean"``
(default, the paper's text) the VAE objective is ``recon_weight * MSE + kl_weight * KL``. The
authors' code sums the squared error over the clip's ``n`` samples instead, which is also the
unit-variance Gaussian log-likelihood of the ELBO (eq. 1); against that sum the same 1e-4 is
``n`` times weaker (4096x on digits). ``kl_against="sum"`` reads ``kl_weight`` in those units
and minimises the same objective divided by ``n``, ``recon_weight * MSE + kl_weight / n * KL``,
so the reconstruction term, the gradient sizes and the cross-entropy's weight stay as they are.

Why the model did not learn with the defaults it had before: PyTorch's default initialisation (weight variance
``1 / (3 fan_in)``) shrinks the signal ~0.6x per layer of the one-channel stride-2 path, so the
clips' means started 1e-4 to 3e-3 apart, while the log-variance head, starting near 0, sampled
``z`` with sigma ~1: decoder and classifier saw noise, and the KL, at full weight from the first
step, held the posterior there. The classifier stayed at chance for 140+ steps (500 on the tiny
DC-VAE). Now the layers start as Keras starts them (``weight_init="glorot"``), the log-variance
head at ``logvar_init`` (sigma 0.05 at -6), and the trainer raises the KL's weight linearly
from 0 over ``kl_warmup_steps`` optimiser steps (``trainer.loop.kl_scale_at``; ``loss`` takes
the factor as ``kl_scale``, default 1: the full objective, which validation reports). Only
the initialisation changed, not the layers, so checkpoints of older configs load as before.
On toy vowels the tiny CC-VAE's classifier goes from ln 10 = 2.30 to 0.34 in 280 steps (1.63
in 300 before); tests/test_vae_learning.py holds it.

Waveform MSE cannot beat silence on unseen voices (phase differences cost as much as missing
sound); an optional multi-resolution STFT loss (``stft_weight``, ``stft_fft_sizes``;
``auraloss.freq.MultiResolutionSTFTLoss``: spectral convergence plus log-magnitude L1 per
resolution, averaged) is added to the VAE objective and reported as the ``stft`` term.

Choices where the paper is silent (config fields): hidden activations (``tanh``; the 1-channel
stride-2 path would die under ReLU), the output layer is linear (waveforms in [-1, 1]), the
encoder's last dense layers predict a log-variance (the paper says "variance"; the log is the
numerically safe parameterisation of the same thing), a dense layer ``latent -> n / 32`` opens the
decoder (the tables list the reparameterisation "add" and then a 1x1 transposed convolution, so
some projection from 20 values back to the bottleneck's length must be there), and the
sub-layers of the dilation block are causal and gated as in WaveNet (see ``DilationBlock``).
``bottleneck_channels`` (default 1, the tables) widens the tensor on both sides of the dense
layers to ``(channels, n / 32)``: with one channel every 32-sample stretch of the decoder's output
depends on ~4 scalars, which a CPU-size decoder cannot turn into speech (it stayed at the error
of silence even on one batch of 8 clips); the authors' code gets its capacity from a 4096 x 4096
dense output layer the tables omit, too large for a CPU-size model, so the small CC-VAE preset
widens the bottleneck instead.
The paper's alternating updates (the VAE terms at learning rate 5e-4, the classification term at
1e-3) are the trainer's business (``train.alternating``): ``loss`` returns every term by name,
``alternating_objectives`` splits them into the two gradients of section 3.1, and
``classifier_parameters`` / ``encoder_parameters`` name the weights each gradient moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ConfigError
from models.nets.base import LatentCode, LatentModel, ModelOutput, kl_divergence
from models.nets.dense import ACTIVATIONS, make_activation
from models.nets.lionello_blocks import (
    DilationBlock,
    Gate,
    SameConv1d,
    classifier,
    down_conv,
    up_conv,
)
from models.nets.registry import register_model


@dataclass(frozen=True, kw_only=True)
class _WaveVAEFields:
    """Fields shared by both waveform VAEs (bottleneck, classifier, loss weights)."""

    #: (n_samples,); must be a multiple of 2 ** (number of stride-2 layers)
    input_shape: tuple[int, ...] = (4096,)
    latent_dim: int = 20
    #: classes of the bottleneck classifier; 0 = no classifier (the paper's "non-class" DC-VAE)
    n_classes: int = 10
    classifier_hidden: tuple[int, ...] = (10, 10, 10)
    classifier_activation: str = "relu"
    #: activation after every hidden convolution and the decoder's opening dense layer
    activation: str = "tanh"
    #: channels of the bottleneck tensor ``(channels, n / 32)`` on both sides of the dense layers;
    #: the tables have 1 (see the module docstring for why the CPU-size presets widen it)
    bottleneck_channels: int = 1
    recon_weight: float = 1.0
    kl_weight: float = 1e-4
    class_weight: float = 1.01
    #: the reconstruction term ``kl_weight`` is stated against (module docstring): "mean", the
    #: per-sample MSE (the paper's text); "sum", the squared error summed over the clip (the
    #: authors' code and the plain ELBO), i.e. ``kl_weight / n_samples`` against the MSE
    kl_against: Literal["mean", "sum"] = "mean"
    #: initialisation of the convolutions and dense layers: "glorot", Keras' default (Glorot
    #: uniform weights, zero biases), which the authors' Keras code ran with and which keeps the
    #: signal's size through the one-channel stride-2 path; "torch", PyTorch's default, which
    #: shrinks it ~0.6x per layer, so that the clips' codes start 1e-4 to 5e-3 apart
    weight_init: Literal["glorot", "torch"] = "glorot"
    #: initial bias of the log-variance head (its weights start at 0): every unit starts at
    #: sigma = exp(logvar_init / 2); at 0 the code is noise to decoder and classifier
    logvar_init: float = -6.0
    #: optimiser steps over which the trainer raises the KL's weight linearly from 0 to
    #: ``kl_weight`` (0: full weight from the first step)
    kl_warmup_steps: int = 1000
    #: weight of the multi-resolution STFT loss in the VAE objective (0: off, the paper)
    stft_weight: float = 0.0
    #: FFT sizes of that loss, each with a Hann window of its size and a hop of a quarter of it;
    #: each must be at most the clip's length
    stft_fft_sizes: tuple[int, ...] = (512, 128, 32)

    def _check(self, owner: str, n_strided: int) -> None:
        if len(self.input_shape) != 1:
            raise ConfigError(f"{owner}: input_shape must be (n_samples,), got {tuple(self.input_shape)}")
        m = 2 ** n_strided
        n = self.input_shape[0]
        if n < m or n % m:
            fit = max(m, -(-n // m) * m)
            raise ConfigError(
                f"{owner}: input_shape ({n},) does not fit the strides: {n_strided} stride-2 layers "
                f"divide the length by {m}, so n_samples must be a multiple of {m} (e.g. {fit})"
            )
        if (self.latent_dim < 1 or self.bottleneck_channels < 1 or self.n_classes < 0
                or any(h < 1 for h in self.classifier_hidden)):
            raise ConfigError(f"{owner}: latent_dim, bottleneck_channels and classifier widths must be positive, "
                              "n_classes >= 0")
        for act in (self.activation, self.classifier_activation):
            if act not in ACTIVATIONS:
                raise ConfigError(f"{owner}: unknown activation {act!r}; known: {', '.join(sorted(ACTIVATIONS))}")
        if min(self.recon_weight, self.kl_weight, self.class_weight, self.stft_weight) < 0:
            raise ConfigError(f"{owner}: loss weights must be >= 0")
        if self.kl_warmup_steps < 0:
            raise ConfigError(f"{owner}: kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")
        if self.stft_weight > 0:
            if not self.stft_fft_sizes or min(self.stft_fft_sizes) < 4 or max(self.stft_fft_sizes) > n:
                raise ConfigError(
                    f"{owner}: stft_fft_sizes {list(self.stft_fft_sizes)} must be non-empty, each between 4 "
                    f"and the clip's {n} samples (set model.stft_fft_sizes, e.g. [{n}, {max(n // 4, 4)}])"
                )


@dataclass(frozen=True, kw_only=True)
class DCVAEConfig(_WaveVAEFields):
    """Configuration of :class:`DCVAE` (defaults: Table 1, spoken digits)."""

    front_channels: int = 16
    front_kernel: int = 32
    #: residual layers of each dilation block (encoder and decoder)
    n_layers: int = 50
    residual_channels: int = 32
    #: the ``m`` of the two sub-layers' dilation ``2 ** ((i-1) mod m)``
    dilation_cycles: tuple[int, int] = (10, 5)
    gate: Gate = "tanh_sigmoid"
    #: stride-2 kernel-2 layers after the block, and their filters (Table 1: 5 layers, 1 filter)
    down_layers: int = 5
    down_channels: int = 1

    def __post_init__(self) -> None:
        self._check("dc_vae", self.down_layers)
        if min((self.front_channels, self.front_kernel, self.n_layers, self.residual_channels,
                self.down_layers, self.down_channels, *self.dilation_cycles)) < 1:
            raise ConfigError("dc_vae: layer counts, channels, kernels and cycles must be positive")


@dataclass(frozen=True, kw_only=True)
class CCVAEConfig(_WaveVAEFields):
    """Configuration of :class:`CCVAE` (defaults: Table 2, spoken digits)."""

    channels: tuple[int, ...] = (128, 128, 256, 512, 1024)
    kernels: tuple[int, ...] = (5, 4, 4, 4, 4)

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.kernels) or not self.channels:
            raise ConfigError("cc_vae: channels and kernels need the same, non-zero, length")
        if min(self.kernels) < 2:
            raise ConfigError("cc_vae: stride-2 kernels must be >= 2")
        if min(self.channels) < 1:
            raise ConfigError("cc_vae: channels must be positive")
        self._check("cc_vae", len(self.channels))


class WaveformVAE(LatentModel):
    """Shared bottleneck, classifier and loss of the DC-VAE and CC-VAE.

    Subclasses build ``self.enc_body`` (waveform ``[shape=(batch, 1, n)]`` to the bottleneck
    tensor ``[shape=(batch, bottleneck_channels, n / 32)]``) and ``self.dec_body`` (the mirror),
    then call ``_build_bottleneck``.
    Items are waveforms ``[shape=(batch, n_samples)]``; the code is ``[shape=(batch, latent_dim)]``.
    """

    consumes: ClassVar[str] = "waveform"
    variational: ClassVar[bool] = True

    def _build_bottleneck(self, n_down: int) -> None:
        c = self.config
        self.n_bottleneck = c.input_shape[0] // 2 ** n_down
        flat = c.bottleneck_channels * self.n_bottleneck
        self.enc_mean = nn.Linear(flat, c.latent_dim)
        self.enc_logvar = nn.Linear(flat, c.latent_dim)
        self.dec_dense = nn.Linear(c.latent_dim, flat)
        self.dec_act = make_activation(c.activation)
        self.classifier = (
            classifier(c.latent_dim, c.classifier_hidden, c.n_classes, c.classifier_activation)
            if c.n_classes else None
        )
        with torch.no_grad():
            if c.weight_init == "glorot":
                for m in self.modules():
                    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
                        nn.init.xavier_uniform_(m.weight)
                        if m.bias is not None:
                            m.bias.zero_()
            # every unit starts at sigma = exp(logvar_init / 2): see the module docstring
            self.enc_logvar.weight.zero_()
            self.enc_logvar.bias.fill_(c.logvar_init)
        self.stft_loss = _mrstft(c.stft_fft_sizes) if c.stft_weight > 0 else None

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, n_samples)] -> mean, logvar [shape=(batch, latent_dim)]."""
        if x.shape[1:] != tuple(self.config.input_shape):
            raise ConfigError(
                f"{self.name}: expected items of shape {tuple(self.config.input_shape)}, got {tuple(x.shape[1:])}"
            )
        h = self.enc_body(x.unsqueeze(1)).flatten(1)
        return LatentCode(mean=self.enc_mean(h), logvar=self.enc_logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, latent_dim)] -> waveform [shape=(batch, n_samples)]."""
        # -1 for the batch, not len(z): a traced export must not freeze the batch size
        h = self.dec_act(self.dec_dense(z)).view(-1, self.config.bottleneck_channels, self.n_bottleneck)
        return self.dec_body(h).squeeze(1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        code = self.encode(x)
        z = self.reparameterize(code)
        extras = {} if self.classifier is None else {"logits": self.classifier(z)}
        return ModelOutput(recon=self.decode(z), code=code, z=z, extras=extras)

    @property
    def kl_beta(self) -> float:
        """The KL's weight against the per-sample MSE of ``loss`` (``kl_against``, module docstring)."""
        c = self.config
        return c.kl_weight / c.input_shape[0] if c.kl_against == "sum" else c.kl_weight

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The bottleneck classifier's weights (empty without a classifier)."""
        return [] if self.classifier is None else list(self.classifier.parameters())

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The weights between the waveform and ``z``: the ones the classification gradient reaches."""
        return [*self.enc_body.parameters(), *self.enc_mean.parameters(), *self.enc_logvar.parameters()]

    def alternating_objectives(
        self, terms: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The two objectives of section 3.1's alternating updates, from the terms of :meth:`loss`.

        Returns ``(vae, classification)``: the ``vae`` term (reconstruction and weighted KL, plus
        any regularisation), the paper's gradient 1; ``class_weight * cross-entropy``, its gradient 2,
        or ``None`` when there is no classification term (no classifier, or no labels).
        """
        vae = terms["vae"] + self.regularization()
        ce = terms.get("classification")
        return vae, None if ce is None else self.config.class_weight * ce

    def loss(
        self, x: torch.Tensor, out: ModelOutput, labels: torch.Tensor | None = None, *,
        kl_scale: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """Weighted terms of section 3.1.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, n_samples)]
        out : ModelOutput
            ``self(x, labels)``.
        labels : torch.Tensor [shape=(batch,)] or None
            Class indices; < 0 are ignored.
        kl_scale : float
            Factor on the KL's weight, the trainer's warm-up (``trainer.loop.kl_scale_at``);
            1 gives the paper's objective.

        Returns
        -------
        dict
            ``recon`` (MSE), ``kl``, ``stft`` (only with ``stft_weight > 0``), ``vae`` (``recon_weight
            * recon + stft_weight * stft + kl_scale * beta * kl`` with ``beta`` the KL weight in the
            MSE's units, see ``kl_against``: the paper's first gradient), ``classification``
            (cross-entropy, only when ``labels`` are given and the model has a classifier) and
            ``loss``, the weighted total.
        """
        c = self.config
        recon = torch.mean((out.recon - x) ** 2)
        kl = kl_divergence(out.code.mean, out.code.logvar)
        vae = c.recon_weight * recon + kl_scale * self.kl_beta * kl
        terms = {"recon": recon, "kl": kl}
        if self.stft_loss is not None:
            terms["stft"] = self.stft_loss(out.recon.unsqueeze(1), x.unsqueeze(1))
            vae = vae + c.stft_weight * terms["stft"]
        terms["vae"] = vae
        total = vae
        if labels is not None and "logits" in out.extras:
            labels = labels.to(out.extras["logits"].device).long()
            keep = labels >= 0
            ce = (F.cross_entropy(out.extras["logits"][keep], labels[keep]) if keep.any()
                  else out.extras["logits"].sum() * 0.0)
            terms["classification"] = ce
            total = total + c.class_weight * ce
        terms["loss"] = total + self.regularization()
        return terms


@register_model
class DCVAE(WaveformVAE):
    """Dilated-convolution VAE (Table 1). See :class:`DCVAEConfig` and ``DilationBlock``."""

    name: ClassVar[str] = "dc_vae"
    config_class: ClassVar[type] = DCVAEConfig

    def __init__(self, config: DCVAEConfig) -> None:
        super().__init__(config)
        c = config
        act = c.activation
        block = dict(cycles=c.dilation_cycles, gate=c.gate)
        down = [down_conv(c.residual_channels if i == 0 else c.down_channels, c.down_channels, 2)
                for i in range(c.down_layers)]
        self.enc_body = nn.Sequential(
            SameConv1d(1, c.front_channels, c.front_kernel), make_activation(act),          # 1
            DilationBlock(c.front_channels, c.residual_channels, c.n_layers, **block),       # 2
            *_interleave(down, act),                                                          # 3:7
            nn.Conv1d(c.down_channels, c.bottleneck_channels, 1),                             # 8
        )
        bc = c.bottleneck_channels
        up = [up_conv(bc if i == 0 else c.down_channels, c.down_channels, 2) for i in range(c.down_layers)]
        self.dec_body = nn.Sequential(
            nn.Conv1d(bc, bc, 1), make_activation(act),                                       # 11
            *_interleave(up, act),                                                            # 12:16
            nn.Conv1d(c.down_channels, c.residual_channels, 1), make_activation(act),        # 18
            DilationBlock(c.residual_channels, c.residual_channels, c.n_layers, **block),    # 19
            SameConv1d(c.residual_channels, c.front_channels, c.front_kernel),               # 20
            make_activation(act),
            nn.Conv1d(c.front_channels, 1, 1),                                                # 21
        )
        self._build_bottleneck(c.down_layers)

    @property
    def dilation_blocks(self) -> tuple[DilationBlock, DilationBlock]:
        """(encoder block, decoder block)."""
        enc = next(m for m in self.enc_body if isinstance(m, DilationBlock))
        dec = next(m for m in self.dec_body if isinstance(m, DilationBlock))
        return enc, dec


@register_model
class CCVAE(WaveformVAE):
    """Plain-convolution VAE (Table 2). See :class:`CCVAEConfig`."""

    name: ClassVar[str] = "cc_vae"
    config_class: ClassVar[type] = CCVAEConfig

    def __init__(self, config: CCVAEConfig) -> None:
        super().__init__(config)
        c = config
        ins = (1, *c.channels[:-1])
        down = [down_conv(i, o, k) for i, o, k in zip(ins, c.channels, c.kernels)]
        bc = c.bottleneck_channels
        self.enc_body = nn.Sequential(*_interleave(down, c.activation), nn.Conv1d(c.channels[-1], bc, 1))
        outs = tuple(reversed(c.channels))
        up = [up_conv(i, o, k) for i, o, k in zip((bc, *outs[:-1]), outs, reversed(c.kernels))]
        self.dec_body = nn.Sequential(
            nn.Conv1d(bc, bc, 1), make_activation(c.activation),
            *_interleave(up, c.activation),
            nn.Conv1d(c.channels[0], 1, 1),
        )
        self._build_bottleneck(len(c.channels))


def _interleave(layers: list[nn.Module], activation: str) -> list[nn.Module]:
    out: list[nn.Module] = []
    for layer in layers:
        out += [layer, make_activation(activation)]
    return out


def _mrstft(fft_sizes: tuple[int, ...]) -> nn.Module:
    """auraloss's multi-resolution STFT loss: Hann windows of each FFT size, hops of a quarter."""
    from auraloss.freq import MultiResolutionSTFTLoss  # only models that use it need auraloss

    return MultiResolutionSTFTLoss(fft_sizes=list(fft_sizes), hop_sizes=[max(n // 4, 1) for n in fft_sizes],
                                   win_lengths=list(fft_sizes))
