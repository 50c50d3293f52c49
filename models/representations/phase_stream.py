"""PGHI + Griffin-Lim in chunks of frames: the estimated phase a sound can start playing with.

A whole-clip Griffin-Lim cannot stream: every iteration touches every frame, so no sample is
final before the last one is. Here the frames are decided chunk by chunk, left to right, and a
decided frame never changes again:

1. PGHI integrates the chunk's phase, continuing from the last ``k`` decided frames (``k`` = the
   frames that overlap the chunk's first one), so the chunks join without a phase jump;
2. ``n_iter`` fast Griffin-Lim iterations run on a window of the held frames, the chunk and
   ``k`` frames of look-ahead, with the held frames put back after every iteration (the new
   frames become consistent with what was already played); the look-ahead frames are thrown
   away and decided with the next chunk;
3. the chunk's frames are overlap-added into the output, and every sample no later frame
   reaches is handed out as a block.

The first chunk is short (:data:`FIRST_FRAMES`) so that a click is heard at once, the others
longer (:data:`CHUNK_FRAMES`), computed while the first plays. The whole sound is the
concatenation of the blocks, by construction: the app's one definition of ``"pghi+gla"``
(:func:`models.representations.phase.reconstruct`), streamed or not.

Numpy, not torch: the windows are a few dozen frames, where torch's per-call overhead costs more
than the FFTs (measured: 8 torch iterations on 12 frames 2.5-5.7 ms, numpy's FFT of them 0.05 ms).
The FFTs are scipy's (``scipy.fft``): its real FFT of a window's 40 float32 frames took 156 us
here against numpy's 714 us, the same values to float32 rounding.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft

from models.representations.pghi import pghi
from models.representations.stft import StftParams

#: frames of the first chunk: 4 hops of 256 at 16 kHz = 64 ms decided, the first 32 ms of it final
FIRST_FRAMES = 4
#: the largest chunk: chunks double from the first up to this, so each is ready well before the
#: audio before it has played out
CHUNK_FRAMES = 32
_EPS = 1e-12

BlockSink = Callable[[np.ndarray], None]
_SINK: contextvars.ContextVar[BlockSink | None] = contextvars.ContextVar("phase_block_sink", default=None)


@contextlib.contextmanager
def blocks_to(sink: BlockSink) -> Iterator[None]:
    """Inside this block, every single-clip chunked reconstruction on this thread hands each
    finished block of samples to ``sink`` as soon as it exists (streaming playback), besides
    returning the whole sound as usual."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


def current_sink() -> BlockSink | None:
    return _SINK.get()


def overlap(params: StftParams) -> int:
    """Frames on either side that overlap a frame (``ceil(n_fft / hop) - 1``)."""
    return max(1, math.ceil(params.n_fft / params.hop_length) - 1)


def chunk_bounds(n_frames: int, *, first: int = FIRST_FRAMES, chunk: int = CHUNK_FRAMES) -> list[tuple[int, int]]:
    """The chunks ``[(a, b), ...]`` that cover ``n_frames`` frames: ``first`` frames, then twice
    as many each time, up to ``chunk``."""
    out, a, size = [], 0, first
    while a < n_frames:
        b = min(n_frames, a + size)
        out.append((a, b))
        a, size = b, min(chunk, 2 * size)
    return out


def reconstruct_blocks(mag: np.ndarray, *, params: StftParams, length: int, n_iter: int, momentum: float,
                       tol: tuple[float, ...], seed: int) -> Iterator[np.ndarray]:
    """Blocks of the chunked PGHI + Griffin-Lim waveform of ``mag``, in order.

    mag : np.ndarray [shape=(n_bins, n_frames) or (batch, n_bins, n_frames)]
    length : samples of the whole output.

    Yields np.ndarray [shape=(n,) or (batch, n)], float32, whose concatenation has ``length``
    samples.
    """
    mag = np.asarray(mag, dtype=np.float32)
    single = mag.ndim == 2
    m3 = mag[None] if single else mag
    batch, n_bins, n_frames = m3.shape
    hop, n_fft = params.hop_length, params.n_fft
    off = n_fft // 2 if params.center else 0
    if n_frames == 0:
        yield np.zeros((length,) if single else (batch, length), np.float32)
        return
    win = params.window_array().astype(np.float32)
    k = overlap(params)
    beta = momentum / (1.0 + momentum)
    buf = np.zeros((batch, n_fft + hop * (n_frames - 1)), np.float32)  # the output's overlap-add
    wss = _wss(win.tobytes(), hop, n_frames)
    inv = np.where(wss > np.finfo(np.float32).tiny, 1.0 / np.maximum(wss, np.finfo(np.float32).tiny), 0.0).astype(np.float32)
    decided = np.zeros((batch, n_bins, n_frames), np.complex64)
    sent = 0  # output samples handed out
    for a, b in chunk_bounds(n_frames):
        lo, hi = max(0, a - k), min(n_frames, b + k)
        held = a - lo
        S = m3[:, :, lo:hi]
        known = np.angle(decided[:, :, lo:a]) if held else None
        ph = pghi(S if not single else S[0], params=params, tol=tol, seed=seed, workers=1,
                  known_phase=None if known is None else (known[0] if single else known))
        c = (S * np.exp(1j * (ph[None] if single else ph))).astype(np.complex64)
        if held:
            c[:, :, :held] = decided[:, :, lo:a]
        prev = None
        for _ in range(n_iter):
            rebuilt = _project(c, win, hop, n_fft, off, params.natural_length(hi - lo))
            t = rebuilt if prev is None else rebuilt - beta * prev
            prev = rebuilt
            c = t * (S / np.maximum(np.abs(t), _EPS))
            if held:
                c[:, :, :held] = decided[:, :, lo:a]
        decided[:, :, a:b] = c[:, :, held: held + (b - a)]
        frames = sp_fft.irfft(decided[:, :, a:b], n=n_fft, axis=1).astype(np.float32) * win[None, :, None]
        for j in range(b - a):
            s = (a + j) * hop
            buf[:, s: s + n_fft] += frames[:, :, j]
        # samples before frame b's start are final; the last chunk finishes the sound
        done = length if b == n_frames else min(length, max(0, b * hop - off))
        if done > sent:
            block = np.zeros((batch, done - sent), np.float32)
            src_lo, src_hi = sent + off, min(done + off, buf.shape[1])
            if src_hi > src_lo:
                block[:, : src_hi - src_lo] = buf[:, src_lo:src_hi] * inv[src_lo:src_hi]
            sent = done
            yield block[0] if single else block


