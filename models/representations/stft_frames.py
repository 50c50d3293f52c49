"""Magnitude-STFT frames, each scaled to [0, 1] (Roche et al. 2019; Colonel et al. 2017).

Features have shape (n_frames, n_bins): a frame-wise model treats each row as one example. The
scale taken out of each frame is kept in ``side["frame_max"]`` so the clip can be resynthesised
at its level (Colonel's code does exactly this); the phase in ``side["phase"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np

from models.errors import ConfigError
from models.representations.base import Analysis, Representation, register_representation, validate_config_fields
from models.representations.phase import PhaseConfig, reconstruct
from models.representations.stft import StftConfigMixin, StftParams, stft

_TINY = 1e-10


@dataclass(frozen=True, kw_only=True)
class StftFramesConfig(StftConfigMixin):
    """Parameters of :class:`StftFrames` (defaults: Colonel et al. 2017).

    Parameters
    ----------
    sample_rate : int
    n_fft, hop_length, win_length, window, center
        STFT geometry (librosa's meaning). Colonel: 2048, 512 (librosa's default; the paper's
        "hop length 0" is not a usable value), full-length centred Hann.
    magnitude : {"linear", "log"}
        "linear": ``|X| / max``; "log": dB relative to that maximum mapped from
        [-top_db, 0] to [0, 1] (quieter bins are 0).
    top_db : float
        Range of the "log" scale, in dB.
    normalize : {"frame", "clip"}
        Divide each frame by its own maximum (Colonel) or every frame by the clip's maximum
        (keeps the envelope inside the features). ``side["frame_max"]`` holds the divisor of
        each frame either way.
    default_level : float
        When ``frame_max`` is not given (a decoded frame), a feature of 1 stands for a sinusoid
        of this amplitude.
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    magnitude: Literal["linear", "log"] = "linear"
    top_db: float = 80.0
    normalize: Literal["frame", "clip"] = "frame"
    default_level: float = 0.25

    def __post_init__(self) -> None:
        validate_config_fields(self)
        self.stft_params()


@register_representation
class StftFrames(Representation):
    """Frames of the magnitude STFT in [0, 1]; features [shape=(n_frames, n_fft // 2 + 1)]."""

    kind = "stft_frames"
    config_class = StftFramesConfig
    time_first = True
    side_keys = frozenset({"frame_max", "phase"})
    envelope_keys = frozenset({"frame_max"})

    @property
    def stft_params(self) -> StftParams:
        return self.config.stft_params()

    def feature_shape(self, n_samples: int) -> tuple[int, int]:
        p = self.stft_params
        return (p.n_frames(n_samples), p.n_bins)

    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> Analysis:
        y = _mono(y)
        S = stft(y, params=self.stft_params)  # (n_bins, n_frames)
        mag = np.abs(S).T.astype(np.float64)  # (n_frames, n_bins)
        if self.config.normalize == "frame":
            frame_max = mag.max(axis=1)
        else:
            frame_max = np.full(mag.shape[0], mag.max() if mag.size else 0.0)
        features = self._scale(mag, frame_max)
        side = {"frame_max": frame_max.astype(np.float32)}
        if keep_phase:
            side["phase"] = np.angle(S).T.astype(np.float32)
        return Analysis(features=features, side=side, n_samples=len(y))

    def magnitudes(self, features: np.ndarray, frame_max: np.ndarray | None = None) -> np.ndarray:
        """Linear STFT magnitudes [shape=(n_frames, n_bins)] the features stand for."""
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.stft_params.n_bins:
            raise ConfigError(f"stft_frames features must be (frames, {self.stft_params.n_bins}), got {f.shape}")
        if frame_max is None:
            frame_max = np.full(f.shape[0], self.default_frame_max())
        frame_max = np.asarray(frame_max, dtype=np.float64).reshape(-1)
        if frame_max.shape[0] != f.shape[0]:
            raise ConfigError(f"{f.shape[0]} frames but {frame_max.shape[0]} frame maxima")
        f = np.clip(f, 0.0, None)
        if self.config.magnitude == "log":
            rel = np.where(f > 0, 10.0 ** ((np.minimum(f, 1.0) - 1.0) * self.config.top_db / 20.0), 0.0)
        else:
            rel = f
        return rel * frame_max[:, None]

    def synthesize(
        self,
        features: np.ndarray,
        *,
        side: dict[str, np.ndarray] | None = None,
        phase: str = "default",
        n_samples: int | None = None,
        phase_config: PhaseConfig | None = None,
    ) -> np.ndarray:
        side = side or {}
        mag = self.magnitudes(features, side.get("frame_max")).T  # (n_bins, n_frames)
        known = side.get("phase")
        if known is not None:
            known = np.asarray(known).T
            if known.shape != mag.shape:
                # decoded features of another length: the known phase does not apply
                known = None if phase == "default" else _mismatch(known.shape, mag.shape)
        return reconstruct(
            mag, params=self.stft_params, method=phase, phase=known, length=n_samples, config=phase_config
        )

    def feature_levels(self) -> dict[str, Any]:
        if self.config.magnitude == "log":
            return {"kind": "db", "db_per_unit": float(self.config.top_db)}
        return {"kind": "amplitude"}

    def default_frame_max(self) -> float:
        """Peak STFT magnitude of a sinusoid of amplitude ``default_level`` (sum(window)/2)."""
        return float(self.config.default_level * self.stft_params.window_array().sum() / 2.0)

    def _scale(self, mag: np.ndarray, frame_max: np.ndarray) -> np.ndarray:
        safe = np.where(frame_max > _TINY, frame_max, 1.0)[:, None]
        rel = np.where(frame_max[:, None] > _TINY, mag / safe, 0.0)
        if self.config.magnitude == "log":
            db = 20.0 * np.log10(np.maximum(rel, 1e-12))
            rel = np.clip(1.0 + db / self.config.top_db, 0.0, 1.0)
        return rel.astype(np.float32)


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ConfigError(f"expected a mono clip (n_samples,), got shape {y.shape}")
    return y


def _mismatch(a: tuple, b: tuple) -> NoReturn:
    raise ConfigError(f"side['phase'] covers {a[1]} frames, the features {b[1]}")
