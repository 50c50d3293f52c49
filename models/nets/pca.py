"""PCA on magnitude frames: Roche et al. 2019's linear baseline, behind the model interface.

Fitted in closed form (``trainable = False``: the trainer calls :meth:`PCA.fit` instead of SGD).
The fitted basis lives in buffers, so it saves and loads through safetensors like any weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch

from models.errors import ConfigError, LatentExplorerError
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import register_model


@dataclass(frozen=True, kw_only=True)
class PCAConfig:
    """``input_shape = (n_bins,)``; ``n_components`` is the latent size."""

    input_shape: tuple[int, ...] = (513,)
    n_components: int = 16
    #: divide each component by its standard deviation, so every latent unit has unit variance
    whiten: bool = False


class NotFittedError(LatentExplorerError, RuntimeError):
    """PCA used before ``fit`` (or loaded from weights that were never fitted)."""


@register_model
class PCA(LatentModel):
    """Principal component analysis of frames.

    Buffers (all float32, saved with the weights):
    ``mean [shape=(n_bins,)]``, ``components [shape=(n_components, n_bins)]`` (orthonormal rows,
    in order of decreasing variance), ``explained_variance [shape=(n_components,)]``,
    ``explained_variance_ratio [shape=(n_components,)]`` and ``n_samples_seen [shape=()]``
    (0 until fitted).
    """

    name: ClassVar[str] = "pca"
    config_class: ClassVar[type] = PCAConfig
    consumes: ClassVar[str] = "stft_frames"
    trainable: ClassVar[bool] = False

    def __init__(self, config: PCAConfig) -> None:
        super().__init__(config)
        if len(config.input_shape) != 1 or config.input_shape[0] < 1:
            raise ConfigError(f"pca: input_shape must be (n_bins,), got {config.input_shape}")
        d, k = config.input_shape[0], config.n_components
        if not 1 <= k <= d:
            raise ConfigError(f"pca: n_components must be in [1, {d}], got {k}")
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(k, d))
        self.register_buffer("explained_variance", torch.ones(k))
        self.register_buffer("explained_variance_ratio", torch.zeros(k))
        self.register_buffer("n_samples_seen", torch.zeros((), dtype=torch.int64))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.n_components,)

    @property
    def fitted(self) -> bool:
        return bool(self.n_samples_seen > 0)

    @torch.no_grad()
    def fit(self, x: torch.Tensor | Iterable[torch.Tensor]) -> "PCA":
        """Fit mean and principal axes to frames.

        Parameters
        ----------
        x : torch.Tensor [shape=(n, n_bins)], or an iterable of such chunks
            Training frames. Chunks let a caller stream a dataset larger than memory: we
            accumulate the mean and scatter matrix in float64 (``n_bins x n_bins``, small)
            rather than SVD the whole data matrix, then take its eigendecomposition. Float64
            keeps the squared condition number harmless for frames of up to a few thousand bins.

        Returns
        -------
        PCA
            ``self``, fitted.
        """
        d, k = self.config.input_shape[0], self.config.n_components
        chunks = [x] if isinstance(x, torch.Tensor) else x
        n = 0
        total = torch.zeros(d, dtype=torch.float64)
        scatter = torch.zeros(d, d, dtype=torch.float64)
        shift: torch.Tensor | None = None  # first chunk's mean: keeps the sums well conditioned
        for chunk in chunks:
            c = torch.as_tensor(chunk).detach().to("cpu", torch.float64)
            if c.dim() != 2 or c.shape[1] != d:
                raise ConfigError(f"pca.fit: expected frames of shape (n, {d}), got {tuple(c.shape)}")
            if c.shape[0] == 0:
                continue
            if shift is None:
                shift = c.mean(dim=0)
            c = c - shift
            n += c.shape[0]
            total += c.sum(dim=0)
            scatter += c.T @ c
        if shift is None or n < 2:
            raise ConfigError(f"pca.fit: need at least 2 frames, got {n}")
        if k > n:
            raise ConfigError(f"pca.fit: n_components={k} exceeds the {n} frames given")
        m = total / n
        cov = (scatter - n * torch.outer(m, m)) / (n - 1)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        evals = evals.flip(0).clamp_min(0.0)
        evecs = evecs.flip(1).T[:k]  # (k, d), decreasing variance
        # Deterministic signs (as sklearn's svd_flip): largest |entry| of each axis positive.
        idx = evecs.abs().argmax(dim=1)
        signs = torch.sign(evecs[torch.arange(k), idx])
        evecs = evecs * torch.where(signs == 0, 1.0, signs)[:, None]
        total_var = evals.sum()
        dev = self.mean.device
        self.mean.copy_((m + shift).to(dev, torch.float32))
        self.components.copy_(evecs.to(dev, torch.float32))
        self.explained_variance.copy_(evals[:k].to(dev, torch.float32))
        ratio = evals[:k] / total_var if total_var > 0 else torch.zeros(k, dtype=torch.float64)
        self.explained_variance_ratio.copy_(ratio.to(dev, torch.float32))
        self.n_samples_seen.fill_(n)
        return self

    def _scale(self) -> torch.Tensor:
        # Components with (near) zero variance are left unscaled rather than divided by zero.
        std = self.explained_variance.sqrt()
        return torch.where(std > 1e-12, std, torch.ones_like(std))

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError("pca: call fit() on training frames before encoding or decoding")

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x : torch.Tensor [shape=(batch, n_bins)] -> code [shape=(batch, n_components)]."""
        self._check_fitted()
        z = (x - self.mean) @ self.components.T
        return LatentCode(mean=z / self._scale() if self.config.whiten else z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z : torch.Tensor [shape=(batch, n_components)] -> frames [shape=(batch, n_bins)].

        Linear and unclipped: decoded frames may leave [0, 1] (Roche's error is measured unclipped).
        """
        self._check_fitted()
        if self.config.whiten:
            z = z * self._scale()
        return z @ self.components + self.mean
