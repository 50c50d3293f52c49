"""Harmonic precision, recall and F1 (Natsiou et al., section V).

Per frame, the spectral peaks of the original and of the reconstruction are picked; peaks more
than ``threshold_db`` below the frame's highest peak are dropped as noise; a reconstructed peak
counts as identical to an original one when its frequency lies within ``tolerance`` (relative, of
the original's frequency) of it, each peak matched at most once. Then, per frame,

    precision = matched / reconstructed peaks,   recall = matched / original peaks,
    F1 = 2 P R / (P + R),

and each is averaged over the frames with energy (see ``harmonic_prf``). Averaging F1 per frame,
rather than taking the F1 of the averaged P and R, fits the paper's Table I, where F1 sits below the
harmonic mean of the P and R columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import librosa
import numba
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import find_peaks

from models.errors import ConfigError
from models.metrics._arrays import as_float_array, pair

__all__ = [
    "HarmonicScores",
    "harmonic_prf",
    "harmonic_prf_audio",
    "frame_peaks",
    "match_peaks",
    "mel_band_frequencies",
]

Kind = Literal["amplitude", "power", "db"]


@dataclass(frozen=True)
class HarmonicScores:
    """Harmonic precision, recall and F1, averaged over frames with energy.

    Floats for one item, arrays of the batch's shape for a batch. NaN where no frame of the
    original has energy (nothing to score).
    """

    precision: float | np.ndarray
    recall: float | np.ndarray
    f1: float | np.ndarray
    n_frames: int | np.ndarray  # frames that entered the average


def mel_band_frequencies(
    n_mels: int, *, fmin: float = 0.0, fmax: float, htk: bool = False
) -> np.ndarray:
    """Centre frequencies of librosa's mel filters, to give ``harmonic_prf`` for a log-mel input.

    ``librosa.mel_frequencies(n_mels, ...)`` spans fmin..fmax edge to edge; the filters' centres
    are the inner points of ``n_mels + 2`` such frequencies.

    Returns
    -------
    np.ndarray [shape=(n_mels,)]
        Hz.
    """
    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)[1:-1]


def _to_db(values: np.ndarray, kind: Kind, db_per_unit: float, amin: float) -> np.ndarray:
    if kind == "amplitude":
        return 20.0 * np.log10(np.maximum(amin, values))
    if kind == "power":
        return 10.0 * np.log10(np.maximum(amin, values))
    if kind == "db":
        return values * db_per_unit
    raise ConfigError(f"kind must be 'amplitude', 'power' or 'db', got {kind!r}")


def frame_peaks(
    frame_db: np.ndarray,
    freqs: np.ndarray,
    *,
    threshold_db: float = 30.0,
    peak_kwargs: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of one spectrum frame, without those more than ``threshold_db`` below its highest.

    Peaks are ``scipy.signal.find_peaks`` local maxima of the dB values (a plateau counts once,
    at its middle; the first and last bins are never peaks).

    Parameters
    ----------
    frame_db : np.ndarray [shape=(n_freq,)]
        Levels in dB.
    freqs : np.ndarray [shape=(n_freq,)]
        Frequency of each bin in Hz.
    threshold_db : float
        Peaks below (highest peak - threshold_db) are dropped; Natsiou's 30 dB.
    peak_kwargs : dict or None
        Extra ``find_peaks`` arguments (e.g. ``prominence`` in dB, ``distance`` in bins).

    Returns
    -------
    freqs : np.ndarray [shape=(n_peaks,)]
        Peak frequencies, ascending.
    levels : np.ndarray [shape=(n_peaks,)]
        Peak levels in dB.
    """
    idx, _ = find_peaks(frame_db, **(peak_kwargs or {}))
    if idx.size == 0:
        return np.empty(0), np.empty(0)
    levels = frame_db[idx]
    keep = levels >= levels.max() - threshold_db
    return freqs[idx[keep]], levels[keep]


