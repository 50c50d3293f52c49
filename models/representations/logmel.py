"""Log-mel spectrogram in [0, 1] (Natsiou et al.), with its inverse.

Features have shape (n_mels, n_frames). The dB scale is relative to a reference (the clip's
loudest mel bin by default, kept in ``side["ref_db"]``): ``(dB - ref + top_db) / top_db``
clipped to [0, 1], librosa's ``power_to_db(ref=np.max, top_db=80)`` mapped linearly. Inversion:
features -> mel power -> linear magnitude (non-negative least squares through the mel filters,
or the clipped pseudo-inverse) -> waveform by a phase method.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import librosa
import numpy as np

from models.arrays import fit_length
from models.errors import ConfigError
from models.representations.base import Analysis, Representation, register_representation, validate_config_fields
from models.representations.phase import PhaseConfig, reconstruct
from models.representations.stft import StftConfigMixin, StftParams, stft

_AMIN = 1e-10


@dataclass(frozen=True, kw_only=True)
class LogMelConfig(StftConfigMixin):
    """Parameters of :class:`LogMel` (defaults: Natsiou et al. on NSynth).

    Parameters
    ----------
    sample_rate : int
        16 kHz (NSynth).
    n_fft, hop_length, win_length, window, center
        STFT geometry: FFT 1024, Blackman window of 690 samples (the paper); hop 256 (our
        choice: the paper gives none; 4 s at 16 kHz is then 251 frames, padded to 256).
    n_mels, fmin, fmax, htk, mel_norm
        Mel filterbank (librosa). Natsiou's Eq. 7 is the HTK mel formula, so ``htk=True``.
    power : float
        Exponent of the magnitudes summed in the mel bands (2: power).
    top_db : float
        dB range mapped onto [0, 1].
    ref : {"max", "fixed"}
        "max": 0 dB is each clip's loudest mel bin (kept in ``side["ref_db"]``; a decoded
        spectrogram without it is rendered as if that bin were a sinusoid of amplitude
        ``default_level``); "fixed": 0 dB is ``ref_db`` for every clip, so features keep
        absolute level and need no side information.
    ref_db : float
        The fixed reference, in dB of mel power.
    default_level : float
        See ``ref``.
    n_frames : int or None
        Pad (with silence) or crop (at the end) the frame axis to exactly this many frames, so
        that strided convolutions divide it evenly; None keeps the natural count.
    frame_multiple : int
        With ``n_frames=None``: pad the frame axis up to a multiple of this.
    mel_inverse : {"nnls", "pinv"}
        Mel -> linear magnitude: the clipped pseudo-inverse, or librosa's non-negative least
        squares (which starts from it; on our notes it reached the same error 20-100x slower).
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int | None = 690
    window: str = "blackman"
    center: bool = True
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = True
    mel_norm: Literal["slaney", "none"] = "slaney"
    power: float = 2.0
    top_db: float = 80.0
    ref: Literal["max", "fixed"] = "max"
    ref_db: float = 0.0
    default_level: float = 0.25
    n_frames: int | None = 256
    frame_multiple: int = 1
    mel_inverse: Literal["nnls", "pinv"] = "pinv"

    def __post_init__(self) -> None:
        validate_config_fields(self)
        self.stft_params()
        if self.n_mels < 1:
            raise ConfigError(f"n_mels must be >= 1, got {self.n_mels}")
        if self.power <= 0:
            raise ConfigError(f"power must be > 0, got {self.power}")
        if self.n_frames is not None and self.n_frames < 1:
            raise ConfigError(f"n_frames must be >= 1 or null, got {self.n_frames}")
        if self.frame_multiple < 1:
            raise ConfigError(f"frame_multiple must be >= 1, got {self.frame_multiple}")
        fmax = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {fmax}")


