"""Small input helpers shared by the metric modules (not public)."""

from __future__ import annotations

from typing import Any

import numpy as np

from models.errors import ConfigError


def as_float_array(x: Any, *, name: str) -> np.ndarray:
    """Return ``x`` as a float64 numpy array.

    Torch tensors are detached and moved to the CPU without importing torch here, so that the
    metrics work on whatever a model returns.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} contains NaN or infinite values")
    return arr


def pair(x: Any, y: Any, *, item_ndim: int, names: tuple[str, str] = ("x", "y")):
    """Check an (original, reconstruction) pair and split its shape into batch and item parts.

    Parameters
    ----------
    x, y : array-like [shape=(..., *item_shape)]
        Same shape; the last ``item_ndim`` axes form one item, any leading axes a batch.
    item_ndim : int
        Number of trailing axes that make one item (2 for a spectrogram).

    Returns
    -------
    x, y : np.ndarray [shape=(n_items, *item_shape)]
        Flattened over the batch axes.
    batch_shape : tuple
        Leading shape, ``()`` for a single item.
    """
    a = as_float_array(x, name=names[0])
    b = as_float_array(y, name=names[1])
    if a.shape != b.shape:
        raise ConfigError(f"{names[0]} and {names[1]} differ in shape: {a.shape} vs {b.shape}")
    if a.ndim < item_ndim:
        raise ConfigError(
            f"{names[0]} needs at least {item_ndim} axes (one item), got shape {a.shape}"
        )
    if a.size == 0:
        raise ConfigError(f"{names[0]} is empty (shape {a.shape})")
    batch_shape = a.shape[: a.ndim - item_ndim]
    item_shape = a.shape[a.ndim - item_ndim :]
    return a.reshape((-1, *item_shape)), b.reshape((-1, *item_shape)), batch_shape


def unbatch(values: np.ndarray, batch_shape: tuple) -> float | np.ndarray:
    """Per-item values back to the caller's batch shape; a plain float for a single item."""
    if batch_shape == ():
        return float(values[0])
    return values.reshape(batch_shape)
