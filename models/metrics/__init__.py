"""Measures of a reconstruction and of a latent space, from the papers.

- Natsiou et al.: ``rmse``, ``ssim`` (Table I, on [0, 1] log-mel) and ``harmonic_prf``
  (section V: harmonic precision, recall, F1).
- Lionello & Purwins: ``mfcc_dtw_distance``, ``mfcc_dtw_deviation`` / ``ClassDTW`` /
  ``mfcc_dtw_deviation_table`` (section 5.1, Table 3) and ``knn1_accuracy`` (section 5).
- Also ``spectral_convergence`` and ``log_spectral_distance`` on linear magnitudes.

Every item-level function takes one item or a batch; ``reconstruction_metrics`` and
``mfcc_dtw_deviation_table`` give per-item values with means and stds. Definitions and defaults:
docs/metrics.md.
"""

from models.metrics.dtw import dtw_accumulated_cost, dtw_distance, dtw_distances, dtw_path
from models.metrics.harmonic import (
    HarmonicScores,
    frame_peaks,
    harmonic_prf,
    harmonic_prf_audio,
    match_peaks,
    mel_band_frequencies,
)
from models.metrics.latent import KNN1Result, knn1, knn1_accuracy
from models.metrics.mfcc_dtw import (
    ClassDTW,
    MFCCConfig,
    mfcc,
    mfcc_dtw_deviation,
    mfcc_dtw_distance,
)
from models.metrics.sets import (
    DeviationTable,
    MetricSet,
    Summary,
    mfcc_dtw_deviation_table,
    reconstruction_metrics,
    summarize,
)
from models.metrics.spectral import log_spectral_distance, rmse, spectral_convergence, ssim

__all__ = [
    "ClassDTW",
    "DeviationTable",
    "HarmonicScores",
    "KNN1Result",
    "MFCCConfig",
    "MetricSet",
    "Summary",
    "dtw_accumulated_cost",
    "dtw_distance",
    "dtw_distances",
    "dtw_path",
    "frame_peaks",
    "harmonic_prf",
    "harmonic_prf_audio",
    "knn1",
    "knn1_accuracy",
    "log_spectral_distance",
    "match_peaks",
    "mel_band_frequencies",
    "mfcc",
    "mfcc_dtw_deviation",
    "mfcc_dtw_deviation_table",
    "mfcc_dtw_distance",
    "reconstruction_metrics",
    "rmse",
    "spectral_convergence",
    "ssim",
    "summarize",
]