@register_representation
class LogMel(Representation):
    """Log-mel spectrogram scaled to [0, 1]; features [shape=(n_mels, n_frames)]."""

    kind = "logmel"
    config_class = LogMelConfig
    time_first = False
    side_keys = frozenset({"ref_db", "phase"})

    @property
    def stft_params(self) -> StftParams:
        return self.config.stft_params()

    @cached_property
    def mel_basis(self) -> np.ndarray:
        """Mel filterbank [shape=(n_mels, n_bins)], float64."""
        c = self.config
        return librosa.filters.mel(
            sr=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=c.htk,
            norm=None if c.mel_norm == "none" else "slaney", dtype=np.float64,
        )

    def frames_for(self, natural: int) -> int:
        """Frame count of the features for ``natural`` STFT frames (the pad/crop rule)."""
        c = self.config
        if c.n_frames is not None:
            return c.n_frames
        return -(-natural // c.frame_multiple) * c.frame_multiple

    def feature_shape(self, n_samples: int) -> tuple[int, int]:
        return (self.config.n_mels, self.frames_for(self.stft_params.n_frames(n_samples)))

    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> Analysis:
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ConfigError(f"expected a mono clip (n_samples,), got shape {y.shape}")
        c = self.config
        S = stft(y, params=self.stft_params)
        mel = self.mel_basis @ (np.abs(S).astype(np.float64) ** c.power)
        db = (20.0 / c.power) * np.log10(np.maximum(mel, _AMIN))
        ref_db = float(db.max()) if c.ref == "max" else c.ref_db
        features = np.clip((db - ref_db) / c.top_db + 1.0, 0.0, 1.0)
        features = fit_length(features, self.frames_for(features.shape[1]), axis=1)
        side = {"ref_db": np.array([ref_db], dtype=np.float32)}
        if keep_phase:
            side["phase"] = np.angle(S).astype(np.float32)
        return Analysis(features=features.astype(np.float32), side=side, n_samples=len(y))

    def mel_power(self, features: np.ndarray, ref_db: float | None = None) -> np.ndarray:
        """Mel band energies [shape=(n_mels, n_frames)] the features stand for (0 below the floor)."""
        c = self.config
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[0] != c.n_mels:
            raise ConfigError(f"logmel features must be ({c.n_mels}, frames), got {f.shape}")
        if ref_db is None:
            ref_db = c.ref_db if c.ref == "fixed" else self.default_ref_db
        db = (np.minimum(f, 1.0) - 1.0) * c.top_db + ref_db
        return np.where(f > 0, 10.0 ** (db * c.power / 20.0), 0.0)

    def magnitudes(self, features: np.ndarray, ref_db: float | None = None) -> np.ndarray:
        """Linear STFT magnitudes [shape=(n_bins, n_frames)] estimated from the features."""
        c = self.config
        mel = self.mel_power(features, ref_db)
        if c.mel_inverse == "pinv":
            power = np.maximum(self._mel_pinv @ mel, 0.0)
        else:
            power = librosa.util.nnls(self.mel_basis, mel)
        return np.power(np.maximum(power, 0.0), 1.0 / c.power)

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
        ref = side.get("ref_db")
        mag = self.magnitudes(features, None if ref is None else float(np.asarray(ref).reshape(-1)[0]))
        p = self.stft_params
        known = side.get("phase")
        if n_samples is not None:
            # the frames the clip spans; padding frames beyond it are dropped, cropped ones are silent
            mag = fit_length(mag, p.n_frames(n_samples), axis=1)
        if known is not None and np.shape(known) != mag.shape:
            if phase == "original":
                raise ConfigError(f"side['phase'] has shape {np.shape(known)}, magnitudes {mag.shape}")
            known = None
        return reconstruct(mag, params=p, method=phase, phase=known, length=n_samples, config=phase_config)

    def feature_levels(self) -> dict[str, Any]:
        return {"kind": "db", "db_per_unit": float(self.config.top_db)}

    @cached_property
    def _mel_pinv(self) -> np.ndarray:
        return np.linalg.pinv(self.mel_basis)

    @cached_property
    def default_ref_db(self) -> float:
        """``ref_db`` of a 440 Hz sinusoid of amplitude ``default_level`` (for decoded features)."""
        c = self.config
        t = np.arange(c.sample_rate) / c.sample_rate
        y = (c.default_level * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        mel = self.mel_basis @ (np.abs(stft(y, params=self.stft_params)).astype(np.float64) ** c.power)
        return float((20.0 / c.power) * np.log10(max(mel.max(), _AMIN)))
