"""From STFT magnitudes back to a waveform: the phase methods behind one function.

Methods
-------
"original"
    The clip's own phase (``side["phase"]`` of its analysis); exact when the magnitudes are too.
"gla"
    Fast Griffin-Lim in torch (:mod:`griffinlim`), batched, ``n_iter`` iterations.
"pghi"
    Phase-gradient heap integration (:mod:`pghi`): one pass, no iterations.
"pghi+gla"
    PGHI's phase as the starting point of ``pghi_gla_iters`` fast Griffin-Lim iterations, chunk
    by chunk from the start (:mod:`phase_stream`), so a sound can play while it is computed.
"librosa"
    ``librosa.griffinlim`` (reference for the benchmark; slower, not batched).
"default"
    ``"original"`` when the phase is known, else :data:`DEFAULT_METHOD`, chosen from
    ``bench/bench_phase.py`` (see docs/representations.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import librosa
import numpy as np

from models.errors import ConfigError
from models.representations.griffinlim import griffin_lim
from models.representations.pghi import pghi
from models.representations.phase_stream import current_sink, reconstruct_blocks
from models.representations.stft import StftParams, istft

PhaseMethod = Literal["default", "original", "gla", "pghi", "pghi+gla", "librosa"]
PHASE_METHODS: tuple[str, ...] = ("default", "original", "gla", "pghi", "pghi+gla", "librosa")

#: The method used for decoded sounds (no known phase). Chosen from bench/bench_phase.py:
#: PGHI + 8 fast-GLA iterations reaches about -34 dB spectral convergence on SoundFont notes
#: against -24 dB for 32 GLA iterations, in less time (numbers in docs/representations.md).
DEFAULT_METHOD = "pghi+gla"


@dataclass(frozen=True, kw_only=True)
class PhaseConfig:
    """Settings of the phase methods (not part of a representation: they do not change features).

    Parameters
    ----------
    n_iter : int
        Iterations of "gla" and "librosa".
    momentum : float
        Fast Griffin-Lim extrapolation weight (Perraudin et al.: 0.99; 0 = plain Griffin-Lim).
    pghi_gla_iters : int
        Griffin-Lim iterations after PGHI in "pghi+gla".
    pghi_tol : tuple of float
        Relative magnitude floors of PGHI's integration passes, decreasing.
    seed : int
        Seed of random initial phases.
    device : str
        Torch device of "gla" ("cpu", "cuda", ...). "pghi+gla" runs in numpy, chunk by chunk
        (windows of a few dozen frames, where torch's per-call cost exceeds the FFTs').
    """

    n_iter: int = 32
    momentum: float = 0.99
    pghi_gla_iters: int = 8
    pghi_tol: tuple[float, ...] = (1e-1, 1e-5)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.n_iter < 0 or self.pghi_gla_iters < 0:
            raise ConfigError("iteration counts must be >= 0")
        if not 0.0 <= self.momentum < 2.0:
            raise ConfigError(f"momentum must be in [0, 2), got {self.momentum}")


def resolve_method(method: str, *, has_phase: bool) -> str:
    """The concrete method ``method`` stands for; raises ConfigError for unknown names."""
    if method not in PHASE_METHODS:
        raise ConfigError(f"unknown phase method {method!r}; known: {', '.join(PHASE_METHODS)}")
    if method == "default":
        return "original" if has_phase else DEFAULT_METHOD
    if method == "original" and not has_phase:
        raise ConfigError('phase="original" needs the phase of the analysed clip (side["phase"])')
    return method


def reconstruct(
    mag: np.ndarray,
    *,
    params: StftParams,
    method: str = "default",
    phase: np.ndarray | None = None,
    length: int | None = None,
    config: PhaseConfig | None = None,
) -> np.ndarray:
    """Waveform(s) from STFT magnitudes.

    Parameters
    ----------
    mag : np.ndarray [shape=(n_bins, n_frames) or (batch, n_bins, n_frames)]
        Linear magnitudes in ``params``' geometry.
    params : StftParams
    method : str
        One of :data:`PHASE_METHODS`.
    phase : np.ndarray or None [shape like mag]
        Known phase (radians), used by "original" and by "default" when given.
    length : int or None
        Output samples; ``params.natural_length(n_frames)`` when None.
    config : PhaseConfig or None

    Returns
    -------
    np.ndarray [shape=(n_samples,) or (batch, n_samples)], float32
    """
    cfg = config or PhaseConfig()
    mag = np.asarray(mag, dtype=np.float32)
    if mag.ndim not in (2, 3) or mag.shape[-2] != params.n_bins:
        raise ConfigError(f"expected magnitudes (..., {params.n_bins}, frames), got {mag.shape}")
    if length is None:
        length = params.natural_length(mag.shape[-1])
    chosen = resolve_method(method, has_phase=phase is not None)
    if chosen == "original":
        assert phase is not None
        if np.shape(phase) != mag.shape:
            raise ConfigError(f"phase shape {np.shape(phase)} does not match magnitudes {mag.shape}")
        return _istft(mag * np.exp(1j * np.asarray(phase, dtype=np.float32)), params, length)
    if chosen == "gla":
        return griffin_lim(
            mag, params=params, n_iter=cfg.n_iter, momentum=cfg.momentum, length=length,
            seed=cfg.seed, device=cfg.device,
        )
    if chosen == "pghi":
        ph = pghi(mag, params=params, tol=cfg.pghi_tol, seed=cfg.seed)
        return _istft(mag * np.exp(1j * ph), params, length)
    if chosen == "pghi+gla":
        # chunked, so that a sound can play while its later chunks are computed (phase_stream);
        # a single clip's blocks also go to the thread's block sink, if one is set
        sink = current_sink() if mag.ndim == 2 else None
        blocks = []
        for block in reconstruct_blocks(mag, params=params, length=length, n_iter=cfg.pghi_gla_iters,
                                        momentum=cfg.momentum, tol=cfg.pghi_tol, seed=cfg.seed):
            if sink is not None:
                sink(block)
            blocks.append(block)
        return np.concatenate(blocks, axis=-1)
    # "librosa": the reference implementation, one clip at a time
    if mag.ndim == 3:
        return np.stack([reconstruct(m, params=params, method="librosa", length=length, config=cfg) for m in mag])
    y = librosa.griffinlim(
        mag, n_iter=cfg.n_iter, momentum=cfg.momentum, hop_length=params.hop_length,
        win_length=params.n_fft, n_fft=params.n_fft, window=params.window_array(),
        center=params.center, pad_mode="constant", length=length, random_state=cfg.seed,
    )
    return y.astype(np.float32)


def _istft(S: np.ndarray, params: StftParams, length: int) -> np.ndarray:
    return istft(S.astype(np.complex64), params=params, length=length).astype(np.float32)
