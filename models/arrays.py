"""Array helpers shared by audio, representations, item layout and morphs (numpy only)."""

from __future__ import annotations

import numpy as np


def fit_length(a: np.ndarray, length: int, *, axis: int = -1) -> np.ndarray:
    """``a`` zero-padded at the end or cropped to ``length`` along ``axis``.

    The one pad/crop of the project: clips to a model's input length, decoded items back to a
    clip's length, signals to a step's length.
    """
    a = np.asarray(a)
    n = a.shape[axis]
    if n >= length:
        return np.take(a, np.arange(int(length)), axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, int(length) - n)
    return np.pad(a, pad)
