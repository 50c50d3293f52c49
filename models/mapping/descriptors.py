"""A map of a dataset without a model: per-clip audio descriptors as the codes (no Qt).

A folder of sounds should be explorable before anyone trains on it. AudioStellar places each
sound by the means and spreads of its MFCCs; FluCoMa's ``SpectralShape`` adds centroid,
spread, rolloff and flatness, its ``Loudness`` the level. We do both: every clip becomes one
vector of

* 13 MFCCs (c0 included: the level contour), mean and standard deviation over time;
* spectral centroid and bandwidth (in octaves re 1 Hz, so that a fifth is a fifth at any
  height), 85 % rolloff (octaves), flatness (dB), zero-crossing rate and RMS level (dB), mean
  and standard deviation each;

computed at one rate (:data:`DESCRIPTOR_RATE`, whatever the files' rates) so clips of a mixed
folder compare, then standardised per column over the dataset (zero mean, unit variance), since
PCA and t-SNE weigh every dimension by its scale and a dB column would otherwise swamp a ratio.

:class:`Descriptors` has the shape of a representation (``sample_rate``, ``to_dict``,
``analyze``), so :class:`models.datasets.feature_cache.FeatureCache` keeps the vectors on disk
like any features. :func:`descriptor_task` returns an
:class:`models.inference.engine.Encoding` with one code per clip, which the map projects like
a model's codes; there is nothing to decode, so clicks play the originals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import DatasetError, LatentExplorerError
from models.inference.encode import Encoding, NullState
from models.inference.layout import CLIPS

#: every clip is analysed at this rate (22.05 kHz covers the band that timbre descriptors use)
DESCRIPTOR_RATE = 22050
N_MFCC = 13
#: names of the columns of a descriptor vector, in order
SHAPE_NAMES = ("centroid_oct", "bandwidth_oct", "rolloff_oct", "flatness_db", "zcr", "rms_db")
COLUMNS = (
    *(f"mfcc{k}_mean" for k in range(N_MFCC)),
    *(f"mfcc{k}_std" for k in range(N_MFCC)),
    *(f"{n}_mean" for n in SHAPE_NAMES),
    *(f"{n}_std" for n in SHAPE_NAMES),
)
_FLOOR = 1e-10


@dataclass(frozen=True)
class _Analysis:
    features: np.ndarray
    side: dict[str, np.ndarray]
    n_samples: int


class Descriptors:
    """Per-clip descriptor vectors, in a representation's shape (for the feature cache).

    Parameters
    ----------
    sample_rate : the analysis rate (clips are loaded resampled to it).
    n_fft, hop_length : the STFT of every descriptor (~93 ms / ~23 ms at 22.05 kHz).
    """

    kind = "descriptors"
    version = 1

    def __init__(self, *, sample_rate: int = DESCRIPTOR_RATE, n_fft: int = 2048, hop_length: int = 512) -> None:
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "sample_rate": self.sample_rate,
                "n_fft": self.n_fft, "hop_length": self.hop_length, "columns": list(COLUMNS)}

    def vector(self, y: np.ndarray) -> np.ndarray:
        """The descriptor vector of one clip [shape=(len(COLUMNS),)], float32.

        y : np.ndarray [shape=(n_samples,)] at ``self.sample_rate``.
        """
        import librosa

        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if y.size == 0:
            raise DatasetError("an empty clip has no descriptors")
        n_fft = min(self.n_fft, 2 ** int(np.floor(np.log2(max(y.size, 16)))))
        hop = min(self.hop_length, n_fft // 4)
        S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
        power = S**2
        mel = librosa.feature.melspectrogram(S=power, sr=self.sample_rate, n_mels=40)
        # a fixed reference (not the clip's peak): a quiet clip must look quiet, not normalised
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=_FLOOR, top_db=None), n_mfcc=N_MFCC)
        sr = self.sample_rate
        octaves = lambda f: np.log2(np.maximum(f, 1.0))  # noqa: E731 - a unit, used three times
        shape = np.stack([
            octaves(librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft)[0]),
            octaves(librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft)[0]),
            octaves(librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft, roll_percent=0.85)[0]),
            10.0 * np.log10(np.maximum(librosa.feature.spectral_flatness(S=S, amin=_FLOOR)[0], _FLOOR)),
            librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop)[0][: S.shape[1]],
            20.0 * np.log10(np.maximum(librosa.feature.rms(S=S, frame_length=n_fft)[0], 1e-5)),
        ])
        out = np.concatenate([mfcc.mean(1), mfcc.std(1), shape.mean(1), shape.std(1)])
        return np.nan_to_num(out).astype(np.float32)

    def analyze(self, y: np.ndarray) -> _Analysis:
        return _Analysis(features=self.vector(y), side={}, n_samples=int(np.size(y)))


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance over the rows; constant columns become 0.

    X : np.ndarray [shape=(n_clips, n_columns)] -> same shape, float64
    """
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    return (X - mu) / np.where(sd > 1e-12, sd, 1.0)


