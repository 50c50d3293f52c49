"""Phase-gradient heuristic integration (PGHI; Prusa, Balazs & Sondergaard 2017).

A non-iterative phase reconstruction: for a Gaussian window the phase gradient of the STFT is a
function of the log-magnitude gradient, so the phase can be integrated from the magnitude alone,
starting at the largest coefficient and spreading to smaller ones (a max-heap keeps the
integration on the most reliable path). Other windows use the Gaussian of the same spread.

Hand-written because no installable Python package provides it here (ltfat/phaseret are C and
MATLAB); the heap loop is compiled with numba, which librosa already depends on.

Conventions: the gradients below are those of the "time-invariant" STFT with the window centred
on the frame time; librosa takes the FFT from the frame start, ``n_fft / 2`` samples earlier,
which multiplies bin ``k`` by ``(-1)^k``. :func:`pghi` returns the phase in librosa's convention.
"""

from __future__ import annotations

import heapq

import numba
import numpy as np

from models.errors import ConfigError
from models.representations.stft import StftParams


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
    a, m_fft = params.hop_length, params.n_fft
    logs = np.log(np.asarray(mag, dtype=np.float64) + 1e-300)
    # np.gradient: central differences inside, one-sided at the edges (ltfat wraps around
    # instead, which is right for its periodic transform and wrong for ours).
    dlogs_df = np.gradient(logs, axis=0) if mag.shape[0] > 1 else np.zeros_like(logs)
    dlogs_dt = np.gradient(logs, axis=1) if mag.shape[1] > 1 else np.zeros_like(logs)
    bins = np.arange(mag.shape[0], dtype=np.float64)[:, None]
    tgrad = (a * m_fft / lam) * dlogs_df + 2.0 * np.pi * a * bins / m_fft
    fgrad = -(lam / (a * m_fft)) * dlogs_dt
    return tgrad, fgrad


@numba.njit(cache=True)
def _integrate(mag, tgrad, fgrad, tols, phase, done):  # pragma: no cover - compiled
    # Heap integration over the (bin, frame) grid, in passes of decreasing tolerance: the first
    # pass links only strong coefficients, so that weak regions between partials cannot bend
    # the phase of the partials themselves (phaseret's two-step variant).
    n_bins, n_frames = mag.shape
    order = np.argsort(-mag.ravel())
    peak = mag.ravel()[order[0]]
    for tol in tols:
        floor = peak * tol
        heap = [(0.0, np.int64(0))]
        heap.pop()
        # Seed with everything already known so the new pass grows from it.
        for idx in range(n_bins * n_frames):
            m, n = idx // n_frames, idx % n_frames
            if done[m, n]:
                heapq.heappush(heap, (-mag[m, n], np.int64(idx)))
        cursor = 0
        while True:
            if len(heap) == 0:
                # Start a new island at the largest unknown coefficient above the floor.
                while cursor < order.size:
                    idx = order[cursor]
                    m, n = idx // n_frames, idx % n_frames
                    if not done[m, n]:
                        break
                    cursor += 1
                if cursor >= order.size:
                    break
                idx = order[cursor]
                m, n = idx // n_frames, idx % n_frames
                if mag[m, n] <= floor:
                    break
                done[m, n] = True
                phase[m, n] = 0.0
                heapq.heappush(heap, (-mag[m, n], np.int64(idx)))
                continue
            item = heapq.heappop(heap)
            idx = item[1]
            m, n = idx // n_frames, idx % n_frames
            p = phase[m, n]
            if n + 1 < n_frames and not done[m, n + 1] and mag[m, n + 1] > floor:
                phase[m, n + 1] = p + 0.5 * (tgrad[m, n] + tgrad[m, n + 1])
                done[m, n + 1] = True
                heapq.heappush(heap, (-mag[m, n + 1], np.int64(idx + 1)))
            if n >= 1 and not done[m, n - 1] and mag[m, n - 1] > floor:
                phase[m, n - 1] = p - 0.5 * (tgrad[m, n] + tgrad[m, n - 1])
                done[m, n - 1] = True
                heapq.heappush(heap, (-mag[m, n - 1], np.int64(idx - 1)))
            if m + 1 < n_bins and not done[m + 1, n] and mag[m + 1, n] > floor:
                phase[m + 1, n] = p + 0.5 * (fgrad[m, n] + fgrad[m + 1, n])
                done[m + 1, n] = True
                heapq.heappush(heap, (-mag[m + 1, n], np.int64(idx + n_frames)))
            if m >= 1 and not done[m - 1, n] and mag[m - 1, n] > floor:
                phase[m - 1, n] = p - 0.5 * (fgrad[m, n] + fgrad[m - 1, n])
                done[m - 1, n] = True
                heapq.heappush(heap, (-mag[m - 1, n], np.int64(idx - n_frames)))


def pghi(
    mag: np.ndarray,
    *,
    params: StftParams,
    tol: tuple[float, ...] = (1e-1, 1e-5),
    gamma: float | None = None,
    seed: int = 0,
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
        Seed of the random phase of the coefficients below the last floor.

    Returns
    -------
    np.ndarray [shape like mag], float32 radians, librosa's convention.
    """
    mag = np.asarray(mag, dtype=np.float64)
    if mag.ndim == 3:
        return np.stack([pghi(m, params=params, tol=tol, gamma=gamma, seed=seed) for m in mag])
    if mag.ndim != 2 or mag.shape[0] != params.n_bins:
        raise ConfigError(f"expected magnitudes of shape ({params.n_bins}, frames), got {mag.shape}")
    tols = np.asarray(tol, dtype=np.float64)
    if tols.size == 0 or np.any(tols <= 0) or np.any(tols >= 1) or np.any(np.diff(tols) > 0):
        raise ConfigError(f"tol must be decreasing values in (0, 1), got {tol}")
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=mag.shape)
    if mag.size == 0 or not np.any(mag > 0):
        return phase.astype(np.float32)
    tgrad, fgrad = phase_gradients(mag, params=params, gamma=gamma)
    done = np.zeros(mag.shape, dtype=np.bool_)
    _integrate(np.ascontiguousarray(mag), tgrad, fgrad, tols, phase, done)
    # time-invariant, window-centred convention -> librosa's (FFT from the frame start)
    phase += np.pi * np.arange(mag.shape[0])[:, None]
    return np.mod(phase, 2.0 * np.pi).astype(np.float32)
