"""Dynamic time warping between feature sequences, compiled with numba.

Definition (identical to ``librosa.sequence.dtw`` with its defaults): for sequences
``X = (x_0..x_{n-1})`` and ``Y = (y_0..y_{m-1})`` of feature vectors, the local cost is the
Euclidean distance ``C[i, j] = ||x_i - y_j||_2``; the accumulated cost is

    D[0, 0] = C[0, 0]
    D[i, j] = C[i, j] + min(D[i-1, j-1], D[i, j-1], D[i-1, j])   (terms outside the grid omitted)

i.e. the symmetric step pattern (1,1), (0,1), (1,0), each step weighted 1, and the path must run
from (0, 0) to (n-1, m-1). The DTW distance is ``D[n-1, m-1]``, not normalised by default (the sum
of local costs along the best path); ``normalize=True`` divides it by ``n + m``. Being symmetric,
``dtw(X, Y) == dtw(Y, X)`` and ``dtw(X, X) == 0``.

Why numba and not dtaidistance: dtaidistance's ``dtw_ndim`` accumulates *squared* Euclidean costs
and takes a square root at the end, a different distance from librosa's (and from Lionello's
MFCC-DTW, which used the plain Euclidean local cost as usual). numba is already required by librosa,
so the compiled kernel costs no new dependency. Kernels are cached on disk by numba
(``cache=True``) so only the first run on a machine pays the compile time.

Sequences use librosa's layout, ``(n_features, n_frames)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from models.errors import ConfigError
from models.metrics._arrays import as_float_array

__all__ = ["dtw_accumulated_cost", "dtw_distance", "dtw_path", "dtw_distances"]


@numba.njit(cache=True, nogil=True)
def _accumulated(X: np.ndarray, Y: np.ndarray) -> np.ndarray:  # pragma: no cover (compiled)
    n, d = X.shape
    m = Y.shape[0]
    D = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            s = 0.0
            for k in range(d):
                t = X[i, k] - Y[j, k]
                s += t * t
            c = np.sqrt(s)
            if i == 0 and j == 0:
                D[i, j] = c
            elif i == 0:
                D[i, j] = c + D[i, j - 1]
            elif j == 0:
                D[i, j] = c + D[i - 1, j]
            else:
                D[i, j] = c + min(D[i - 1, j - 1], D[i, j - 1], D[i - 1, j])
    return D


@numba.njit(cache=True, nogil=True, fastmath=True)
def _last(X, Yt, prev, cur, c) -> float:  # pragma: no cover (compiled)
    # X: (n, d); Yt: (d, m); prev, cur, c: work rows of length >= m.
    # Same recursion as _accumulated, returning D[n-1, m-1] with two rows of memory. Y comes
    # transposed, (d, m), so that a row's local costs are computed in loops over j that the
    # compiler vectorises. The results equal librosa's: c + min(a, b, e) is the same float as
    # min(c + min(a, e), c + b), whatever the order. (Sweeping anti-diagonals instead, to free the
    # recursion from its chain through cur[j - 1], measured slower at MFCC sizes.)
    n, d = X.shape
    m = Yt.shape[1]
    for i in range(n):
        for j in range(m):
            c[j] = 0.0
        for k in range(d):
            xk = X[i, k]
            for j in range(m):
                t = xk - Yt[k, j]
                c[j] += t * t
        for j in range(m):
            c[j] = np.sqrt(c[j])
        if i == 0:
            cur[0] = c[0]
            for j in range(1, m):
                cur[j] = c[j] + cur[j - 1]
        else:
            # the part from the previous row vectorises; one add and one min stay sequential
            cur[0] = c[0] + prev[0]
            for j in range(1, m):
                cur[j] = c[j] + min(prev[j - 1], prev[j])
            for j in range(1, m):
                cur[j] = min(cur[j], c[j] + cur[j - 1])
        prev, cur = cur, prev
    return prev[m - 1]


@numba.njit(cache=True, parallel=True)
def _pairwise(
    A: np.ndarray, a_off: np.ndarray, Bt: np.ndarray, b_off: np.ndarray, pairs: np.ndarray
) -> np.ndarray:  # pragma: no cover
    # A: frames of all X sequences stacked, (sum n_k, d). Bt: every Y sequence transposed to
    # (d, m_k) and flattened one after the other, so each is a C-contiguous block (a strided
    # view would stop the compiler from vectorising the cost loop).
    d = A.shape[1]
    out = np.empty(pairs.shape[0])
    for p in numba.prange(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        m = b_off[j + 1] - b_off[j]
        Yt = Bt[d * b_off[j] : d * b_off[j + 1]].reshape((d, m))
        out[p] = _last(A[a_off[i] : a_off[i + 1]], Yt, np.empty(m), np.empty(m), np.empty(m))
    return out


def _pack_transposed(frames: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(sum m_k, d) stacked frames -> flat array of each sequence's (d, m_k) block in turn."""
    return np.concatenate(
        [frames[offsets[k] : offsets[k + 1]].T.ravel() for k in range(len(offsets) - 1)]
    )


