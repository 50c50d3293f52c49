"""Stacked convolutional autoencoder on log-mel spectrograms (Natsiou, Longo & O'Leary).

The paper's network: three 2-D convolutions (kernel 4, stride 2, "same" padding, tanh), each
followed by 2x2 max or average pooling, a dense bottleneck, and a mirrored decoder; Adam 1e-3,
MSE, batches of 64, early stopping (patience 10). Its tables vary pooling (max / average / none),
the dense bottleneck (8192 / 4096 / 2048 units, or none), dropout 0.3 (encoder / decoder / both),
L1/L2 kernel and activity regularisers (encoder / decoder / both) and, in the text, a softmax
output. Every one of those is a field of :class:`NatsiouConfig`.

Choices where the paper is silent (each is a config field):

- **Channels** ``(128, 256, 512)``: with a 128 x 512 log-mel, three conv+pool stages leave
  512 x 2 x 8 = 8192 values, so the baseline's 8192-unit dense layer is square, the no-dense
  variant has the same latent size as the baseline (a fair Table IV), and the 2048-unit latent is
  3 % of the input, the compression the paper's conclusion quotes.
- **No pooling** replaces every pooling layer by one more stride-2 convolution with the channels
  of the convolution before it (the paper's "three additional convolutional layers"), so the
  latent grid is the same as with pooling.
- **Decoder mirror of pooling** is 2x nearest-neighbour upsampling (Keras' ``UpSampling2D``),
  before each transposed convolution.
- **Dense layers** use tanh like the convolutions, so a dense latent lies in [-1, 1].
- **Dropout** follows every hidden layer of the half it is on (not the latent, not the output).
- **Penalties** follow the paper's eqs. 5 and 6: ``lambda / (2 m) * sum |w|`` (L1) or
  ``sum w**2`` (L2), with ``m`` the number of terms summed: kernel weights (biases excluded) of
  the regularised half for kernel penalties; activations (each layer's output after its
  activation, the output layer included, as Keras' ``activity_regularizer``) for activity ones.
  ``lambda`` defaults to Keras' 0.01.
- **"Softmax output" against a [0, 1] target.** A softmax needs an axis along which the values
  form a distribution; the only meaningful one is frequency within a frame (the spectral
  envelope). A softmax alone sums to one, so each frame is divided by its own maximum (its
  loudest band reads 1), which puts it on the target's [0, 1] scale. That discards the frame's
  level, which a decaying note needs, so the last transposed convolution has a second channel,
  averaged over frequency and squashed by a sigmoid, that scales the frame:
  ``y[f, t] = sigmoid(g[t]) * softmax_f(l)[f, t] / max_f softmax_f(l)[f, t]`` in [0, 1].
  ``output="sigmoid"`` is the plain element-wise sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ConfigError
from models.nets.base import LatentCode, LatentModel, ModelOutput
from models.nets.registry import register_model

Half = Literal["encoder", "decoder", "both"]
Penalty = Literal["none", "l1", "l2"]


@dataclass(frozen=True, kw_only=True)
class NatsiouConfig:
    """Configuration of :class:`NatsiouAE` (defaults: the paper's baseline)."""

    #: (n_mels, n_frames); both must be multiples of 4 ** len(channels)
    input_shape: tuple[int, ...] = (128, 512)
    #: filters of the paper's convolutions (doubled per stage when ``pooling="none"``)
    channels: tuple[int, ...] = (128, 256, 512)
    #: even, so that stride 2 with symmetric padding halves each axis exactly
    kernel_size: int = 4
    pooling: Literal["max", "avg", "none"] = "max"
    #: units of the dense bottleneck; 0 means no dense layer (the latent is the conv grid)
    dense: int = 8192
    dropout: float = 0.3
    dropout_on: Literal["none", "encoder", "decoder", "both"] = "none"
    kernel_reg: Penalty = "none"
    kernel_reg_on: Half = "both"
    kernel_reg_weight: float = 0.01
    activity_reg: Penalty = "none"
    activity_reg_on: Half = "both"
    activity_reg_weight: float = 0.01
    output: Literal["softmax", "sigmoid"] = "softmax"

    def __post_init__(self) -> None:
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"natsiou: channels must be positive integers, got {self.channels}")
        if self.kernel_size < 2 or self.kernel_size % 2:
            raise ConfigError(f"natsiou: kernel_size must be even and >= 2, got {self.kernel_size}")
        if self.dense < 0:
            raise ConfigError(f"natsiou: dense must be >= 0 (0 = no dense layer), got {self.dense}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"natsiou: dropout must be in [0, 1), got {self.dropout}")
        if self.kernel_reg_weight < 0 or self.activity_reg_weight < 0:
            raise ConfigError("natsiou: regulariser weights must be >= 0")
        if len(self.input_shape) != 2:
            raise ConfigError(
                f"natsiou: input_shape must be (n_mels, n_frames), got {tuple(self.input_shape)}"
            )
        m = total_downsampling(self)
        bad = [n for n in self.input_shape if n < m or n % m]
        if bad:
            raise ConfigError(
                f"natsiou: input_shape {tuple(self.input_shape)} does not fit the strides: "
                f"{len(self.channels)} stages of stride-2 convolution"
                f"{' and 2x2 pooling' if self.pooling != 'none' else ' pairs'} divide each axis by "
                f"{m}, so n_mels and n_frames must be multiples of {m}: pad or crop the log-mel "
                f"to e.g. {(fit_to_multiple(self.input_shape[0], m), fit_to_multiple(self.input_shape[1], m))}"
                f", or use fewer stages (a shorter 'channels')"
            )


def total_downsampling(config: NatsiouConfig) -> int:
    """Factor by which the encoder shrinks each axis: 4 per stage (stride 2, then pool or conv)."""
    return 4 ** len(config.channels)


def fit_to_multiple(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``: the size to pad an axis to."""
    return max(multiple, -(-int(n) // multiple) * multiple)


def conv_plan(config: NatsiouConfig) -> tuple[int, ...]:
    """Output channels of every encoder convolution, in order.

    With pooling this is ``channels``; without, each pooling layer becomes one more stride-2
    convolution with the channels of the convolution it follows.
    """
    if config.pooling == "none":
        return tuple(c for c in config.channels for _ in range(2))
    return tuple(config.channels)


@register_model
class NatsiouAE(LatentModel):
    """Natsiou's stacked convolutional autoencoder; see the module docstring for the choices.

    Input and output are log-mel spectrograms ``[shape=(batch, n_mels, n_frames)]`` in [0, 1],
    treated as one-channel images. The code is ``[shape=(batch, dense)]`` with a dense layer,
    ``[shape=(batch, channels[-1], n_mels / D, n_frames / D)]`` without (``D`` =
    :func:`total_downsampling`).
    """

    name: ClassVar[str] = "natsiou_conv_ae"
    config_class: ClassVar[type] = NatsiouConfig
    consumes: ClassVar[str] = "logmel"

    def __init__(self, config: NatsiouConfig) -> None:
        super().__init__(config)
        c = config
        k, p = c.kernel_size, (c.kernel_size - 2) // 2
        plan = conv_plan(c)
        ins = (1, *plan[:-1])
        self.enc_convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=2, padding=p) for i, o in zip(ins, plan))
        pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "none": nn.Identity()}
        self.pool = pool[c.pooling]
        self.unpool = nn.Identity() if c.pooling == "none" else nn.Upsample(scale_factor=2, mode="nearest")
        d = total_downsampling(c)
        self._grid = (plan[-1], c.input_shape[0] // d, c.input_shape[1] // d)
        flat = self._grid[0] * self._grid[1] * self._grid[2]
        self.enc_dense = nn.Linear(flat, c.dense) if c.dense else None
        self.dec_dense = nn.Linear(c.dense, flat) if c.dense else None
        # Mirror: transposed conv j undoes encoder conv n-1-j; the last one gives the output
        # channels (two for the softmax reading: shape logits and a level channel).
        n_out = 2 if c.output == "softmax" else 1
        outs = (*reversed(ins[1:]), n_out)
        self.dec_convs = nn.ModuleList(
            nn.ConvTranspose2d(i, o, k, stride=2, padding=p) for i, o in zip(reversed(plan), outs)
        )
        drop = {"encoder": ("encoder",), "decoder": ("decoder",), "both": ("encoder", "decoder")}
        on = drop.get(c.dropout_on, ())
        self.enc_dropout = nn.Dropout(c.dropout) if "encoder" in on else nn.Identity()
        self.dec_dropout = nn.Dropout(c.dropout) if "decoder" in on else nn.Identity()

    # --- shapes -----------------------------------------------------------------------
    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.dense,) if self.config.dense else self._grid

    # --- halves, with optional capture of activations for the activity penalty ---------
    def _encode(self, x: torch.Tensor, acts: list[torch.Tensor] | None) -> torch.Tensor:
        if x.shape[1:] != tuple(self.config.input_shape):
            raise ConfigError(
                f"natsiou: expected items of shape {tuple(self.config.input_shape)}, "
                f"got {tuple(x.shape[1:])}"
            )
        h = x.unsqueeze(1)
        last = len(self.enc_convs) - 1
        for i, conv in enumerate(self.enc_convs):
            h = torch.tanh(conv(h))
            if acts is not None:
                acts.append(h)
            # Pooling follows every paper convolution; in the no-pool plan the extra
            # convolutions stand in for it, so there is nothing to do.
            h = self.pool(h)
            if i < last or self.enc_dense is not None:
                h = self.enc_dropout(h)
        if self.enc_dense is not None:
            h = torch.tanh(self.enc_dense(h.flatten(1)))
            if acts is not None:
                acts.append(h)
        return h

    def _decode(self, z: torch.Tensor, acts: list[torch.Tensor] | None) -> torch.Tensor:
        h = z
        if self.dec_dense is not None:
            h = torch.tanh(self.dec_dense(h))
            if acts is not None:
                acts.append(h)
            h = self.dec_dropout(h).reshape(h.shape[0], *self._grid)
        last = len(self.dec_convs) - 1
        for j, conv in enumerate(self.dec_convs):
            h = conv(self.unpool(h))
            if j < last:
                h = self.dec_dropout(torch.tanh(h))
                if acts is not None:
                    acts.append(h)
        y = self._output(h)
        if acts is not None:
            acts.append(y)
        return y.squeeze(1)

    def _output(self, h: torch.Tensor) -> torch.Tensor:
        """Last layer's activation: ``[shape=(batch, 1, n_mels, n_frames)]`` in [0, 1]."""
        if self.config.output == "sigmoid":
            return torch.sigmoid(h)
        shape = F.softmax(h[:, :1], dim=2)  # over mel bands, per frame
        shape = shape / shape.amax(dim=2, keepdim=True)
        level = torch.sigmoid(h[:, 1:].mean(dim=2, keepdim=True))
        return shape * level

    # --- the interface ----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, n_mels, n_frames)] -> code [shape=(batch, *latent_shape)]."""
        return LatentCode(mean=self._encode(x, None))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, *latent_shape)] -> [shape=(batch, n_mels, n_frames)]."""
        return self._decode(z, None)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> ModelOutput:
        if self.config.activity_reg == "none":
            return super().forward(x, labels)
        enc: list[torch.Tensor] = []
        dec: list[torch.Tensor] = []
        z = self._encode(x, enc)
        recon = self._decode(z, dec)
        extras = {f"act/encoder/{i}": a for i, a in enumerate(enc)}
        extras.update({f"act/decoder/{i}": a for i, a in enumerate(dec)})
        return ModelOutput(recon=recon, code=LatentCode(mean=z), z=z, extras=extras)

    def loss(
        self, x: torch.Tensor, out: ModelOutput, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """MSE (the paper's loss) + kernel penalty + activity penalty (from ``out.extras``)."""
        recon = torch.mean((out.recon - x) ** 2)
        kernel = self.regularization()
        activity = self.activity_penalty(out)
        return {"recon": recon, "kernel_reg": kernel, "activity_reg": activity,
                "loss": recon + kernel + activity}

    def _halves(self, which: Half) -> tuple[str, ...]:
        return ("encoder", "decoder") if which == "both" else (which,)

    def regularization(self) -> torch.Tensor:
        """Kernel penalty, eq. 5 or 6: ``lambda / (2 m) * sum |w|`` or ``sum w**2``."""
        c = self.config
        if c.kernel_reg == "none" or c.kernel_reg_weight == 0:
            return torch.zeros((), device=self.enc_convs[0].weight.device)
        mods = {
            "encoder": [*self.enc_convs, self.enc_dense],
            "decoder": [self.dec_dense, *self.dec_convs],
        }
        weights = [m.weight for h in self._halves(c.kernel_reg_on) for m in mods[h] if m is not None]
        return _penalty(weights, c.kernel_reg, c.kernel_reg_weight)

    def activity_penalty(self, out: ModelOutput) -> torch.Tensor:
        """Activity penalty over the activations ``forward`` kept in ``out.extras``."""
        c = self.config
        if c.activity_reg == "none" or c.activity_reg_weight == 0:
            return torch.zeros((), device=out.recon.device)
        prefixes = tuple(f"act/{h}/" for h in self._halves(c.activity_reg_on))
        acts = [v for k, v in out.extras.items() if k.startswith(prefixes)]
        if not acts:
            raise ConfigError("natsiou: activity_reg is on but forward() kept no activations")
        return _penalty(acts, c.activity_reg, c.activity_reg_weight)


def _penalty(tensors: list[torch.Tensor], kind: Penalty, weight: float) -> torch.Tensor:
    """``weight / (2 m) * sum(|t|)`` (l1) or ``sum(t**2)`` (l2) over all ``m`` elements."""
    m = sum(t.numel() for t in tensors)
    power = 1 if kind == "l1" else 2
    total = torch.stack([t.abs().pow(power).sum() for t in tensors]).sum()
    return weight / (2 * m) * total