def _project(c: np.ndarray, win: np.ndarray, hop: int, n_fft: int, off: int, natural: int) -> np.ndarray:
    """STFT of the inverse STFT of ``c`` [shape=(batch, n_bins, w)]: the nearest consistent
    spectrogram, as ``stft(istft(c))`` in librosa's convention (centred frames, zero padding)."""
    batch, _, w = c.shape
    frames = sp_fft.irfft(c, n=n_fft, axis=1).astype(np.float32) * win[None, :, None]
    buf = overlap_add(np.moveaxis(frames, 2, 1), hop)
    norm, index = _window_layout(win.tobytes(), hop, w, off, natural)
    buf *= norm
    return sp_fft.rfft(buf[:, index] * win, axis=2).transpose(0, 2, 1).astype(np.complex64)


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Frames [shape=(batch, w, n)] added ``hop`` apart -> [shape=(batch, n + hop * (w - 1))].

    In ``r = ceil(n / hop)`` strided additions instead of one per frame: frames ``j``, ``j + r``,
    ``j + 2r``... never overlap, so each such group, zero-padded to ``r * hop``, lies end to end in
    one contiguous stretch of the output (a few dozen frames per window: the per-frame Python
    loop was a third of a Griffin-Lim projection's time).
    """
    batch, w, n = frames.shape
    r = max(1, -(-n // hop))
    span = r * hop
    out = np.zeros((batch, n + hop * (w - 1) + span), frames.dtype)
    padded = np.zeros((batch, w, span), frames.dtype)
    padded[:, :, :n] = frames
    for g in range(min(r, w)):
        group = padded[:, g::r]  # frames g, g + r, ...: end to end
        k = group.shape[1]
        out[:, g * hop: g * hop + k * span] += group.reshape(batch, k * span)
    return out[:, : n + hop * (w - 1)]


@lru_cache(maxsize=256)
def _window_layout(win_bytes: bytes, hop: int, w: int, off: int, natural: int) -> tuple[np.ndarray, np.ndarray]:
    """For :func:`_project` on ``w`` frames: the overlap-add's divisor, zero outside the signal
    (istft's length, then stft's zero padding), and the frames' sample indices [shape=(w, n_fft)]."""
    wss = _wss(win_bytes, hop, w)
    tiny = np.finfo(np.float32).tiny
    keep = np.zeros_like(wss)
    keep[off: off + natural] = 1.0
    norm = np.where(wss > tiny, keep / np.maximum(wss, tiny), 0.0).astype(np.float32)
    n_fft = len(wss) - hop * (w - 1)
    index = np.arange(w)[:, None] * hop + np.arange(n_fft)[None, :]
    norm.setflags(write=False)
    index.setflags(write=False)
    return norm, index


@lru_cache(maxsize=64)
def _wss(win_bytes: bytes, hop: int, n_frames: int) -> np.ndarray:
    """Sum of the squared, shifted windows [shape=(n_fft + hop * (n_frames - 1),)] (istft's divisor)."""
    win = np.frombuffer(win_bytes, dtype=np.float32)
    n_fft = len(win)
    out = np.zeros(n_fft + hop * (n_frames - 1), np.float32)
    w2 = win * win
    for j in range(n_frames):
        out[j * hop: j * hop + n_fft] += w2
    out.setflags(write=False)
    return out
