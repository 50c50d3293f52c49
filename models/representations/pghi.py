"""Phase-gradient heuristic integration (PGHI; Prusa, Balazs & Sondergaard 2017).

A non-iterative phase reconstruction: for a Gaussian window the phase gradient of the STFT is a
function of the log-magnitude gradient, so the phase can be integrated from the magnitude alone,
starting at the largest coefficient and spreading to smaller ones (a max-heap keeps the
integration on the most reliable path). Other windows use the Gaussian of the same spread.

Hand-written because no installable Python package provides it here (ltfat/phaseret are C and
MATLAB); the loops are compiled with numba, which librosa already depends on.

Speed. The heap holds integer *ranks* (position in the magnitude order) in a flat array rather
than ``(-magnitude, index)`` tuples: one integer comparison per sift step and no allocation,
and since ties in the order are broken by index exactly as the tuples broke them, the phase is
the same. A later pass is seeded only with its frontier (known coefficients next to an unknown
one above the new floor), the only ones whose pop can do anything. The kernels release the GIL,
so the clips of a batch are integrated on all cores by a thread pool, and callers on other
threads (a render next to a click) run side by side too.

Conventions: the gradients below are those of the "time-invariant" STFT with the window centred
on the frame time; librosa takes the FFT from the frame start, ``n_fft / 2`` samples earlier,
which multiplies bin ``k`` by ``(-1)^k``. :func:`pghi` returns the phase in librosa's convention.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numba
import numpy as np

from models.errors import ConfigError
from models.representations.stft import StftParams
from models.threads import cpu_count

_TWO_PI = 2.0 * np.pi


def phase_gradients(
    mag: np.ndarray, *, params: StftParams, gamma: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Phase increments between neighbouring STFT coefficients, estimated from magnitudes.

    Parameters
    ----------
    mag : np.ndarray [shape=(n_bins, n_frames)]
    params : StftParams
    gamma : float or None
        Gaussian ``lambda`` in samples^2; ``params.gamma()`` when None.

    Returns
    -------
    tgrad : np.ndarray [shape=(n_bins, n_frames)]
        Phase advance (radians) from one frame to the next, at each coefficient.
    fgrad : np.ndarray [shape=(n_bins, n_frames)]
        Phase advance (radians) from one bin to the next, at each coefficient.
    """
    lam = params.gamma() if gamma is None else float(gamma)
    mag = np.ascontiguousarray(mag, dtype=np.float64)
    tgrad = np.empty_like(mag)
    fgrad = np.empty_like(mag)
    _gradients(mag, float(params.hop_length), float(params.n_fft), lam, tgrad, fgrad)
    return tgrad, fgrad


@numba.njit(cache=True, nogil=True)
def _gradients(mag, a, m_fft, lam, tgrad, fgrad):  # pragma: no cover - compiled
    # d log|S| / d bin and d log|S| / d frame by central differences inside and one-sided at the
    # edges (np.gradient's scheme; ltfat wraps around instead, which is right for its periodic
    # transform and wrong for ours), turned into phase increments (Prusa et al., eq. 27-28).
    n_bins, n_frames = mag.shape
    logs = np.log(mag + 1e-300)
    ct = a * m_fft / lam
    cf = -lam / (a * m_fft)
    cb = _TWO_PI * a / m_fft
    for m in range(n_bins):
        for n in range(n_frames):
            if n_bins == 1:
                df = 0.0
            elif m == 0:
                df = logs[1, n] - logs[0, n]
            elif m == n_bins - 1:
                df = logs[m, n] - logs[m - 1, n]
            else:
                df = 0.5 * (logs[m + 1, n] - logs[m - 1, n])
            if n_frames == 1:
                dt = 0.0
            elif n == 0:
                dt = logs[m, 1] - logs[m, 0]
            elif n == n_frames - 1:
                dt = logs[m, n] - logs[m, n - 1]
            else:
                dt = 0.5 * (logs[m, n + 1] - logs[m, n - 1])
            tgrad[m, n] = ct * df + cb * m
            fgrad[m, n] = cf * dt


