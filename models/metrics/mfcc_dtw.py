"""MFCC-DTW distance and deviation (Lionello & Purwins, section 5.1).

``dev_ij = (dtw(x_ij, centre_i) - mean_k dtw(x_ij, x_ik)) / std_k dtw(x_ij, x_ik)``, k over the
other members of class i, where ``centre_i`` is the decoded mean latent code of the class and
``dtw`` the DTW distance (``models.metrics.dtw``) between MFCC sequences. Negative: the decoded
centre is closer to the sound than the sound's own class mates are, on average.

MFCC settings: the paper gives none. Defaults (``MFCCConfig``): 13 coefficients including c0, 40
mel bands from 0 Hz to Nyquist, a Hann window of ~32 ms rounded up to a power of two and a hop of a
quarter window, i.e. n_fft 256 / hop 64 at 8 kHz (the Free Spoken Digit rate Lionello used), 512 /
128 at 16 kHz. 13 MFCCs over ~30 ms windows is the standard speech front end; 40 bands (not
librosa's 128) because a 256-point FFT has only 129 bins and 128 bands would leave empty filters.
c0 is kept: it is the energy contour, which tells where in the clip the word is. A deviation
compares distances computed with one config, so set it once per dataset.

Silence: a silent clip's MFCCs are one constant frame (the dB floor), equally far from every
class mate, so the spread in the deviation's denominator is tiny and the number explodes (-4.9e4
was seen). The deviation is undefined there; :func:`is_silent` says when, and callers show
"n/a (silent)" instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import librosa
import numpy as np

from models.errors import ConfigError
from models.metrics._arrays import as_float_array
from models.metrics.dtw import dtw_distance, dtw_distances

__all__ = [
    "SILENCE_DBFS",
    "is_silent",
    "MFCCConfig",
    "mfcc",
    "mfcc_dtw_distance",
    "mfcc_dtw_deviation",
    "ClassDTW",
]


#: a sound whose peak stays below this level (dB full scale) counts as silent: -60 dBFS is
#: 0.001 of full scale, below a 16-bit file's dither noise once normalised and far below any note
SILENCE_DBFS = -60.0


def is_silent(y, *, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """Whether a waveform is too quiet for MFCC-based measures to mean anything.

    Parameters
    ----------
    y : array-like [shape=(n_samples,)]
    threshold_dbfs : float
        Peak level (dB relative to full scale 1.0) at or below which the sound is silent.

    Returns
    -------
    bool
        True for an empty, all-zero, all-NaN or quieter-than-threshold sound.
    """
    a = np.asarray(y, dtype=np.float64).reshape(-1)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return True
    peak = float(np.max(np.abs(a)))
    return peak <= 10.0 ** (threshold_dbfs / 20.0)


@dataclass(frozen=True, kw_only=True)
class MFCCConfig:
    """How MFCC sequences for MFCC-DTW are computed (see the module docstring for why)."""

    n_mfcc: int = 13
    n_mels: int = 40
    window_seconds: float = 0.032  # rounded up to a power of two in samples
    hop_fraction: float = 0.25
    n_fft: int | None = None  # overrides window_seconds
    hop_length: int | None = None  # overrides hop_fraction
    fmin: float = 0.0
    fmax: float | None = None  # None: sr / 2
    drop_c0: bool = False

    def stft_params(self, sr: float) -> tuple[int, int]:
        """``(n_fft, hop_length)`` at sample rate ``sr``: 256, 64 at 8 kHz with the defaults."""
        n_fft = self.n_fft or 2 ** math.ceil(math.log2(max(2.0, self.window_seconds * sr)))
        hop = self.hop_length or max(1, int(round(n_fft * self.hop_fraction)))
        return int(n_fft), int(hop)


def mfcc(y, *, sr: float, config: MFCCConfig | None = None) -> np.ndarray:
    """MFCC sequence of a sound (or a batch of equal-length sounds).

    Parameters
    ----------
    y : array-like [shape=(..., n_samples)]
    sr : float
    config : MFCCConfig or None
        None: the defaults.

    Returns
    -------
    np.ndarray [shape=(..., n_mfcc, n_frames)]
        float64, librosa's layout (n_mfcc - 1 rows with ``drop_c0``).
    """
    cfg = config or MFCCConfig()
    a = as_float_array(y, name="y")
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ConfigError(f"y must hold samples, got shape {a.shape}")
    n_fft, hop = cfg.stft_params(sr)
    S = librosa.feature.melspectrogram(
        y=a, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )
    # What librosa.feature.mfcc(y=...) does, except that power_to_db's 80 dB floor is set per
    # sound: on a batch librosa takes the maximum over the whole batch, so one loud item would
    # change the MFCCs of the others.
    flat = S.reshape(-1, *S.shape[-2:])
    db = np.stack([librosa.power_to_db(s) for s in flat]).reshape(S.shape)
    M = librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc)
    return M[..., 1:, :] if cfg.drop_c0 else M


def mfcc_dtw_distance(
    x, y, *, sr: float, config: MFCCConfig | None = None, normalize: bool = False
) -> float | np.ndarray:
    """DTW distance between the MFCC sequences of two sounds, or of two batches item by item.

    Parameters
    ----------
    x, y : array-like [shape=(..., n_samples)]
        Waveforms at ``sr``. The lengths of ``x`` and ``y`` may differ; leading (batch) axes must
        agree, and item ``i`` of ``x`` is compared with item ``i`` of ``y`` (an original with its
        reconstruction). For all pairs of a set, use ``mfcc`` then ``dtw_distances``.

    Returns
    -------
    float or np.ndarray [shape=batch_shape]
    """
    a, b = as_float_array(x, name="x"), as_float_array(y, name="y")
    if a.shape[:-1] != b.shape[:-1]:
        raise ConfigError(f"x and y need the same batch shape, got {a.shape[:-1]} and {b.shape[:-1]}")
    mx, my = mfcc(a, sr=sr, config=config), mfcc(b, sr=sr, config=config)
    if a.ndim <= 1:
        return dtw_distance(mx, my, normalize=normalize)
    batch = a.shape[:-1]
    pairs = zip(mx.reshape(-1, *mx.shape[-2:]), my.reshape(-1, *my.shape[-2:]))
    return np.array([dtw_distance(p, q, normalize=normalize) for p, q in pairs]).reshape(batch)


def _deviation(d_centre, d_others: np.ndarray, ddof: int) -> np.ndarray:
    """(d_centre - mean) / std along the last axis; +-inf or NaN where the std is 0."""
    mu = d_others.mean(axis=-1)
    sd = d_others.std(axis=-1, ddof=ddof)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(d_centre) - mu) / sd


def mfcc_dtw_deviation(
    item, centre, others: Sequence, *, ddof: int = 0, normalize: bool = False
) -> float:
    """MFCC-DTW deviation of one sound from its decoded class centre (Lionello, Eq. 2).

    Parameters
    ----------
    item : array-like [shape=(n_mfcc, n_frames)]
        MFCCs of the sound x_ij.
    centre : array-like [shape=(n_mfcc, n_frames_c)]
        MFCCs of the decoded class centre, theta(mu(Z^i)).
    others : sequence of array-like [shape=(n_mfcc, n_frames_k)]
        MFCCs of the other members of the class (x_ij itself excluded), at least two.
    ddof : int
        Degrees of freedom of the standard deviation (0: numpy's default, the population std).
    normalize : bool
        Length-normalised DTW (see ``dtw_distance``).

    Returns
    -------
    float
        Negative when the centre is closer than the class mates on average. ``inf`` (or NaN for
        0/0) when all class mates are at the same distance.
    """
    if len(others) < 2:
        raise ConfigError(f"a deviation needs at least two other class members, got {len(others)}")
    d = dtw_distances([item], [centre, *others], normalize=normalize)[0]
    return float(_deviation(d[0], d[1:], ddof))


class ClassDTW:
    """One class's MFCC sequences with their DTW matrix computed once, for repeated deviations.

    The explorer keeps one per class: after the first call, the deviation of a member against a new
    decoded centre costs a single DTW.

    Parameters
    ----------
    mfccs : sequence of array-like [shape=(n_mfcc, n_frames_k)]
        The class members' MFCCs, in the class's order.
    normalize : bool
        Length-normalised DTW.
    ddof : int
        As in ``mfcc_dtw_deviation``.
    """

    def __init__(self, mfccs: Sequence, *, normalize: bool = False, ddof: int = 0) -> None:
        if len(mfccs) < 3:
            raise ConfigError(
                f"a class needs at least three members for deviations, got {len(mfccs)}"
            )
        self.mfccs = [as_float_array(m, name="mfcc") for m in mfccs]
        self.normalize = normalize
        self.ddof = ddof
        self._pairwise: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.mfccs)

    @property
    def pairwise(self) -> np.ndarray:
        """DTW distances between members, np.ndarray [shape=(n, n)], computed on first use."""
        if self._pairwise is None:
            self._pairwise = dtw_distances(self.mfccs, normalize=self.normalize)
        return self._pairwise

    def to_centre(self, centre) -> np.ndarray:
        """DTW distance of every member to ``centre``, np.ndarray [shape=(n,)]."""
        return dtw_distances([centre], self.mfccs, normalize=self.normalize)[0]

    def deviations(self, centre) -> np.ndarray:
        """Deviation of every member from ``centre``, np.ndarray [shape=(n,)]."""
        P = self.pairwise
        n = len(self)
        others = P[~np.eye(n, dtype=bool)].reshape(n, n - 1)
        return _deviation(self.to_centre(centre), others, self.ddof)

    def deviation(self, j: int, centre) -> float:
        """Deviation of member ``j`` from ``centre`` (uses the cached matrix row)."""
        row = np.delete(self.pairwise[j], j)
        d = dtw_distance(self.mfccs[j], centre, normalize=self.normalize)
        return float(_deviation(d, row, self.ddof))

    def deviation_of(self, item, centre) -> float:
        """Deviation of a sound outside the class (all members are its 'others')."""
        d = dtw_distances([item], [centre, *self.mfccs], normalize=self.normalize)[0]
        return float(_deviation(d[0], d[1:], self.ddof))