def match_peaks(f_true: np.ndarray, f_pred: np.ndarray, *, tolerance: float = 0.03) -> int:
    """Number of one-to-one matches between original and reconstructed peak frequencies.

    A pair may match when ``|f_pred - f_true| <= tolerance * f_true``. Among all one-to-one
    matchings, the count is the largest possible, and among those the pairs with the smallest total
    relative deviation are chosen (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``,
    with disallowed pairs priced above any sum of allowed ones).

    Parameters
    ----------
    f_true : np.ndarray [shape=(n_true,)]
        Original peak frequencies in Hz.
    f_pred : np.ndarray [shape=(n_pred,)]
        Reconstructed peak frequencies in Hz.
    tolerance : float
        Relative frequency tolerance; Natsiou's 3 % is 0.03.

    Returns
    -------
    int
    """
    if f_true.size == 0 or f_pred.size == 0:
        return 0
    dev = np.abs(f_pred[None, :] - f_true[:, None])
    allowed = dev <= tolerance * f_true[:, None]
    rows = allowed.any(axis=1)
    cols = allowed.any(axis=0)
    if not rows.any():
        return 0
    sub = allowed[np.ix_(rows, cols)]
    # Each peak with at most one candidate: no choice to make (the usual case for harmonics).
    if (sub.sum(axis=0) <= 1).all() and (sub.sum(axis=1) <= 1).all():
        return int(sub.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = dev[np.ix_(rows, cols)] / np.abs(f_true[rows])[:, None]
    rel = np.where(np.isfinite(rel), rel, 0.0)
    forbidden = 1.0 + tolerance * min(sub.shape) + 1.0
    cost = np.where(sub, rel, forbidden)
    r, c = linear_sum_assignment(cost)
    return int(sub[r, c].sum())


@numba.njit(cache=True)
def _local_maxima(x: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover (compiled)
    # scipy.signal.find_peaks' local maxima without its options (scipy's _local_maxima_1d
    # algorithm: a plateau counts once, at its middle rounded down; the ends are never peaks),
    # compiled so that a whole spectrogram is scanned without a Python call per frame.
    n = 0
    i = 1
    i_max = x.shape[0] - 1
    while i < i_max:
        if x[i - 1] < x[i]:
            i_ahead = i + 1
            while i_ahead < i_max and x[i_ahead] == x[i]:
                i_ahead += 1
            if x[i_ahead] < x[i]:
                out[n] = (i + i_ahead - 1) // 2
                n += 1
                i = i_ahead
        i += 1
    return n


@numba.njit(cache=True)
def _kept_peaks(x, freqs, threshold_db, idx, f_out):  # pragma: no cover (compiled)
    # Peak frequencies within threshold_db of the frame's highest peak; returns (count, top).
    n = _local_maxima(x, idx)
    if n == 0:
        return 0, -np.inf
    top = -np.inf
    for q in range(n):
        top = max(top, x[idx[q]])
    k = 0
    for q in range(n):
        if x[idx[q]] >= top - threshold_db:
            f_out[k] = freqs[idx[q]]
            k += 1
    return k, top


@numba.njit(cache=True)
def _greedy_matches(ft, nt, fp, npk, tolerance):  # pragma: no cover (compiled)
    # Maximum one-to-one matching of points (reconstructed peaks) to intervals
    # [f (1 - tol), f (1 + tol)] around the original peaks. Both ends of the intervals grow with f,
    # so taking the originals in ascending order and giving each the lowest free point inside its
    # interval is optimal (the classic exchange argument for interval-point matching); it finds as
    # many matches as the Hungarian assignment of ``match_peaks`` (a test checks this).
    m = 0
    j = 0
    for a in range(nt):
        f = ft[a]
        tol = tolerance * f
        while j < npk and fp[j] < f and f - fp[j] > tol:
            j += 1  # below this interval, so below every later one too
        if j < npk and abs(fp[j] - f) <= tol:
            m += 1
            j += 1
    return m


@numba.njit(cache=True)
def _score_frames(true_db, pred_db, freqs, threshold_db, tolerance, floor):  # pragma: no cover
    # true_db, pred_db: (n_frames, n_freq). Returns sums of P, R, F1 and the frames scored.
    n_freq = true_db.shape[1]
    idx = np.empty(n_freq, dtype=np.int64)
    ft = np.empty(n_freq)
    fp = np.empty(n_freq)
    p_sum = 0.0
    r_sum = 0.0
    f_sum = 0.0
    n = 0
    for t in range(true_db.shape[0]):
        nt, top = _kept_peaks(true_db[t], freqs, threshold_db, idx, ft)
        if nt == 0 or top < floor:
            continue
        npk, _ = _kept_peaks(pred_db[t], freqs, threshold_db, idx, fp)
        m = _greedy_matches(ft, nt, fp, npk, tolerance)
        precision = m / npk if npk > 0 else 0.0
        recall = m / nt
        p_sum += precision
        r_sum += recall
        if m > 0:
            f_sum += 2 * precision * recall / (precision + recall)
        n += 1
    return p_sum, r_sum, f_sum, n


def _score_item(
    true_db: np.ndarray,
    pred_db: np.ndarray,
    freqs: np.ndarray,
    threshold_db: float,
    tolerance: float,
    silence_db: float | None,
    peak_kwargs: dict[str, Any] | None,
) -> tuple[float, float, float, int]:
    floor = -np.inf if silence_db is None else true_db.max() - silence_db
    if peak_kwargs is None:
        p_sum, r_sum, f_sum, n = _score_frames(
            np.ascontiguousarray(true_db.T),
            np.ascontiguousarray(pred_db.T),
            freqs,
            float(threshold_db),
            float(tolerance),
            float(floor),
        )
        if n == 0:
            return np.nan, np.nan, np.nan, 0
        return p_sum / n, r_sum / n, f_sum / n, n
    # With find_peaks options: scipy per frame, Hungarian matching (same definition, slower).
    kw = peak_kwargs
    p_sum = r_sum = f_sum = 0.0
    n = 0
    for t in range(true_db.shape[1]):
        ft, lt = frame_peaks(true_db[:, t], freqs, threshold_db=threshold_db, peak_kwargs=kw)
        if ft.size == 0 or lt.max() < floor:
            continue  # no energy in the original: nothing to recall, the frame is not scored
        fp, _ = frame_peaks(pred_db[:, t], freqs, threshold_db=threshold_db, peak_kwargs=kw)
        m = match_peaks(ft, fp, tolerance=tolerance)
        precision = m / fp.size if fp.size else 0.0
        recall = m / ft.size
        f1 = 2 * precision * recall / (precision + recall) if m else 0.0
        p_sum += precision
        r_sum += recall
        f_sum += f1
        n += 1
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    return p_sum / n, r_sum / n, f_sum / n, n


def harmonic_prf(
    S_true,
    S_pred,
    *,
    freqs,
    kind: Kind = "amplitude",
    db_per_unit: float = 1.0,
    threshold_db: float = 30.0,
    tolerance: float = 0.03,
    silence_db: float | None = 60.0,
    amin: float = 1e-10,
    peak_kwargs: dict[str, Any] | None = None,
) -> HarmonicScores:
    """Harmonic precision, recall and F1 of a reconstructed spectrogram (Natsiou, section V).

    Parameters
    ----------
    S_true, S_pred : array-like [shape=(..., n_freq, n_frames)]
        Original and reconstruction (librosa layout; transpose ``stft_frames`` features). Leading
        axes are a batch.
    freqs : array-like [shape=(n_freq,)]
        Frequency of each row in Hz, strictly increasing (``librosa.fft_frequencies`` for an
        STFT, ``mel_band_frequencies`` for a mel spectrogram).
    kind : {"amplitude", "power", "db"}
        What the values are, to measure levels in dB: ``20 log10`` of amplitudes, ``10 log10`` of
        powers, or already log-scaled values times ``db_per_unit``. [0, 1] log features (a log-mel,
        log-magnitude STFT frames) are "db" with ``db_per_unit=top_db``: read as amplitudes (the
        default) the 30 dB rule keeps everything above 0.97 of their range, about 77 dB below the
        top for 80 dB features, and noise-floor peaks are scored.
    db_per_unit : float
        dB per unit of a log-scaled input (``kind="db"``): 80 for a [0, 1] log-mel that spans 80 dB.
    threshold_db : float
        Peaks more than this below the frame's highest peak are ignored (paper: 30).
    tolerance : float
        Relative frequency tolerance for a match (paper: 0.03, i.e. +/-3 %).
    silence_db : float or None
        A frame has energy when the original has a peak no more than this below the original's
        loudest value over the whole item; only such frames are scored and averaged. Frames where
        only the reconstruction sounds are therefore not scored. None: every frame with a peak.
    amin : float
        Floor before the logarithm for ``kind`` "amplitude" or "power".
    peak_kwargs : dict or None
        Extra ``scipy.signal.find_peaks`` arguments, applied to dB levels. None (default): plain
        local maxima, found and matched by a compiled kernel; a dict (even empty): scipy per frame
        and Hungarian matching, the same numbers more slowly.

    Returns
    -------
    HarmonicScores
        In a scored frame with no reconstructed peak, precision (like recall and F1) is 0.
    """
    if not 0 <= tolerance < 1:
        raise ConfigError(f"tolerance is relative (0.03 for 3 %), got {tolerance}")
    a, b, batch = pair(S_true, S_pred, item_ndim=2, names=("S_true", "S_pred"))
    f = as_float_array(freqs, name="freqs").ravel()
    if f.size != a.shape[1]:
        raise ConfigError(f"freqs has {f.size} values for {a.shape[1]} frequency rows")
    if np.any(np.diff(f) <= 0):
        # The compiled matcher walks peaks in bin order as if in frequency order.
        raise ConfigError("freqs must increase strictly from row to row (low frequencies first)")
    da = _to_db(a, kind, db_per_unit, amin)
    db = _to_db(b, kind, db_per_unit, amin)
    out = np.array(
        [
            _score_item(x, y, f, threshold_db, tolerance, silence_db, peak_kwargs)
            for x, y in zip(da, db)
        ]
    )
    if batch == ():
        return HarmonicScores(float(out[0, 0]), float(out[0, 1]), float(out[0, 2]), int(out[0, 3]))
    return HarmonicScores(
        out[:, 0].reshape(batch),
        out[:, 1].reshape(batch),
        out[:, 2].reshape(batch),
        out[:, 3].astype(int).reshape(batch),
    )


def harmonic_prf_audio(
    y_true,
    y_pred,
    *,
    sr: float,
    n_fft: int = 2048,
    hop_length: int = 512,
    window: str = "hann",
    **kwargs: Any,
) -> HarmonicScores:
    """``harmonic_prf`` on waveforms: magnitude STFTs of both, with the bins' frequencies.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(..., n_samples)]
        Original and reconstructed audio, same length.
    sr : float
        Sample rate in Hz.
    n_fft, hop_length, window
        STFT settings (``librosa.stft``). Bin spacing is ``sr / n_fft``; at 16 kHz, 2048 gives
        7.8 Hz, fine enough for a 3 % tolerance above ~260 Hz (half a bin of error).
    **kwargs
        Passed to ``harmonic_prf`` (threshold_db, tolerance, silence_db, peak_kwargs).
    """
    a, b, batch = pair(y_true, y_pred, item_ndim=1, names=("y_true", "y_pred"))
    S_a = np.abs(librosa.stft(a, n_fft=n_fft, hop_length=hop_length, window=window))
    S_b = np.abs(librosa.stft(b, n_fft=n_fft, hop_length=hop_length, window=window))
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    S_a = S_a.reshape((*batch, *S_a.shape[1:]))
    S_b = S_b.reshape((*batch, *S_b.shape[1:]))
    return harmonic_prf(S_a, S_b, freqs=freqs, kind="amplitude", **kwargs)
