"""Live input: a sound card or a file, encoded block by block into codes and a moving map cursor (no Qt).

The chain is ``source -> LiveEncoder -> LiveCursor`` (and optionally ``-> target.set_code``):

- a *source* yields mono float32 blocks at its own rate: :class:`SoundCardInput` (a
  ``sounddevice.InputStream`` whose callback only copies into a queue) or :class:`FileInput` (a file
  played as if it were one, as fast as it is read in tests, paced in real time for the app);
- :class:`LiveEncoder` converts the rate to the model's, keeps a rolling buffer and encodes one item
  as soon as the audio for it has arrived. Frame models get the representation's own analysis of
  exactly the samples the offline analysis of the same audio would use, so the live codes of a file
  are the codes the map has for it (the test checks the features are equal);
- :class:`LiveCursor` summarises the recent codes the way the map's points are made (a clip point is
  the mean of its item codes, :mod:`models.inference.encode`), places the summary on the map and
  smooths the path in stream time, so the cursor glides rather than jumps.

Resynthesis (RAVE users' timbre transfer) is the encoder's codes sent to a target's ``set_code``
(the play engine's), one call per code, in stream order.

What cannot equal the offline analysis: a representation that scales by the whole clip
(``stft_frames`` with ``normalize="clip"``) is scaled by the segment analysed, which is all a stream
has. One encoder and one cursor belong to one consumer thread (the source's reader); only the
sound card's callback runs elsewhere, and it only queues blocks.
"""

from __future__ import annotations

import math
import os
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np
from scipy.spatial import cKDTree

from models.audio import StreamResampler, audio_info, load_audio
from models.errors import ConfigError, LatentExplorerError
from models.inference import layout as item_layout
from models.inference.encode import encode_items
from models.mapping.projection import Embedding, flatten_codes

#: one live code: (the model-rate stream sample at which its item was complete, code [shape=(d,)])
LiveCode = tuple[int, np.ndarray]


class InputUnavailable(LatentExplorerError):
    """No input stream could be opened (no PortAudio, no input device, a refused format)."""


class CodeTarget(Protocol):
    """What resynthesis drives: ``PlayEngine.set_code`` (thread-safe, takes effect at its next block)."""

    def set_code(self, code: np.ndarray) -> None: ...


