"""One STFT convention shared by every spectral representation and every phase method.

librosa's convention is the reference: frames centred on ``n * hop_length`` (zero padding of
``n_fft // 2`` at both ends when ``center``), the FFT taken relative to the frame start, the
window (``win_length`` long) centred in the ``n_fft`` frame. The torch path used by Griffin-Lim
reproduces it exactly (same window array, constant padding), so a phase found in torch is a
phase for librosa's ``istft`` and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np

from models.errors import ConfigError

#: Gaussian "time-frequency ratio" of common windows, as ``lambda = c * win_length**2`` for a
#: Gaussian ``exp(-pi t^2 / lambda)`` of the same spread (Prusa et al. 2017, ltfat's table).
_WINDOW_GAMMA = {"hann": 0.25645, "hanning": 0.25645, "hamming": 0.29794, "blackman": 0.17954}


@dataclass(frozen=True, kw_only=True)
class StftParams:
    """STFT geometry.

    Parameters
    ----------
    n_fft : int
        FFT size; ``n_fft // 2 + 1`` frequency bins.
    hop_length : int
        Samples between frame centres.
    win_length : int or None
        Window length (centred in the ``n_fft`` frame, zero elsewhere); ``None`` means ``n_fft``.
    window : str
        Any window name ``scipy.signal.get_window`` knows ("hann", "blackman", ...).
    center : bool
        Frames centred on ``n * hop_length`` (librosa's default).
    """

    n_fft: int
    hop_length: int
    win_length: int | None = None
    window: str = "hann"
    center: bool = True

    def __post_init__(self) -> None:
        if self.n_fft < 4:
            raise ConfigError(f"n_fft must be >= 4, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft:
            raise ConfigError(f"hop_length must be in 1..n_fft, got {self.hop_length}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ConfigError(f"win_length must be in 1..n_fft, got {self.win_length}")
        if self.hop_length > self.win:
            raise ConfigError(
                f"hop_length {self.hop_length} > win_length {self.win}: frames would not overlap "
                "and the STFT could not be inverted"
            )
        try:
            _window_array(self.window, self.win, self.n_fft)
        except ValueError as exc:
            raise ConfigError(f"unknown window {self.window!r}: {exc}") from exc

    @property
    def win(self) -> int:
        return self.n_fft if self.win_length is None else self.win_length

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        """Frames librosa's STFT gives for ``n_samples`` samples."""
        if self.center:
            return 1 + n_samples // self.hop_length
        return 1 + max(n_samples - self.n_fft, 0) // self.hop_length

    def natural_length(self, n_frames: int) -> int:
        """Samples an inverse STFT of ``n_frames`` frames yields when no length is asked for."""
        if self.center:
            return self.hop_length * (n_frames - 1)
        return self.n_fft + self.hop_length * (n_frames - 1)

    def window_array(self) -> np.ndarray:
        """The analysis window zero-padded to ``n_fft`` [shape=(n_fft,)], float64."""
        return _window_array(self.window, self.win, self.n_fft).copy()

    def gamma(self) -> float:
        """Gaussian ``lambda`` (samples^2) matching this window, for phase-gradient integration.

        Tabulated windows use Prusa et al.'s constants; any other window gets the lambda of the
        Gaussian with the same second moment of ``w^2`` (``lambda = 4 pi var``), which reproduces
        the table within a few percent for the tabulated ones.
        """
        c = _WINDOW_GAMMA.get(self.window.lower())
        if c is not None:
            return c * self.win**2
        w2 = self.window_array() ** 2
        t = np.arange(self.n_fft, dtype=np.float64)
        mean = float(np.sum(t * w2) / np.sum(w2))
        var = float(np.sum((t - mean) ** 2 * w2) / np.sum(w2))
        return 4.0 * np.pi * var


@lru_cache(maxsize=32)
def _window_array(window: str, win_length: int, n_fft: int) -> np.ndarray:
    w = librosa.filters.get_window(window, win_length, fftbins=True).astype(np.float64)
    w = librosa.util.pad_center(w, size=n_fft)
    w.setflags(write=False)
    return w


def stft(y: np.ndarray, *, params: StftParams) -> np.ndarray:
    """Complex STFT in librosa's convention.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]

    Returns
    -------
    np.ndarray [shape=(..., n_bins, n_frames)], complex64 for float32 input
    """
    return librosa.stft(
        y,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.n_fft,  # the window array is already padded to n_fft
        window=params.window_array(),
        center=params.center,
        pad_mode="constant",
    )


def istft(S: np.ndarray, *, params: StftParams, length: int | None = None) -> np.ndarray:
    """Least-squares inverse STFT [shape=(..., length)] of ``S`` [shape=(..., n_bins, n_frames)]."""
    return librosa.istft(
        S,
        hop_length=params.hop_length,
        win_length=params.n_fft,
        n_fft=params.n_fft,
        window=params.window_array(),
        center=params.center,
        length=length,
    )


def spectral_convergence(mag: np.ndarray, y: np.ndarray, *, params: StftParams) -> float:
    """How far the STFT magnitude of ``y`` is from the target ``mag``.

    ``||mag - |STFT(y)| ||_F / ||mag||_F`` over the common frames: 0 is a perfect match, 1 is as
    far as silence. This is the figure phase retrieval papers report (Perraudin et al. 2013,
    Prusa et al. 2017); the metrics package has the general two-spectrogram form.

    Parameters
    ----------
    mag : np.ndarray [shape=(..., n_bins, n_frames)]
    y : np.ndarray [shape=(..., n_samples)]
    """
    est = np.abs(stft(np.asarray(y, dtype=np.float32), params=params))
    t = min(est.shape[-1], mag.shape[-1])
    ref = np.asarray(mag, dtype=np.float64)[..., :t]
    den = float(np.linalg.norm(ref))
    if den == 0.0:
        return 0.0 if not np.any(est[..., :t]) else float("inf")
    return float(np.linalg.norm(ref - est[..., :t]) / den)


class StftConfigMixin:
    """``stft_params()`` for configs that carry n_fft, hop_length, win_length, window, center."""

    def stft_params(self) -> StftParams:
        return StftParams(
            n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=self.window, center=self.center,
        )
