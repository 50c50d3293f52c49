"""The explorer's compute in one import (no Qt): the map's helpers, and the names of the
encoding and decoding modules the app uses.

Item layout lives in :mod:`models.inference.layout`, encoding in :mod:`models.inference.encode`,
the one decoding path in :mod:`models.inference.decode`; this module adds what only the map
needs (latent gains from the GUI's dials, class centres, k-means) and re-exports the rest, so
``from models.inference import engine`` gives a view everything it calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.inference.decode import (
    CLIP_PHASE,
    ESTIMATED_PHASE,
    DecodeContext,
    Sound,
    clip_context,
    decode_clip,
    decode_codes,
    decode_to_sound,
    display_spectrogram,
    render_clip,
    render_code,
    render_original,
    sound_from_features,
)
from models.inference.encode import (
    Encoding,
    JobState,
    NullState,
    analyse_clip,
    encode_dataset,
    encode_items,
    encode_sound,
    features_by_clip,
)
from models.nets.dense import band_gains as unit_band_gains

__all__ = [
    "CLIP_PHASE",
    "ESTIMATED_PHASE",
    "DecodeContext",
    "Encoding",
    "JobState",
    "NullState",
    "Sound",
    "analyse_clip",
    "band_gains",
    "class_centres",
    "clip_context",
    "decode_clip",
    "decode_codes",
    "decode_to_sound",
    "display_spectrogram",
    "encode_dataset",
    "encode_items",
    "encode_sound",
    "features_by_clip",
    "kmeans_labels",
    "render_clip",
    "render_code",
    "render_original",
    "sound_from_features",
]


def band_gains(d: int, edges: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Colonel's dials over a latent of ``d`` units: one gain per contiguous band.

    edges : inner band edges as fractions of ``d`` in [0, 1] (``len(values) - 1`` of them),
        so the same dial settings apply to any latent size; rounded to units here, then
        :func:`models.nets.dense.band_gains` expands them.
    values : one gain per band.
    returns : np.ndarray [shape=(d,), dtype=float64]
    """
    cuts = sorted(int(round(float(e) * d)) for e in edges)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    # the band of every unit (dense.band_gains of the band numbers), so the gains keep float64
    band = unit_band_gains(int(d), cuts, np.arange(len(values))).numpy().astype(np.int64)
    return values[band]


def class_centres(codes: np.ndarray, labels: Sequence[Any]) -> dict[Any, np.ndarray]:
    """Mean code of each class (Lionello's centres), skipping NaN rows. -> {label: [shape=(d,)]}"""
    codes = np.asarray(codes)
    labels = np.asarray(labels, dtype=object)
    ok = ~np.isnan(codes).any(axis=1)
    return {lab: codes[ok & (labels == lab)].mean(axis=0) for lab in dict.fromkeys(labels[ok])}


def kmeans_labels(codes: np.ndarray, k: int, *, random_state: int = 0) -> np.ndarray:
    """k-means cluster of each code [shape=(n,)], ints; NaN rows get -1."""
    from sklearn.cluster import KMeans  # here, not at import: the app starts without sklearn

    codes = np.asarray(codes)
    ok = ~np.isnan(codes).any(axis=1)
    out = np.full(len(codes), -1)
    k = max(1, min(int(k), int(ok.sum())))
    out[ok] = KMeans(n_clusters=k, n_init="auto", random_state=random_state).fit_predict(codes[ok])
    return out
