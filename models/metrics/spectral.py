"""Distances between an original and a reconstructed spectrogram.

RMSE and SSIM are Natsiou et al.'s Table I measures, computed there on [0, 1]-scaled log-mel
spectrograms; spectral convergence and log-spectral distance are the usual measures on linear
magnitudes. Every function takes one item or a batch: the last ``item_ndim`` axes (2 by default:
``(n_freq, n_frames)``, librosa's layout) form one item, any leading axes are a batch, and the
result is a float for one item or an array of the batch's shape.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from skimage.metrics import structural_similarity

from models.errors import ConfigError
from models.metrics._arrays import pair, unbatch

__all__ = ["rmse", "ssim", "spectral_convergence", "log_spectral_distance"]


def rmse(x, y, *, item_ndim: int = 2) -> float | np.ndarray:
    """Root mean squared error over all values of an item.

    Parameters
    ----------
    x, y : array-like [shape=(..., n_freq, n_frames)]
        Original and reconstruction, same shape (any trailing ``item_ndim`` axes make an item).
    item_ndim : int
        Number of trailing axes that form one item.

    Returns
    -------
    float or np.ndarray [shape=batch_shape]
        ``sqrt(mean((x - y) ** 2))`` per item.
    """
    a, b, batch = pair(x, y, item_ndim=item_ndim)
    values = np.sqrt(np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim))))
    return unbatch(values, batch)


def ssim(
    x,
    y,
    *,
    data_range: float = 1.0,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    item_ndim: int = 2,
) -> float | np.ndarray:
    """Structural similarity (Wang et al. 2004) via ``skimage.metrics.structural_similarity``.

    Parameters
    ----------
    x, y : array-like [shape=(..., n_freq, n_frames)]
        Original and reconstruction.
    data_range : float
        Span of the values (max - min possible), 1.0 for the [0, 1]-scaled features that Natsiou
        scores. Fixed rather than read from the data so that two pairs are scored on one scale.
    win_size : int or None
        Side of the sliding window (odd). None: skimage's 7, shrunk to the largest odd number
        that fits the item's smallest side (a short sound may have fewer than 7 frames).
    gaussian_weights : bool
        skimage's option: a Gaussian window (sigma 1.5) instead of a uniform one. The paper does not
        say which; skimage's default (uniform) is kept.
    item_ndim : int
        Number of trailing axes that form one item.

    Returns
    -------
    float or np.ndarray [shape=batch_shape]
        Mean SSIM per item, 1.0 for identical items.
    """
    a, b, batch = pair(x, y, item_ndim=item_ndim)
    smallest = min(a.shape[1:])
    if win_size is None:
        win_size = min(7, smallest if smallest % 2 else smallest - 1)
    if win_size < 3 or win_size % 2 == 0 or win_size > smallest:
        raise ConfigError(
            f"SSIM needs an odd window of at least 3 that fits the item; item shape "
            f"{a.shape[1:]}, win_size {win_size}"
        )
    kwargs = {"data_range": data_range, "gaussian_weights": gaussian_weights}
    if not gaussian_weights:
        kwargs["win_size"] = win_size
    values = np.array([structural_similarity(ai, bi, **kwargs) for ai, bi in zip(a, b)])
    return unbatch(values, batch)


def spectral_convergence(x, y, *, item_ndim: int = 2) -> float | np.ndarray:
    """Spectral convergence ``||x - y||_F / ||x||_F`` on linear magnitudes.

    Parameters
    ----------
    x : array-like [shape=(..., n_freq, n_frames)]
        Original magnitudes (the reference: the norm divides by it).
    y : array-like [shape=(..., n_freq, n_frames)]
        Reconstructed magnitudes.

    Returns
    -------
    float or np.ndarray [shape=batch_shape]
        0 for identical items; ``inf`` when the original is all zeros and the reconstruction is not.
    """
    a, b, batch = pair(x, y, item_ndim=item_ndim)
    axes = tuple(range(1, a.ndim))
    num = np.sqrt(np.sum((a - b) ** 2, axis=axes))
    den = np.sqrt(np.sum(a**2, axis=axes))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(num == 0, 0.0, num / den)
    return unbatch(values, batch)


def log_spectral_distance(
    x,
    y,
    *,
    kind: Literal["amplitude", "power"] = "amplitude",
    amin: float = 1e-5,
) -> float | np.ndarray:
    """Log-spectral distance in dB: RMS over frequency of the level difference, mean over frames.

    ``LSD = mean_t sqrt(mean_f (L_x[f, t] - L_y[f, t]) ** 2)`` with ``L = 20 log10(max(amin, |S|))``
    for amplitudes (``10 log10`` for powers).

    Parameters
    ----------
    x, y : array-like [shape=(..., n_freq, n_frames)]
        Original and reconstructed linear magnitudes (or powers), librosa layout.
    kind : {"amplitude", "power"}
        What the values are.
    amin : float
        Floor before the logarithm (librosa's ``amplitude_to_db`` default: -100 dB), so silent bins
        give a finite distance.

    Returns
    -------
    float or np.ndarray [shape=batch_shape]
        Distance in dB, 0 for identical items.
    """
    if kind not in ("amplitude", "power"):
        raise ConfigError(f"kind must be 'amplitude' or 'power', got {kind!r}")
    if amin <= 0:
        raise ConfigError(f"amin must be positive, got {amin}")
    a, b, batch = pair(x, y, item_ndim=2)
    scale = 20.0 if kind == "amplitude" else 10.0
    la = scale * np.log10(np.maximum(amin, np.abs(a)))
    lb = scale * np.log10(np.maximum(amin, np.abs(b)))
    per_frame = np.sqrt(np.mean((la - lb) ** 2, axis=1))  # (n_items, n_frames)
    return unbatch(per_frame.mean(axis=1), batch)