@numba.njit(cache=True, nogil=True, inline="always")
def _push(heap, size, r):  # pragma: no cover - compiled
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= r:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = r
    return size + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _pop(heap, size):  # pragma: no cover - compiled
    top = heap[0]
    size -= 1
    if size > 0:
        last = heap[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and heap[c + 1] < heap[c]:
                c += 1
            if heap[c] >= last:
                break
            heap[i] = heap[c]
            i = c
        heap[i] = last
    return top, size


@numba.njit(cache=True, nogil=True)
def _open_neighbour(flat, done, idx, n_bins, n_frames, floor):  # pragma: no cover - compiled
    m, n = idx // n_frames, idx % n_frames
    if n + 1 < n_frames and not done[idx + 1] and flat[idx + 1] > floor:
        return True
    if n >= 1 and not done[idx - 1] and flat[idx - 1] > floor:
        return True
    if m + 1 < n_bins and not done[idx + n_frames] and flat[idx + n_frames] > floor:
        return True
    if m >= 1 and not done[idx - n_frames] and flat[idx - n_frames] > floor:
        return True
    return False


@numba.njit(cache=True, nogil=True)
def _ties_by_index(flat, order):  # pragma: no cover - compiled
    # ``order`` comes from numpy's (fast, unstable) argsort; equal magnitudes are put in index
    # order, as the (-mag, index) tuples of a heapq would pop them, so rank order is pop order
    # and the result does not depend on the sort's implementation.
    i = 0
    while i < order.size:
        j = i + 1
        while j < order.size and flat[order[j]] == flat[order[i]]:
            j += 1
        if j - i > 1:
            order[i:j] = np.sort(order[i:j])
        i = j


@numba.njit(cache=True, nogil=True)
def _integrate(mag, tgrad, fgrad, tols, order, phase, n_known):  # pragma: no cover - compiled
    # Heap integration over the (bin, frame) grid, in passes of decreasing tolerance: the first
    # pass links only strong coefficients, so that weak regions between partials cannot bend
    # the phase of the partials themselves (phaseret's two-step variant). ``phase`` holds the
    # random phase of coefficients no pass reaches and is overwritten where one does; its
    # first ``n_known`` frames are given and kept, and the integration grows out of them.
    n_bins, n_frames = mag.shape
    size_all = n_bins * n_frames
    flat = mag.ravel()
    tg = tgrad.ravel()
    fg = fgrad.ravel()
    ph = phase.ravel()
    _ties_by_index(flat, order)
    rank = np.empty(size_all, dtype=np.int32)
    for r in range(size_all):
        rank[order[r]] = r
    done = np.zeros(size_all, dtype=np.bool_)
    if n_known > 0:
        for idx in range(size_all):
            done[idx] = idx % n_frames < n_known
    heap = np.empty(size_all, dtype=np.int32)
    peak = flat[order[0]]
    for tol in tols:
        floor = peak * tol
        # Seed with the frontier of what is already known, in rank order (a sorted array is a
        # heap), so the new pass grows from it.
        size = 0
        for r in range(size_all):
            idx = order[r]
            if done[idx] and _open_neighbour(flat, done, idx, n_bins, n_frames, floor):
                heap[size] = r
                size += 1
        cursor = 0
        while True:
            if size == 0:
                # Start a new island at the largest unknown coefficient above the floor.
                while cursor < size_all and done[order[cursor]]:
                    cursor += 1
                if cursor >= size_all or flat[order[cursor]] <= floor:
                    break
                idx = order[cursor]
                done[idx] = True
                ph[idx] = 0.0
                size = _push(heap, size, cursor)
                continue
            r, size = _pop(heap, size)
            idx = order[r]
            m, n = idx // n_frames, idx % n_frames
            p = ph[idx]
            j = idx + 1
            if n + 1 < n_frames and not done[j] and flat[j] > floor:
                ph[j] = p + 0.5 * (tg[idx] + tg[j])
                done[j] = True
                size = _push(heap, size, rank[j])
            j = idx - 1
            if n >= 1 and not done[j] and flat[j] > floor:
                ph[j] = p - 0.5 * (tg[idx] + tg[j])
                done[j] = True
                size = _push(heap, size, rank[j])
            j = idx + n_frames
            if m + 1 < n_bins and not done[j] and flat[j] > floor:
                ph[j] = p + 0.5 * (fg[idx] + fg[j])
                done[j] = True
                size = _push(heap, size, rank[j])
            j = idx - n_frames
            if m >= 1 and not done[j] and flat[j] > floor:
                ph[j] = p - 0.5 * (fg[idx] + fg[j])
                done[j] = True
                size = _push(heap, size, rank[j])


@numba.njit(cache=True, nogil=True)
def _pghi_one(mag, a, m_fft, lam, tols, order, phase, n_known, out):  # pragma: no cover - compiled
    # One clip without the GIL (numpy's argsort, done before, releases it too): gradients,
    # integration, librosa's convention.
    tgrad = np.empty_like(mag)
    fgrad = np.empty_like(mag)
    _gradients(mag, a, m_fft, lam, tgrad, fgrad)
    if mag.size > 0 and mag.max() > 0.0:
        _integrate(mag, tgrad, fgrad, tols, order, phase, n_known)
    n_bins, n_frames = mag.shape
    for m in range(n_bins):
        # time-invariant, window-centred convention -> librosa's (FFT from the frame start)
        shift = np.pi * m
        for n in range(n_frames):
            out[m, n] = (phase[m, n] + shift) % _TWO_PI


def magnitude_order(flat: np.ndarray, floor: float | None = None) -> np.ndarray:
    """Indices of ``flat`` by decreasing magnitude: the order :func:`_integrate` pops them in.

    floor : given, only the coefficients above ``floor`` times the peak are sorted (the
        integration never reads another's place in the order: its passes stop at that floor
        and, with no known frames, only visit coefficients above it); the others follow in index
        order. The phase is the same as with the whole order; the sort is a fraction of it when
        most coefficients are weak. Only for integrations without known frames (those may sit
        below the floor and are read in rank order).
    """
    # numpy's SIMD sort is several times numba's
    peak = float(flat.max()) if flat.size else 0.0
    if floor is None or not np.isfinite(peak):
        return np.argsort(-flat)
    strong = flat > peak * floor  # exactly _integrate's test against its last floor
    above = np.flatnonzero(strong)
    return np.concatenate([above[np.argsort(-flat[above])], np.flatnonzero(~strong)])


def pghi(
    mag: np.ndarray,
    *,
    params: StftParams,
    tol: tuple[float, ...] = (1e-1, 1e-5),
    gamma: float | None = None,
    seed: int = 0,
    workers: int | None = None,
    known_phase: np.ndarray | None = None,
) -> np.ndarray:
    """Phase for the magnitudes ``mag`` by phase-gradient heap integration.

    Parameters
    ----------
    mag : np.ndarray [shape=(n_bins, n_frames) or (batch, n_bins, n_frames)]
    params : StftParams
    tol : tuple of float
        Relative magnitude floors of the integration passes, decreasing; coefficients below the
        last get a random phase (they carry almost no energy).
    gamma : float or None
        Gaussian ``lambda`` in samples^2; from the window when None.
    seed : int
        Seed of the random phase of the coefficients below the last floor (the same for every
        clip of a batch, so a clip's phase does not depend on its neighbours in the batch).
    workers : int or None
        Threads for the clips of a batch; the machine's cores when None. A single clip is one
        sequential integration whatever this says.
    known_phase : np.ndarray or None [shape=(n_bins, k) or (batch, n_bins, k)]
        The phase (librosa's convention) of the first ``k`` frames of ``mag``, already decided:
        kept as it is, and the integration continues from it. Streaming: give each chunk the
        last frame(s) of the previous one, magnitudes and phase, so the chunks join without a
        phase jump, at the cost of integrating only the chunk.

    Returns
    -------
    np.ndarray [shape like mag], float32 radians, librosa's convention.
    """
    mag = np.asarray(mag, dtype=np.float64)
    if mag.ndim not in (2, 3) or mag.shape[-2] != params.n_bins:
        raise ConfigError(f"expected magnitudes of shape ({params.n_bins}, frames), got {mag.shape}")
    tols = np.asarray(tol, dtype=np.float64)
    if tols.size == 0 or np.any(tols <= 0) or np.any(tols >= 1) or np.any(np.diff(tols) > 0):
        raise ConfigError(f"tol must be decreasing values in (0, 1), got {tol}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    n_known = 0
    if known_phase is not None:
        known_phase = np.asarray(known_phase, dtype=np.float64)
        n_known = known_phase.shape[-1] if known_phase.ndim == mag.ndim else -1
        if known_phase.shape != (*mag.shape[:-1], n_known) or n_known > mag.shape[-1]:
            raise ConfigError(f"known_phase must have shape ({', '.join(map(str, mag.shape[:-1]))}, k) with "
                              f"k <= {mag.shape[-1]}, got {known_phase.shape}")
        # librosa's convention -> the window-centred one the integration works in
        known_phase = known_phase - np.pi * np.arange(params.n_bins)[:, None]
    lam = params.gamma() if gamma is None else float(gamma)
    a, m_fft = float(params.hop_length), float(params.n_fft)
    start = np.random.default_rng(seed).uniform(0.0, _TWO_PI, size=mag.shape[-2:])
    out = np.empty(mag.shape, dtype=np.float32)

    def one(i: int) -> None:
        m = np.ascontiguousarray(mag if mag.ndim == 2 else mag[i])
        order = magnitude_order(m.ravel(), None if n_known else float(tols[-1]))
        phase = start.copy()
        if n_known:
            phase[:, :n_known] = known_phase if mag.ndim == 2 else known_phase[i]
        _pghi_one(m, a, m_fft, lam, tols, order, phase, n_known, out if mag.ndim == 2 else out[i])

    if mag.ndim == 2:
        one(0)
        return out
    n_threads = min(len(mag), workers or cpu_count())
    if n_threads <= 1:
        for i in range(len(mag)):
            one(i)
    else:
        # list() waits for every clip and re-raises the first error
        list(_pool(n_threads).map(one, range(len(mag))))
    return out


@lru_cache(maxsize=4)
def _pool(n_threads: int) -> ThreadPoolExecutor:
    # One long-lived pool per width: starting threads per call would cost more than a small clip.
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="pghi")