def describe_dataset(
    dataset: Any,
    *,
    descriptors: Descriptors | None = None,
    cache: Any = None,
    state: Any = None,
) -> Encoding | None:
    """Standardised descriptor codes of every clip of ``dataset``; ``None`` when stopped.

    Parameters
    ----------
    dataset : a :class:`models.datasets.base.Dataset`.
    cache : a :class:`models.datasets.feature_cache.FeatureCache`, or None to compute every time.
    state : an engine ``JobState`` (progress, stop).

    Returns
    -------
    Encoding or None
        ``clip_codes`` [shape=(n_clips, len(COLUMNS))] (NaN rows for clips that failed, listed in
        ``failed``), one item per clip, layout ``"clips"``.

    Raises
    ------
    DatasetError
        No clip of the dataset could be read.
    """
    from models.datasets.base import BuildCancelled

    state = state or NullState()
    rep = descriptors or Descriptors()
    n = len(dataset.clips)
    rows: list[np.ndarray | None] = [None] * n
    failed: list[tuple[int, str]] = []
    if cache is not None:
        try:
            fs = cache.features(dataset, rep, should_stop=state.should_stop,
                                progress=lambda i, total: state.report(i / max(total, 1), f"describing {i}/{total}"))
        except BuildCancelled:
            return None
        for j, i in enumerate(fs.indices):
            rows[int(i)] = np.asarray(fs[j])
        by_path = {str(c.path): i for i, c in enumerate(dataset.clips)}
        failed = [(by_path[str(r.path)], r.reason) for r in fs.rejected if str(r.path) in by_path]
    else:
        for i in range(n):
            if state.should_stop():
                return None
            try:
                rows[i] = rep.vector(dataset.load(i, sr=rep.sample_rate))
            except LatentExplorerError as exc:  # AudioLoadError and ours: one bad file, not the set
                failed.append((i, str(exc)))
            state.report((i + 1) / max(n, 1), f"describing {i + 1}/{n}")
    ok = [i for i in range(n) if rows[i] is not None]
    if not ok:
        raise DatasetError("no clip of this dataset could be read" + (f": {failed[0][1]}" if failed else ""))
    codes = np.full((n, len(COLUMNS)), np.nan)
    codes[ok] = standardize(np.stack([rows[i] for i in ok]))
    return Encoding(
        clip_codes=codes,
        frame_codes=codes[ok],
        frame_clip=np.array(ok),
        frame_index=np.zeros(len(ok), dtype=int),
        latent_shape=(len(COLUMNS),),
        layout=CLIPS,
        failed=failed,
    )


def descriptor_task(dataset: Any, *, cache: Any = None) -> Callable[[Any], Encoding | None]:
    """A worker task (``fn(state)``) computing :func:`describe_dataset` for the map."""
    return lambda state: describe_dataset(dataset, cache=cache, state=state)
