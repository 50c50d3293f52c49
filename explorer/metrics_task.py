"""The sound panel's metrics: the decoded sound scored against its original (no Qt).

RMSE and SSIM are computed, as Natsiou scores them, on [0, 1]-scaled spectrograms: here the
panel's own dB spectrograms mapped from [-80, 0] dB to [0, 1], so the numbers describe what the
user sees. Harmonic precision/recall/F1 compare spectral peaks of the two waveforms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def sound_metrics(original: Any, decoded: Any) -> dict[str, float]:
    """original, decoded : engine.Sound of one clip -> {name: value}."""
    from models.metrics.harmonic import harmonic_prf_audio
    from models.metrics.spectral import rmse, ssim

    out: dict[str, float] = {}
    a, b = original.spectrogram, decoded.spectrogram
    n = min(a.shape[1], b.shape[1])
    a01, b01 = (a[:, :n] + 80.0) / 80.0, (b[:, :n] + 80.0) / 80.0
    out["RMSE (spectrogram)"] = float(rmse(a01, b01))
    if min(a01.shape) >= 3:
        out["SSIM (spectrogram)"] = float(ssim(a01, b01))
    m = min(len(original.y), len(decoded.y))
    if m >= 2048:
        h = harmonic_prf_audio(original.y[:m], decoded.y[:m], sr=original.sr)
        out["harmonic precision"] = float(h.precision)
        out["harmonic recall"] = float(h.recall)
        out["harmonic F1"] = float(h.f1)
    return {k: v for k, v in out.items() if np.isfinite(v)}


def metrics_task(decoded: Any, controller: Any = None) -> Callable[[Any], dict[str, float]]:
    """A worker task scoring ``decoded.decoded`` against ``decoded.original``."""
    original, dec = decoded.original, decoded.decoded
    return lambda state: sound_metrics(original, dec)
