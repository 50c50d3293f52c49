"""Layers of Lionello & Purwins' waveform VAEs: the dilation block, padded 1-D convolutions,
the bottleneck classifier.

Hand-written because torch has no "same"-padded strided or causal dilated 1-D convolution that
matches the paper's Keras layers length for length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.nets.dense import make_activation

Gate = Literal["tanh_sigmoid", "product"]


def dilation_schedule(n_layers: int, cycle: int) -> list[int]:
    """Dilations of one sub-layer stack: ``2 ** ((i - 1) mod cycle)`` for ``i = 1 .. n_layers``."""
    return [2 ** ((i - 1) % cycle) for i in range(1, n_layers + 1)]


def receptive_field(dilations: Sequence[int], kernel_size: int = 2) -> int:
    """Samples one output of a stack of dilated convolutions sees.

    For the paper's stacks this is its formula ``N / m * (2 ** m - 1) + 1``: 5116 for m = 10 and
    311 for m = 5 (the paper prints 5119 and 319).
    """
    return sum(d * (kernel_size - 1) for d in dilations) + 1


class SameConv1d(nn.Module):
    """Stride-1 convolution padded so that the output has the input's length (Keras "same").

    Stride-1 "transposed" layers of the paper's decoders are also built from this: a stride-1
    transposed convolution is a convolution with a flipped kernel, the same function class.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


def down_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv1d:
    """Stride-2 convolution that halves an even length exactly (Keras "same", stride 2)."""
    return nn.Conv1d(in_channels, out_channels, kernel_size, stride=2, padding=(kernel_size - 1) // 2)


def up_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.ConvTranspose1d:
    """Stride-2 transposed convolution that doubles a length exactly (mirror of :func:`down_conv`)."""
    pad = (kernel_size - 1) // 2
    return nn.ConvTranspose1d(
        in_channels, out_channels, kernel_size, stride=2, padding=pad,
        output_padding=2 * pad + 2 - kernel_size,
    )


class CausalDilatedConv1d(nn.Module):
    """Kernel-2 (by default) dilated convolution, left-padded as in WaveNet, length kept."""

    def __init__(self, channels: int, dilation: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.left = dilation * (kernel_size - 1)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    @property
    def dilation(self) -> int:
        return int(self.conv.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class DilationBlock(nn.Module):
    """The DC-VAE's dilation block (Lionello & Purwins, section 3).

    ``n_layers`` residual layers; layer ``i`` has two parallel dilated sub-layers with dilations
    ``2 ** ((i-1) mod cycles[0])`` and ``2 ** ((i-1) mod cycles[1])``. Their product is added to
    the layer's input (``input_i = input_{i-1} + s1 * s2``) and is the layer's skip output; the
    block returns the mean of the skip outputs.

    The paper calls the block WaveNet-like but does not name the sub-layers' activations; the
    default ``gate="tanh_sigmoid"`` is WaveNet's gate ``tanh(s1) * sigmoid(s2)``, which also keeps
    each product in (-1, 1) so that 50 residual additions stay bounded. ``gate="product"`` is the
    bare product of linear sub-layers. When ``in_channels`` differs from ``channels`` (16 -> 32
    in the encoder), a 1x1 convolution lifts the input to the residual width, as layer 18 of
    Table 1 does in the decoder.

    x : torch.Tensor [shape=(batch, in_channels, n)] -> [shape=(batch, channels, n)]
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        n_layers: int,
        *,
        cycles: tuple[int, int] = (10, 5),
        kernel_size: int = 2,
        gate: Gate = "tanh_sigmoid",
    ) -> None:
        super().__init__()
        self.gate = gate
        self.lift = nn.Identity() if in_channels == channels else nn.Conv1d(in_channels, channels, 1)
        self.sub1 = nn.ModuleList(
            CausalDilatedConv1d(channels, d, kernel_size) for d in dilation_schedule(n_layers, cycles[0])
        )
        self.sub2 = nn.ModuleList(
            CausalDilatedConv1d(channels, d, kernel_size) for d in dilation_schedule(n_layers, cycles[1])
        )

    @property
    def dilations(self) -> list[tuple[int, int]]:
        """``(dilation of sub-layer 1, dilation of sub-layer 2)`` for each residual layer."""
        return [(a.dilation, b.dilation) for a, b in zip(self.sub1, self.sub2)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lift(x)
        skip = torch.zeros_like(h)
        for s1, s2 in zip(self.sub1, self.sub2):
            a, b = s1(h), s2(h)
            prod = torch.tanh(a) * torch.sigmoid(b) if self.gate == "tanh_sigmoid" else a * b
            skip = skip + prod
            h = h + prod
        return skip / len(self.sub1)


def classifier(latent_dim: int, hidden: Sequence[int], n_classes: int, activation: str) -> nn.Sequential:
    """Bottleneck classifier: ``latent_dim -> hidden... -> n_classes`` logits.

    Every ``Linear`` is followed by ``activation`` except the last (logits for cross-entropy).
    """
    widths = (latent_dim, *hidden, n_classes)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)
