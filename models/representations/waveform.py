"""Raw waveform clips of fixed length (Lionello & Purwins).

Preprocessing follows the authors' code: remove the mean, divide by the peak, drop leading
blocks of ``silence_block`` samples whose mean square is below ``silence_threshold``, then pad
with zeros or cut at the end to ``n_samples``. The inverse is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arrays import fit_length
from models.errors import ConfigError
from models.representations.base import Analysis, Representation, register_representation
from models.representations.phase import PhaseConfig


@dataclass(frozen=True, kw_only=True)
class WaveformConfig:
    """Parameters of :class:`Waveform` (defaults: Lionello's spoken digits).

    Parameters
    ----------
    sample_rate : int
    n_samples : int
        Fixed clip length of the features.
    remove_mean, peak_normalize : bool
        Subtract the mean; scale so that max |x| is ``peak``.
    peak : float
    trim_leading_silence : bool
    silence_block : int
        Block length of the silence test, in samples.
    silence_threshold : float
        Mean square (of the normalised clip) under which a leading block is silence.
    """

    sample_rate: int = 8000
    n_samples: int = 4096
    remove_mean: bool = True
    peak_normalize: bool = True
    peak: float = 1.0
    trim_leading_silence: bool = True
    silence_block: int = 128
    silence_threshold: float = 5e-5

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_samples <= 0 or self.silence_block <= 0:
            raise ConfigError("sample_rate, n_samples and silence_block must be > 0")
        if not 0 < self.peak <= 1.0:
            raise ConfigError(f"peak must be in (0, 1], got {self.peak}")
        if self.silence_threshold < 0:
            raise ConfigError(f"silence_threshold must be >= 0, got {self.silence_threshold}")


def trim_leading_silence(y: np.ndarray, *, block: int = 128, threshold: float = 5e-5) -> np.ndarray:
    """``y`` without its leading blocks of mean square below ``threshold``.

    A clip silent throughout is returned unchanged (there is nothing better to keep).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    """
    n_blocks = len(y) // block
    if n_blocks == 0:
        return y
    energy = np.mean(y[: n_blocks * block].astype(np.float64).reshape(n_blocks, block) ** 2, axis=1)
    loud = np.flatnonzero(energy >= threshold)
    if loud.size == 0:
        # The tail shorter than a block might still hold sound; otherwise keep the clip whole.
        return y
    return y[loud[0] * block :]


@register_representation
class Waveform(Representation):
    """Fixed-length, normalised raw audio; features [shape=(n_samples,)]."""

    kind = "waveform"
    config_class = WaveformConfig
    time_first = False

    def feature_shape(self, n_samples: int) -> tuple[int]:
        return (self.config.n_samples,)

    def preprocess(self, y: np.ndarray) -> np.ndarray:
        """Mean removal, peak normalisation, leading-silence trim, pad/cut [shape=(n_samples,)]."""
        c = self.config
        x = np.asarray(y, dtype=np.float64)
        if x.ndim != 1:
            raise ConfigError(f"expected a mono clip (n_samples,), got shape {x.shape}")
        if c.remove_mean and x.size:
            x = x - x.mean()
        if c.peak_normalize and x.size:
            peak = np.max(np.abs(x))
            if peak > 0:
                x = x * (c.peak / peak)
        if c.trim_leading_silence:
            x = trim_leading_silence(x, block=c.silence_block, threshold=c.silence_threshold)
        return fit_length(x, c.n_samples).astype(np.float32)

    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> Analysis:
        return Analysis(features=self.preprocess(y), side={}, n_samples=self.config.n_samples)

    def synthesize(
        self,
        features: np.ndarray,
        *,
        side: dict[str, np.ndarray] | None = None,
        phase: str = "default",
        n_samples: int | None = None,
        phase_config: PhaseConfig | None = None,
    ) -> np.ndarray:
        y = np.asarray(features, dtype=np.float32).reshape(-1)
        return fit_length(y, len(y) if n_samples is None else n_samples).copy()