def _frames(X, name: str) -> np.ndarray:
    """(n_features, n_frames) -> contiguous (n_frames, n_features) float64."""
    a = as_float_array(X, name=name)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0 or a.shape[0] == 0:
        raise ConfigError(f"{name} must have shape (n_features, n_frames), got {a.shape}")
    return np.ascontiguousarray(a.T)


def _check_dims(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ConfigError(f"feature sizes differ: {x.shape[1]} vs {y.shape[1]}")


def dtw_accumulated_cost(X, Y) -> np.ndarray:
    """Accumulated cost matrix, equal to ``librosa.sequence.dtw(X, Y, backtrack=False)``.

    Parameters
    ----------
    X : array-like [shape=(n_features, n)]
    Y : array-like [shape=(n_features, m)]

    Returns
    -------
    D : np.ndarray [shape=(n, m)]
    """
    x, y = _frames(X, "X"), _frames(Y, "Y")
    _check_dims(x, y)
    return _accumulated(x, y)


def dtw_distance(X, Y, *, normalize: bool = False) -> float:
    """DTW distance ``D[n-1, m-1]`` (see the module docstring for the definition).

    Parameters
    ----------
    X : array-like [shape=(n_features, n)]
    Y : array-like [shape=(n_features, m)]
    normalize : bool
        Divide by ``n + m`` (a path's maximum length), to compare sequences of different lengths.

    Returns
    -------
    float
    """
    x, y = _frames(X, "X"), _frames(Y, "Y")
    _check_dims(x, y)
    m = y.shape[0]
    d = _last(x, np.ascontiguousarray(y.T), np.empty(m), np.empty(m), np.empty(m))
    return float(d / (x.shape[0] + m)) if normalize else float(d)


def dtw_path(X, Y) -> tuple[float, np.ndarray]:
    """DTW distance and the optimal warping path from (0, 0) to (n-1, m-1).

    Ties are broken as librosa does (diagonal first, then (0, 1), then (1, 0)), so the path equals
    ``librosa.sequence.dtw(X, Y)[1][::-1]``.

    Returns
    -------
    distance : float
    path : np.ndarray [shape=(path_length, 2)]
        Index pairs (i into X, j into Y), from the start.
    """
    D = dtw_accumulated_cost(X, Y)
    i, j = D.shape[0] - 1, D.shape[1] - 1
    path = [(i, j)]
    while (i, j) != (0, 0):
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            # Step order as librosa: the first strictly smallest predecessor wins.
            steps = ((i - 1, j - 1), (i, j - 1), (i - 1, j))
            i, j = min(steps, key=lambda s: D[s])
        path.append((i, j))
    return float(D[-1, -1]), np.array(path[::-1], dtype=int)


def _pack(seqs: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    frames = [_frames(s, f"{name}[{k}]") for k, s in enumerate(seqs)]
    if not frames:
        raise ConfigError(f"{name} is empty")
    dims = {f.shape[1] for f in frames}
    if len(dims) > 1:
        raise ConfigError(f"{name} mixes feature sizes {sorted(dims)}")
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([f.shape[0] for f in frames])
    return np.ascontiguousarray(np.concatenate(frames)), offsets


def dtw_distances(
    Xs: Sequence, Ys: Sequence | None = None, *, normalize: bool = False
) -> np.ndarray:
    """DTW distances between every sequence of ``Xs`` and every one of ``Ys``, in parallel.

    Parameters
    ----------
    Xs : sequence of array-like [shape=(n_features, n_k)]
        Sequences may differ in length.
    Ys : sequence of array-like [shape=(n_features, m_k)] or None
        None: pairwise within ``Xs``; only the upper triangle is computed (DTW is symmetric) and the
        diagonal is 0.
    normalize : bool
        As in ``dtw_distance``.

    Returns
    -------
    np.ndarray [shape=(len(Xs), len(Ys))]
    """
    A, a_off = _pack(Xs, "Xs")
    if Ys is None:
        B, b_off = A, a_off
        n = len(a_off) - 1
        iu = np.triu_indices(n, k=1)
        pairs = np.stack(iu, axis=1).astype(np.int64)
    else:
        B, b_off = _pack(Ys, "Ys")
        if A.shape[1] != B.shape[1]:
            raise ConfigError(f"feature sizes differ: {A.shape[1]} vs {B.shape[1]}")
        gi, gj = np.meshgrid(np.arange(len(a_off) - 1), np.arange(len(b_off) - 1), indexing="ij")
        pairs = np.stack([gi.ravel(), gj.ravel()], axis=1).astype(np.int64)
    out = np.zeros((len(a_off) - 1, len(b_off) - 1))
    if len(pairs):
        values = _pairwise(A, a_off, _pack_transposed(B, b_off), b_off, pairs)
        if normalize:
            la, lb = np.diff(a_off), np.diff(b_off)
            values = values / (la[pairs[:, 0]] + lb[pairs[:, 1]])
        out[pairs[:, 0], pairs[:, 1]] = values
        if Ys is None:
            out[pairs[:, 1], pairs[:, 0]] = values
    return out
