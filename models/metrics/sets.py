"""Set-level metrics: per-item values with their aggregates, for test sets and classes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ConfigError
from models.metrics.harmonic import harmonic_prf
from models.metrics.mfcc_dtw import ClassDTW
from models.metrics.spectral import log_spectral_distance, rmse, spectral_convergence, ssim

__all__ = [
    "Summary",
    "summarize",
    "MetricSet",
    "reconstruction_metrics",
    "DeviationTable",
    "mfcc_dtw_deviation_table",
]

RECONSTRUCTION_METRICS = (
    "rmse",
    "ssim",
    "harmonic",
    "spectral_convergence",
    "log_spectral_distance",
)


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation (ddof 0) over the finite values; ``n`` counts them."""

    mean: float
    std: float
    n: int


def summarize(values) -> Summary:
    """Aggregate per-item values, skipping NaN and inf (e.g. an item with no scorable frame)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Summary(np.nan, np.nan, 0)
    return Summary(float(v.mean()), float(v.std()), int(v.size))


@dataclass(frozen=True)
class MetricSet:
    """Per-item values (name -> np.ndarray [shape=(n_items,)]) and their summaries."""

    values: dict[str, np.ndarray]
    summary: dict[str, Summary]

    def means(self) -> dict[str, float]:
        """name -> mean, the row of a results table."""
        return {k: s.mean for k, s in self.summary.items()}


def reconstruction_metrics(
    originals,
    reconstructions,
    *,
    metrics: Sequence[str] = ("rmse", "ssim", "harmonic"),
    freqs=None,
    ssim_kwargs: Mapping[str, Any] | None = None,
    harmonic_kwargs: Mapping[str, Any] | None = None,
    lsd_kwargs: Mapping[str, Any] | None = None,
) -> MetricSet:
    """Natsiou's table row for a set: RMSE, SSIM, harmonic precision/recall/F1 per item.

    Parameters
    ----------
    originals, reconstructions : array-like [shape=(n_items, n_freq, n_frames)]
        Spectrograms in librosa's layout (for Natsiou, [0, 1]-scaled log-mel).
    metrics : sequence of str
        Any of "rmse", "ssim", "harmonic" (gives precision, recall and f1),
        "spectral_convergence", "log_spectral_distance" (the last two want linear magnitudes).
    freqs : array-like [shape=(n_freq,)] or None
        Row frequencies in Hz, needed for "harmonic".
    ssim_kwargs, harmonic_kwargs, lsd_kwargs
        Passed to ``ssim``, ``harmonic_prf`` (e.g. ``kind="db", db_per_unit=80``) and
        ``log_spectral_distance``.

    Returns
    -------
    MetricSet
    """
    unknown = set(metrics) - set(RECONSTRUCTION_METRICS)
    if unknown:
        raise ConfigError(
            f"unknown metrics {sorted(unknown)}; choose from {RECONSTRUCTION_METRICS}"
        )
    X = np.asarray(originals)
    if X.ndim != 3:
        raise ConfigError(f"originals must have shape (n_items, n_freq, n_frames), got {X.shape}")
    values: dict[str, np.ndarray] = {}
    if "rmse" in metrics:
        values["rmse"] = np.asarray(rmse(originals, reconstructions))
    if "ssim" in metrics:
        values["ssim"] = np.asarray(ssim(originals, reconstructions, **(ssim_kwargs or {})))
    if "harmonic" in metrics:
        if freqs is None:
            raise ConfigError("the harmonic metrics need freqs (the rows' frequencies in Hz)")
        h = harmonic_prf(originals, reconstructions, freqs=freqs, **(harmonic_kwargs or {}))
        values.update(precision=h.precision, recall=h.recall, f1=h.f1)
    if "spectral_convergence" in metrics:
        sc = spectral_convergence(originals, reconstructions)
        values["spectral_convergence"] = np.asarray(sc)
    if "log_spectral_distance" in metrics:
        values["log_spectral_distance"] = np.asarray(
            log_spectral_distance(originals, reconstructions, **(lsd_kwargs or {}))
        )
    return MetricSet(values, {k: summarize(v) for k, v in values.items()})


@dataclass(frozen=True)
class DeviationTable:
    """Lionello's Table 3: MFCC-DTW deviations per item, per class and averaged.

    ``average`` is the mean of the class means and the mean of the class stds, as in the paper's
    "average" row (its DC-VAE column checks: the mean of the ten class means is -0.33).
    """

    per_item: np.ndarray  # [shape=(n_items,)] in the input order
    per_class: dict[Hashable, Summary]
    average: Summary  # mean of class means, mean of class stds, n = number of classes


def mfcc_dtw_deviation_table(
    mfccs: Sequence,
    labels,
    centres: Mapping[Hashable, Any],
    *,
    normalize: bool = False,
    ddof: int = 0,
) -> DeviationTable:
    """MFCC-DTW deviation of every item from its decoded class centre, with per-class summaries.

    Parameters
    ----------
    mfccs : sequence of array-like [shape=(n_mfcc, n_frames_k)]
        MFCCs of the (test) sounds.
    labels : array-like [shape=(n_items,)]
        Class of each sound.
    centres : mapping label -> array-like [shape=(n_mfcc, n_frames)]
        MFCCs of each class's decoded mean latent code; every label needs one.
    normalize, ddof
        As in ``mfcc_dtw_deviation``.
    """
    y = np.asarray(labels)
    if y.shape != (len(mfccs),):
        raise ConfigError(f"labels must have shape ({len(mfccs)},), got {y.shape}")
    per_item = np.full(len(mfccs), np.nan)
    per_class: dict[Hashable, Summary] = {}
    for lab in np.unique(y):
        key = lab.item() if hasattr(lab, "item") else lab
        if key not in centres:
            raise ConfigError(f"no decoded centre for class {key!r}")
        idx = np.flatnonzero(y == lab)
        cls = ClassDTW([mfccs[i] for i in idx], normalize=normalize, ddof=ddof)
        dev = cls.deviations(centres[key])
        per_item[idx] = dev
        per_class[key] = summarize(dev)
    means = [s.mean for s in per_class.values()]
    stds = [s.std for s in per_class.values()]
    average = Summary(float(np.nanmean(means)), float(np.nanmean(stds)), len(per_class))
    return DeviationTable(per_item, per_class, average)