# --- frame geometry ---------------------------------------------------------------------------------
def frame_geometry(representation: Any) -> tuple[int, int, int]:
    """``(hop, lo, hi)``: frame ``t`` of a time-first representation reads samples ``[t*hop+lo, t*hop+hi)``.

    Samples before 0 are zeros, as the offline analysis pads them (librosa's centred STFT with
    constant padding). This is what lets a rolling buffer give the offline frames exactly.

    Raises
    ------
    ConfigError
        A representation whose frames this module does not know how to locate.
    """
    params = getattr(representation, "stft_params", None)
    if params is not None:
        n_fft = int(params.n_fft)
        lo = -(n_fft // 2) if params.center else 0
        return int(params.hop_length), lo, lo + n_fft
    frame = getattr(getattr(representation, "config", None), "frame", None)
    if representation.kind == "nn_frames" and frame:
        return int(frame), 0, int(frame)
    raise ConfigError(f"live input cannot locate the frames of a {representation.kind} representation")


def clip_samples_for(representation: Any, input_shape: tuple[int, ...]) -> int:
    """Samples of audio one clip item covers, for a clip model (its input's time axis).

    A spectral clip (log-mel) of ``T`` frames: ``T * hop`` samples (the crop of the offline analysis of
    a clip that long); a waveform: the representation's fixed clip length.
    """
    params = getattr(representation, "stft_params", None)
    if params is not None:
        return int(input_shape[-1]) * int(params.hop_length)
    n = getattr(getattr(representation, "config", None), "n_samples", None)
    if n:
        return int(n)
    raise ConfigError(f"say how many samples a live {representation.kind} item spans (clip_samples=...)")


class _FrameAnalyser:
    """Offline-equal frames of a time-first representation from a rolling buffer.

    The buffer starts with the zeros the offline analysis pads before sample 0. When new frames are
    complete, one segment starting on a frame boundary ``k`` frames before the first of them is
    analysed by the representation itself and frames ``k..`` taken: their windows lie inside the
    segment, so the segment's own edge padding never reaches them.
    """

    def __init__(self, representation: Any) -> None:
        self.rep = representation
        self.hop, self.lo, self.hi = frame_geometry(representation)
        self.k = -(-max(0, -self.lo) // self.hop)  # frames of look-back a segment needs
        self.buf = np.zeros(self.k * self.hop, np.float32)
        self.buf_start = -self.k * self.hop  # stream sample of buf[0]
        self.n = 0  # samples received
        self.next_frame = 0

    def push(self, y: np.ndarray, *, final: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Add samples; return (frame indices, features [shape=(m, ...)], side of those frames)."""
        if len(y):
            self.buf = np.concatenate([self.buf, y])
            self.n += len(y)
        if final:
            # the offline frame count for this many samples; their windows run into zeros past the end
            last = int(self.rep.feature_shape(self.n)[0])
            need = (last - 1) * self.hop + self.hi - (self.buf_start + len(self.buf))
            if need > 0:
                self.buf = np.concatenate([self.buf, np.zeros(need, np.float32)])
        else:
            last = (self.n - self.hi) // self.hop + 1 if self.n >= self.hi else 0
        t0, t1 = self.next_frame, last  # frames t0..t1-1 are complete
        if t1 <= t0:
            return np.zeros(0, int), np.zeros((0,)), {}
        s = (t0 - self.k) * self.hop - self.buf_start
        e = (t1 - 1) * self.hop + self.hi - self.buf_start
        analysis = self.rep.analyze(self.buf[s:e], keep_phase=False)
        feats = np.asarray(analysis.features)[self.k: self.k + t1 - t0]
        side = {key: np.asarray(v)[self.k: self.k + t1 - t0] for key, v in analysis.side.items()
                if np.ndim(v) >= 1 and len(v) == len(analysis.features)}
        self.next_frame = t1
        drop = (t1 - self.k) * self.hop - self.buf_start  # keep what the next segment starts with
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start += drop
        return np.arange(t0, t1), feats, side


# --- the encoder ------------------------------------------------------------------------------------
class LiveEncoder:
    """Encode an input stream block by block, one code per item as soon as its audio is in.

    Parameters
    ----------
    model : LatentModel
    representation : Representation
    latent_shape : the model's latent shape (codes are flattened to ``d``)
    layout : ``"frames"``, ``"windows"`` or ``"clips"`` (:mod:`models.inference.layout`)
    sr : rate of the blocks fed; the model's when None (then no conversion)
    item_hop : between items: windows, in frames (``seq_len // 2``, so the cursor moves twice per
        window); clips, in samples (an eighth of a second). Frames always come one per STFT hop.
    clip_samples : samples a clip item covers; :func:`clip_samples_for` when None. Until that much
        has arrived the item is the audio so far, padded as the offline analysis pads a short clip.
    target : resynthesis (``target.set_code(code)`` for every code, in order), or None.

    Attributes
    ----------
    n_samples : model-rate samples received so far (stream time).
    level : the representation's level side value of the latest frame (``frame_max``) or None.
    """

    def __init__(self, model: Any, representation: Any, *, latent_shape: tuple[int, ...], layout: str,
                 sr: int | None = None, item_hop: int | None = None, clip_samples: int | None = None,
                 target: CodeTarget | None = None) -> None:
        self.model, self.rep = model, representation
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.layout = item_layout.parse_layout(layout)
        self.input_shape = tuple(int(s) for s in model.input_shape)
        self.model_sr = int(representation.sample_rate)
        self.sr = int(sr or self.model_sr)
        self.target = target
        self._resampler = StreamResampler(self.sr, self.model_sr)
        self.n_samples = 0
        self.level: float | None = None
        if self.layout == item_layout.CLIPS:
            self.clip_samples = int(clip_samples or clip_samples_for(representation, self.input_shape))
            self.item_hop = int(item_hop or max(1, self.model_sr // 8))
            self._clip = np.zeros(0, np.float32)
            self._since = 0
            self._analyser = None
        else:
            self._analyser = _FrameAnalyser(representation)
            seq_len = self.input_shape[0] if self.layout == item_layout.WINDOWS else 1
            self.item_hop = int(item_hop or max(1, seq_len // 2)) if self.layout == item_layout.WINDOWS else 1
            self._frames: deque[np.ndarray] = deque(maxlen=seq_len)
            self._since = 0
        if self.item_hop < 1:
            raise ConfigError(f"item_hop must be >= 1, got {self.item_hop}")

    @property
    def frame_hop(self) -> int | None:
        """Model-rate samples between frames (time-first layouts), else None."""
        return None if self._analyser is None else self._analyser.hop

    def feed(self, block: np.ndarray) -> list[LiveCode]:
        """Take a block at ``sr`` [shape=(n,) or (n, channels): mixed to mono]; return the new codes."""
        return self._take(np.asarray(self._resampler.process(_mono(block)), np.float32).reshape(-1), final=False)

    def flush(self) -> list[LiveCode]:
        """End of the stream: the items still waiting, completed with zeros as the offline analysis pads."""
        tail = self._resampler.process(np.zeros(0, np.float32), last=True)
        return self._take(np.asarray(tail, np.float32).reshape(-1), final=True)

    def features(self, block: np.ndarray, *, final: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Frames only (no model): ``(frame indices, features)`` of a model-rate block; what ``feed`` encodes."""
        if self._analyser is None:
            raise ConfigError("a clip layout has no frames")
        idx, feats, _ = self._analyser.push(np.asarray(block, np.float32), final=final)
        return idx, feats

    def _take(self, y: np.ndarray, *, final: bool) -> list[LiveCode]:
        self.n_samples += len(y)
        items, samples = self._clip_items(y, final) if self._analyser is None else self._frame_items(y, final)
        if not items:
            return []
        z = encode_items(self.model, np.stack(items))
        codes = z.reshape(len(items), -1).astype(np.float64)
        if codes.shape[1] != int(np.prod(self.latent_shape)):
            raise ConfigError(f"the model gives codes of {codes.shape[1]} values, not latent_shape {self.latent_shape}")
        out = [(int(s), c) for s, c in zip(samples, codes)]
        if self.target is not None:
            for _, c in out:
                self.target.set_code(c)
        return out

    def _frame_items(self, y: np.ndarray, final: bool) -> tuple[list[np.ndarray], list[int]]:
        a = self._analyser
        idx, feats, side = a.push(y, final=final)
        if len(idx) and "frame_max" in side:
            self.level = float(side["frame_max"][-1])
        done = [min(int(t) * a.hop + a.hi, self.n_samples) for t in idx]
        if self.layout == item_layout.FRAMES:
            return list(feats), done
        items, samples = [], []
        for f, s in zip(feats, done):
            self._frames.append(f)
            self._since += 1
            if len(self._frames) == self._frames.maxlen and self._since >= self.item_hop:
                items.append(np.stack(self._frames))
                samples.append(s)
                self._since = 0
        return items, samples

    def _clip_items(self, y: np.ndarray, final: bool) -> tuple[list[np.ndarray], list[int]]:
        items, samples = [], []
        pos = 0
        while pos < len(y):
            take = min(len(y) - pos, self.item_hop - self._since)
            self._clip = np.concatenate([self._clip, y[pos: pos + take]])[-self.clip_samples:]
            pos += take
            self._since += take
            if self._since >= self.item_hop:
                items.append(self._clip_item())
                samples.append(self.n_samples - len(y) + pos)
                self._since = 0
        if final and self._since and len(self._clip):
            items.append(self._clip_item())
            samples.append(self.n_samples)
            self._since = 0
        return items, samples

    def _clip_item(self) -> np.ndarray:
        features = self.rep.analyze(self._clip, keep_phase=False).features
        return item_layout.to_items(features, item_layout.CLIPS, self.input_shape)[0]


def _mono(block: np.ndarray) -> np.ndarray:
    x = np.asarray(block, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ConfigError(f"an input block must be (n,) or (n, channels), got shape {x.shape}")
    return x


# --- the cursor -------------------------------------------------------------------------------------
class LiveCursor:
    """Where the recent live codes fall on the map, smoothed in stream time.

    Parameters
    ----------
    embedding : the map (``embedding.points`` [shape=(n, 2)])
    codes : the map points' codes [shape=(n, d)] (``Controller.map_codes()[0]``); ``embedding.codes`` when None
    sr : model rate (stream samples -> seconds)
    point_mode : ``"clip"``: the map's points are clips, so the cursor places the same summary a clip
        point is, the mean of the item codes (:mod:`models.inference.encode`), over the last
        ``summary_s`` seconds (clip models: the latest code, one item being one clip). ``"frame"``:
        points are items and the cursor places the latest code itself.
    placement : ``"transform"``: ``embedding.transform`` (PCA: exact and cheap). ``"neighbours"``: the
        inverse-distance mean of the map positions of the ``k`` map codes nearest the summary in latent
        space. ``"auto"``: transform for PCA, neighbours for t-SNE. Measured on the demo's 160-clip t-SNE
        map: openTSNE's ``transform`` of one code takes 40-70 ms on one core (an optimisation against the
        whole map's affinities, growing with the map) where a frame model makes a code every 16 ms, while
        the neighbours' placement takes 33 us and lands within 0.3% of the map's diagonal of it (median).
        ``"transform"`` on a t-SNE map is rate-limited to once per ``transform_every_s`` of stream time.
    smooth_s : time constant of the one-pole smoothing of the position (0: none).
    max_speed : the fastest the cursor moves, in map diagonals (of the points' bounding box) per second,
        so that a sudden change of sound (an onset, a cut) glides across the map instead of jumping;
        0 for no limit.
    """

    def __init__(self, embedding: Embedding, codes: np.ndarray | None = None, *, sr: int,
                 point_mode: str = "clip", layout: str = item_layout.FRAMES, summary_s: float = 0.25,
                 placement: str = "auto", smooth_s: float = 0.08, max_speed: float = 2.0,
                 transform_every_s: float = 0.25, k: int = 8) -> None:
        if point_mode not in ("clip", "frame"):
            raise ConfigError(f"point_mode must be 'clip' or 'frame', got {point_mode!r}")
        if placement not in ("auto", "transform", "neighbours"):
            raise ConfigError(f"placement must be 'auto', 'transform' or 'neighbours', got {placement!r}")
        self.embedding = embedding
        self.points = np.asarray(embedding.points, dtype=np.float64)
        self.codes = flatten_codes(embedding.codes if codes is None else codes)
        if len(self.codes) != len(self.points):
            raise ConfigError(f"{len(self.codes)} codes for {len(self.points)} map points")
        self.sr = int(sr)
        self.point_mode = point_mode
        self.layout = item_layout.parse_layout(layout)
        self.summary = int(round(summary_s * self.sr))
        if placement == "auto":
            placement = "transform" if embedding.method == "pca" else "neighbours"
        self.placement = placement
        self.smooth = float(smooth_s) * self.sr
        diagonal = float(np.linalg.norm(np.ptp(self.points, axis=0))) if len(self.points) else 0.0
        self.max_step = float(max_speed) * diagonal / self.sr  # map units per stream sample
        # only openTSNE's transform is slow enough to need a rate limit; PCA's is a matrix product
        slow = self.placement == "transform" and embedding.method != "pca"
        self.transform_every = int(round(transform_every_s * self.sr)) if slow else 0
        self.k = max(1, min(int(k), len(self.points)))
        self._tree: cKDTree | None = None
        self._recent: deque[LiveCode] = deque()
        self._target: np.ndarray | None = None
        self._placed_at: int | None = None
        self.position: np.ndarray | None = None
        self.sample = 0

    def push(self, codes: Iterable[LiveCode]) -> np.ndarray | None:
        """Move the cursor by new codes (in stream order); the position now [shape=(2,)] or None yet."""
        for sample, code in codes:
            self._recent.append((int(sample), np.asarray(code, dtype=np.float64).reshape(-1)))
            while self._recent and self._recent[0][0] <= sample - self.summary:
                self._recent.popleft()
            due = self._placed_at is None or sample - self._placed_at >= self.transform_every
            if due:
                self._target = self.place(self.summarise())
                self._placed_at = sample
            self._step(int(sample))
        return None if self.position is None else self.position.copy()

    def summarise(self) -> np.ndarray:
        """The code the map would have for the recent input [shape=(d,)]."""
        if self.point_mode == "frame" or self.layout == item_layout.CLIPS:
            return self._recent[-1][1]
        return np.mean([c for _, c in self._recent], axis=0)

    def place(self, code: np.ndarray) -> np.ndarray:
        """Map position of one code [shape=(2,)] by this cursor's placement."""
        if self.placement == "transform":
            return np.asarray(self.embedding.transform(code[None]), dtype=np.float64)[0]
        if self._tree is None:
            self._tree = cKDTree(self.codes)
        d, idx = self._tree.query(code, k=self.k)
        d, idx = np.atleast_1d(d), np.atleast_1d(idx)
        if d[0] < 1e-12:
            return self.points[idx[0]].copy()
        w = 1.0 / d ** 2
        return (w[:, None] * self.points[idx]).sum(0) / w.sum()

    def _step(self, sample: int) -> None:
        if self.position is None:
            self.position = self._target.copy()
        else:
            dt = max(sample - self.sample, 0)
            a = 1.0 if self.smooth <= 0 else 1.0 - math.exp(-dt / self.smooth)
            step = a * (self._target - self.position)
            length = float(np.linalg.norm(step))
            if self.max_step > 0 and length > self.max_step * dt:
                step *= self.max_step * dt / length
            self.position = self.position + step
        self.sample = sample


# --- sources ----------------------------------------------------------------------------------------
class FileInput:
    """A file (or an array) played as if it were a sound card: mono blocks of ``block_size`` at its rate.

    Parameters
    ----------
    source : a sound file path, or a mono array [shape=(n,)] with ``sr``
    sr : the array's rate; for a file, None keeps the file's own rate (what a card would deliver)
    block_size : samples per block; the last block is zero-padded to it, as a card's would be
    realtime : pace the blocks at the rate (the app); False yields them as fast as asked (tests)
    loop : start again at the end (until the consumer stops iterating)
    """

    def __init__(self, source: str | os.PathLike | np.ndarray, *, sr: int | None = None, block_size: int = 512,
                 realtime: bool = False, loop: bool = False) -> None:
        if isinstance(source, np.ndarray):
            if sr is None:
                raise ConfigError("an array source needs its sample rate (sr=...)")
            self.y = np.asarray(source, dtype=np.float32).reshape(-1)
        else:
            self.y = load_audio(source, sr=sr)
            if sr is None:
                sr = audio_info(source).sample_rate
        if block_size < 1:
            raise ConfigError(f"block_size must be >= 1, got {block_size}")
        self.sr, self.block_size = int(sr), int(block_size)
        self.realtime, self.loop = bool(realtime), bool(loop)

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.monotonic()
        sent = 0
        while True:
            for s in range(0, len(self.y), self.block_size):
                block = np.zeros(self.block_size, np.float32)
                chunk = self.y[s: s + self.block_size]
                block[: len(chunk)] = chunk
                if self.realtime:
                    wait = start + sent / self.sr - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                sent += self.block_size
                yield block
            if not self.loop:
                return


def _sounddevice() -> Any:
    import sounddevice  # OSError without the PortAudio library

    return sounddevice


class SoundCardInput:
    """The default (or a named) input device as a source of mono blocks.

    The PortAudio callback only copies its block into a bounded queue (never waits: a full queue drops
    the block and counts it in ``overflows``); :meth:`read` / iteration take blocks out on the
    consumer's thread.

    Raises
    ------
    InputUnavailable
        From :meth:`open`: no PortAudio, no input device, or the device refused the rate or block size,
        with the reason in words ("no input device: ...").
    """

    def __init__(self, *, device: int | str | None = None, sr: int | None = None, block_size: int = 512,
                 queue_blocks: int = 64) -> None:
        self.device, self.block_size = device, int(block_size)
        self.sr = int(sr) if sr else 0
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=int(queue_blocks))
        self._stream: Any = None
        self.overflows = 0
        self.device_name = ""

    def open(self) -> SoundCardInput:
        try:
            sd = _sounddevice()
        except OSError as exc:
            raise InputUnavailable(f"no input device: PortAudio is not installed ({exc})") from None
        try:
            info = sd.query_devices(self.device, kind="input")
            sr = self.sr or int(info["default_samplerate"])
            stream = sd.InputStream(device=self.device, samplerate=sr, blocksize=self.block_size, channels=1,
                                    dtype="float32", callback=self._callback)
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise InputUnavailable(f"no input device: {str(exc).strip() or type(exc).__name__}") from None
        self.sr, self._stream, self.device_name = sr, stream, str(info.get("name", ""))
        return self

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            self._queue.put_nowait(indata[:, 0].copy())
        except queue.Full:
            self.overflows += 1
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The next block [shape=(block_size,)], or None when none came within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[np.ndarray]:
        while self._stream is not None:
            block = self.read(timeout=0.5)
            if block is not None:
                yield block

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()

    def __enter__(self) -> SoundCardInput:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- the chain --------------------------------------------------------------------------------------
def run_live(source: Iterable[np.ndarray], encoder: LiveEncoder, cursor: LiveCursor | None = None, *,
             on_position: Callable[[int, np.ndarray], None] | None = None,
             should_stop: Callable[[], bool] | None = None, flush: bool = True) -> list[tuple[int, np.ndarray]]:
    """Drive ``source`` through the encoder (and its resynthesis target) and the cursor.

    ``on_position(stream_sample, xy)`` after each block that moved the cursor (the GUI posts it to
    its thread). Returns the cursor path ``[(stream_sample, xy), ...]``, one entry per code.
    """
    path: list[tuple[int, np.ndarray]] = []

    def take(codes: list[LiveCode]) -> None:
        if cursor is None or not codes:
            return
        for c in codes:
            path.append((c[0], cursor.push([c])))
        if on_position is not None:
            on_position(path[-1][0], path[-1][1])

    for block in source:
        if should_stop is not None and should_stop():
            break
        take(encoder.feed(block))
    if flush:
        take(encoder.flush())
    return path
