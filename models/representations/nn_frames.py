"""Audio cut into hops of an nn~ model's ratio: the representation of RAVE-style models.

An nn~ model (``models.nntilde``) encodes ``ratio`` audio samples into one latent step, so a clip is a
sequence of hops, exactly as a frame model's clip is a sequence of spectrum frames; analysis is a
reshape and synthesis lays decoded hops end to end. It lives here, beside the other representations,
so that ``representation_from_dict`` knows ``nn_frames`` without importing the nn~ loader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arrays import fit_length
from models.errors import ConfigError
from models.representations.base import Analysis, Representation, register_representation
from models.representations.phase import PhaseConfig

MAX_FRAME = 1 << 16


@dataclass(frozen=True, kw_only=True)
class NNFramesConfig:
    """sample_rate : the nn~ model's rate; frame : its ratio (audio samples per latent step)."""

    sample_rate: int = 44100
    frame: int = 2048

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 384_000:
            raise ConfigError(f"sample_rate must be in 1000..384000 Hz, got {self.sample_rate}")
        if not 1 <= self.frame <= MAX_FRAME:
            raise ConfigError(f"frame must be in 1..{MAX_FRAME} samples, got {self.frame}")


@register_representation
class NNFrames(Representation):
    """Audio in hops of ``frame`` samples: features [shape=(n_frames, frame)], the tail zero-padded."""

    kind = "nn_frames"
    config_class = NNFramesConfig
    time_first = True

    def feature_shape(self, n_samples: int) -> tuple[int, int]:
        return (max(1, -(-int(n_samples) // self.config.frame)), self.config.frame)

    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> Analysis:
        x = np.asarray(y, dtype=np.float32)
        if x.ndim != 1:
            raise ConfigError(f"expected a mono clip (n_samples,), got shape {x.shape}")
        f = np.zeros(self.feature_shape(len(x)), np.float32)
        f.reshape(-1)[: len(x)] = x
        return Analysis(features=f, side={}, n_samples=len(x))

    def synthesize(self, features: np.ndarray, *, side: dict[str, np.ndarray] | None = None,
                   phase: str = "default", n_samples: int | None = None,
                   phase_config: PhaseConfig | None = None) -> np.ndarray:
        y = np.asarray(features, dtype=np.float32).reshape(-1)
        return fit_length(y, len(y) if n_samples is None else int(n_samples)).copy()
