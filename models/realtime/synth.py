"""Block synthesisers: a stream of latent codes in, a continuous stream of audio out, one hop a step.

Any model the app loads can be played: :func:`make_synth` picks the synthesiser from the item
layout (:func:`models.inference.layout.layout_for`), never from a model name.

:class:`FrameSynth`
    A frame model on STFT magnitudes (Colonel, Roche's frame AE/VAE): each step decodes ONE code
    into one magnitude frame, gives it a phase by real-time phase-gradient integration from the
    previous frame (RTPGHI: :func:`models.representations.pghi.pghi` on ``[previous, new]`` with
    the previous frame's phase known, Prusa & Holighaus 2017), inverts it and overlap-adds it.
    A held code is a steady partial-true tone (the phase advances at each partial's frequency),
    not a looped frame.
:class:`GrainSynth`
    Everything else (windows, clips, waveform and nn~ models): a code is decoded through the app's
    one decoding path (:func:`models.inference.decode.decode_to_sound`) into a short sound, which
    is read continuously in Hann grains (75 % overlap by default). A held code plays its decoded
    sound on (looping at a point where the sound matches itself, so the loop is seamless for a
    steady tone); a changed code starts its grains in the new decoding at the same read
    position, so the change is a crossfade over one grain, never a click.

Both take ``level`` (the representation's level side value: a frame maximum for ``stft_frames``,
``ref_db`` for ``logmel``; None = the representation's default for a decoded code) and ``shift``
(semitones, for MIDI notes: the magnitude frame warped along frequency, or the grain resampled).

The cost of a step is what it must be: a frame step is one decoder pass on one row, one
two-frame PGHI and one inverse FFT into preallocated buffers (bench: ms per step vs hop in
docs and the helpers' reports). A grain step decodes only when the code, level or shift moved.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from scipy import signal

from models.audio import resample
from models.errors import ConfigError
from models.inference import decode as decoding
from models.inference import layout as item_layout
from models.representations.pghi import pghi
from models.threads import lower_thread_priority, single_torch_thread

__all__ = ["BlockSynth", "FrameSynth", "GrainSynth", "is_frame_magnitude", "make_synth"]

#: a decoded frame's magnitudes above this are clipped back to full scale by the output limiter
_FULL_SCALE = 1.0


@runtime_checkable
class BlockSynth(Protocol):
    """What the play engine drives: ``step(code)`` -> exactly ``hop`` new samples at ``sr``."""

    sr: int
    hop: int
    latent_dim: int

    def reset(self) -> None:
        """Forget phase and overlap state (a new note)."""

    def step(self, code: np.ndarray, *, level: float | None = None, shift: float = 0.0) -> np.ndarray:
        """code [shape=(latent_dim,)] -> [shape=(hop,), dtype=float32], continuous with the last step."""


# --- helpers ----------------------------------------------------------------------------------------
def _device_of(model: torch.nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _flat_code(code: np.ndarray, d: int, gains: np.ndarray | None) -> np.ndarray:
    c = np.asarray(code, dtype=np.float32).reshape(-1)
    if c.size != d:
        raise ConfigError(f"a code of {c.size} values given to a synthesiser of a {d}-value latent")
    return c if gains is None else c * gains


def _gains(gains: np.ndarray | None, d: int) -> np.ndarray | None:
    if gains is None:
        return None
    g = np.asarray(gains, dtype=np.float32).reshape(-1)
    if g.size != d:
        raise ConfigError(f"{g.size} latent gains given for a latent of {d} values")
    return g


def _limit(y: np.ndarray) -> np.ndarray:
    # the speakers get finite samples within full scale whatever a decoder does; a hard clip only
    # acts on overshoot, which a decoded level near the default never reaches
    return np.clip(np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0), -_FULL_SCALE, _FULL_SCALE).astype(np.float32)


def is_frame_magnitude(representation: Any) -> bool:
    """Whether one feature frame of ``representation`` stands for one STFT magnitude frame
    (``stft_frames``; ``logmel`` per frame), which :class:`FrameSynth` can phase and invert."""
    return hasattr(representation, "stft_params") and hasattr(representation, "magnitudes")


# --- frames ----------------------------------------------------------------------------------------
class FrameSynth:
    """One decoded STFT frame per hop, phased by real-time PGHI, overlap-added.

    Parameters
    ----------
    model : LatentModel
        A frame model: its items are one frame (``(n_bins,)`` on ``stft_frames``, ``(n_mels,)``
        on ``logmel``).
    representation : StftFrames or LogMel
    latent_shape : the model's latent shape (codes are flat, ``latent_dim`` values).
    gains : per-unit latent gains [shape=(latent_dim,)] (Colonel's dials), or None.
    phase_tol : PGHI's relative magnitude floors (see :func:`~models.representations.pghi.pghi`).
    hop : samples per step; half the representation's hop when None (a control lands on a finer
        grid, and the overlap doubles: a steady code sounds the same). A decoded frame is one
        spectrum whatever the hop it was trained at, so any divisor of ``n_fft`` works.
    low_delay : place each new frame so that its centre is ``rise`` samples into the step that
        plays it, and give it a synthesis window that is zero before that rise and one after it
        (the analysis window's own decay ends the grain): a code is heard at its full share one
        rise after its step starts, instead of ``n_fft / 2`` samples later (32 ms at n_fft 1024,
        16 kHz) with the symmetric window. Low-delay overlap-add; the normalisation divides by
        the sum of analysis x synthesis windows, so a consistent (steady) frame sequence gives its
        signal back exactly as the symmetric window does.
    rise : the synthesis window's rise in samples (default half a step).

    Notes
    -----
    Latency (``low_delay``): the new frame's grain starts at its step's first sample and peaks
    ``rise`` samples later, where it makes up ``1 / sum_k w(c + k hop)`` of the output (40 % at
    n_fft = 8 hops); the rest is the decaying tails of the frames before it.
    """

    def __init__(self, model: Any, representation: Any, *, latent_shape: Sequence[int],
                 gains: np.ndarray | None = None, phase_tol: tuple[float, ...] = (1e-1, 1e-5),
                 hop: int | None = None, low_delay: bool = True, rise: int | None = None) -> None:
        if not is_frame_magnitude(representation):
            raise ConfigError(f"FrameSynth plays STFT-magnitude frames, not {representation.kind!r} features")
        self.model = model.eval()
        self.representation = representation
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.latent_dim = int(np.prod(self.latent_shape))
        self.sr = int(representation.sample_rate)
        base = representation.stft_params
        self._n_fft = int(base.n_fft)
        if hop is None:
            hop = base.hop_length // 2 if base.hop_length % 2 == 0 and self._n_fft % (base.hop_length // 2) == 0 \
                else base.hop_length
        if not (0 < int(hop) <= self._n_fft // 2 and self._n_fft % int(hop) == 0):
            raise ConfigError(f"FrameSynth's hop must divide n_fft={self._n_fft} and be at most half of it, got {hop}")
        self.hop = int(hop)
        # PGHI integrates the phase over the synthesis hop (a frame's phase advance is per hop)
        self._params = dataclasses.replace(base, hop_length=self.hop)
        self._n_bins = int(self._params.n_bins)
        # time-first features (stft_frames: (frames, bins)) give magnitudes frame by row; the others
        # (logmel: (mels, frames)) by column, mel -> linear inside ``magnitudes``
        self._rows = bool(representation.time_first)
        fshape = representation.feature_shape(self._n_fft)
        want = (int(fshape[1] if self._rows else fshape[0]),)
        if tuple(model.input_shape) != want:
            raise ConfigError(f"FrameSynth needs a model taking one frame {want}, this one takes {model.input_shape}")
        self._gains = _gains(gains, self.latent_dim)
        self._tol = tuple(phase_tol)
        self._device = _device_of(model)
        # each output sample is divided by the sum over the frames covering it of analysis x
        # synthesis window, so a steady frame gives back the sinusoids it stands for
        analysis = self._params.window_array()
        n, c = self._n_fft, self._n_fft // 2
        if low_delay:
            r = max(1, self.hop // 2) if rise is None else int(rise)
            if not 0 < r <= c:
                raise ConfigError(f"FrameSynth's rise must be 1..{c} samples, got {rise}")
            synthesis = np.zeros(n)
            synthesis[c - r: c] = np.sin(0.5 * np.pi * (np.arange(r) + 0.5) / r) ** 2
            synthesis[c:] = 1.0
            self._start = c - r  # the grain's first non-zero sample is played at the step's start
        else:
            synthesis, self._start = analysis, 0
        self._window = synthesis[self._start:]
        prod = (analysis * synthesis)[self._start:]
        wsum = np.zeros(self.hop)
        for k in range(0, len(prod), self.hop):
            part = prod[k: k + self.hop]
            wsum[: len(part)] += part
        self._norm = 1.0 / np.maximum(wsum, 1e-3 * wsum.max())
        self._bins = np.arange(self._n_bins, dtype=np.float64)
        self._acc = np.zeros(len(self._window), dtype=np.float64)
        self.reset()

    @property
    def default_level(self) -> float:
        """The level a decoded code is played at when none is given (the representation's default)."""
        rep = self.representation
        if hasattr(rep, "default_frame_max"):
            return float(rep.default_frame_max())
        return float(rep.config.ref_db if rep.config.ref == "fixed" else rep.default_ref_db)

    def reset(self) -> None:
        self._acc[:] = 0.0
        self._prev_mag: np.ndarray | None = None
        self._prev_phase: np.ndarray | None = None

    @torch.inference_mode()
    def decode_item(self, code: np.ndarray) -> np.ndarray:
        """One code [shape=(latent_dim,)] -> one decoded item [shape=input_shape], float64.

        Torch's thread count is left as it is: one row through a small decoder does not gain from
        threads, and taking the process-wide thread lock could make the audio wait on an encoding.
        """
        c = _flat_code(code, self.latent_dim, self._gains)
        z = torch.from_numpy(c).to(self._device).reshape(1, *self.latent_shape)
        return self.model.decode(z).reshape(-1).double().cpu().numpy()

    def magnitude(self, item: np.ndarray, level: float | None = None) -> np.ndarray:
        """A decoded item -> one linear magnitude frame [shape=(n_bins,)] (the representation's own
        inversion: frame maximum for ``stft_frames``, mel -> linear for ``logmel``)."""
        rep = self.representation
        if not self._rows:
            return rep.magnitudes(item[:, None], None if level is None else float(level))[:, 0]
        frame_max = np.array([self.default_level if level is None else float(level)])
        return rep.magnitudes(item[None, :], frame_max)[0]

    def warp(self, mag: np.ndarray, shift: float) -> np.ndarray:
        """``mag`` [shape=(n_bins,)] moved ``shift`` semitones along frequency.

        Every peak at bin ``p`` goes to ``p * 2^(shift/12)``, carrying the bins nearest it along
        unstretched (Laroche & Dolson's regions of influence). Interpolating every bin at
        ``k / 2^(shift/12)`` would put the peaks at the same places but widen (or narrow) each
        partial's window lobe; PGHI reads a partial's frequency from its lobe's shape, so a
        stretched lobe rotates at several frequencies at once and the note sounds rough. Measured
        on 8 demo notes through the demo Colonel (log spectrum of the shifted output against the
        unshifted one read at f / 2^(shift/12), correlation): +12 semitones 0.85 against 0.73 for
        interpolation, +7 0.85 against 0.81, -5 0.89 for both.
        """
        if shift == 0.0:
            return mag
        ratio = 2.0 ** (float(shift) / 12.0)
        m = mag
        inner = (m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:]) & (m[1:-1] > 1e-6 * m.max())
        peaks = np.flatnonzero(inner) + 1.0
        if peaks.size == 0:
            return np.interp(self._bins / ratio, self._bins, m, right=0.0)
        # the peak's fractional bin (parabolic fit on log magnitudes), so it lands where it should
        lm = np.log(m[(peaks[:, None] + (-1, 0, 1)).astype(int)] + 1e-300)
        den = lm[:, 0] - 2 * lm[:, 1] + lm[:, 2]
        peaks = peaks + np.where(den < 0, 0.5 * (lm[:, 0] - lm[:, 2]) / np.where(den < 0, den, -1.0), 0.0)
        moved = peaks * ratio
        # each output bin belongs to the moved peak nearest it, and reads the input at the same
        # distance from that peak's old place, inside that peak's own region: peaks move by
        # different amounts, and reading past the region would copy a neighbour (a strong
        # partial twice). Upwards, the gaps between the moved regions stay empty.
        nearest = np.searchsorted(0.5 * (moved[1:] + moved[:-1]), self._bins)
        src = self._bins - (moved - peaks)[nearest]
        bounds = np.concatenate([[-np.inf], 0.5 * (peaks[1:] + peaks[:-1]), [np.inf]])
        inside = (src >= bounds[nearest]) & (src <= bounds[nearest + 1])
        return np.where(inside, np.interp(src, self._bins, m, left=0.0, right=0.0), 0.0)

    def _phase(self, mag: np.ndarray) -> np.ndarray:
        if self._prev_mag is None:
            ph = pghi(mag[:, None], params=self._params, tol=self._tol)[:, 0]
        else:
            pair = np.stack([self._prev_mag, mag], axis=1)
            ph = pghi(pair, params=self._params, tol=self._tol, known_phase=self._prev_phase[:, None])[:, 1]
        self._prev_mag, self._prev_phase = mag, ph
        return ph

    def step(self, code: np.ndarray, *, level: float | None = None, shift: float = 0.0) -> np.ndarray:
        """code [shape=(latent_dim,)] -> ``hop`` samples [shape=(hop,), dtype=float32]."""
        mag = self.warp(self.magnitude(self.decode_item(code), level), float(shift))
        return self.step_magnitude(mag)

    def step_magnitude(self, mag: np.ndarray) -> np.ndarray:
        """The synthesis half of :meth:`step`: one linear magnitude frame [shape=(n_bins,)] -> ``hop`` samples."""
        mag = np.asarray(mag, dtype=np.float64)
        ph = self._phase(mag)
        frame = np.fft.irfft(mag * np.exp(1j * ph), n=self._n_fft)
        acc, hop = self._acc, self.hop
        acc += frame[self._start:] * self._window
        out = acc[:hop] * self._norm
        acc[:-hop] = acc[hop:]
        acc[-hop:] = 0.0
        return _limit(out)


# --- grains ----------------------------------------------------------------------------------------
class GrainSynth:
    """Decoded sounds read in overlapping Hann grains; a changed code crossfades over one grain.

    Parameters
    ----------
    model, representation : any model the app loads and its representation.
    latent_shape : the model's latent shape.
    hop : samples per step (the grain hop); 20 ms at the model's rate when None, so a control
        change starts within the 30 ms the play engine promises.
    overlap : grains sounding at once (grain length = ``overlap * hop``), >= 2; 4 (75 %) keeps
        both the amplitude and the power of overlapping Hann grains constant.
    segment : seconds of decoded sound a code plays before it loops.
    offset : seconds into the decoded sound where playing starts (past the attack, so a held
        code sustains rather than re-attacking); shortened for a model whose sounds are shorter.
    phase : phase method of spectral decodings (:data:`models.inference.decode.DECODE_PHASES`).
    tol : a code is decoded again when it moved more than ``tol`` times its RMS (plus 1e-6).
    decode_every : a moving code is asked for at most every this many steps (the grains between
        keep reading the last decoding). A level or shift change, or the first code, is asked
        for at once.
    gains : per-unit latent gains, or None.
    background : decode on this synth's own thread (default). A clip model's decoding costs
        10-135 ms (the demo Natsiou on a loaded 2-core machine), longer than a hop: decoded in
        :meth:`step` it would stall the audio. In the background, a step asks for the new code's
        sound and goes on reading the last finished one; the new sound's grains start (a
        crossfade over one grain) at the first step after it is ready. Before the first sound
        is ready the synth plays silence. False: decode inside :meth:`step` (offline renders,
        tests).

    Notes
    -----
    The decoding is :func:`models.inference.decode.decode_to_sound`'s (same features, same
    synthesis, same peak limit: the same samples for a held code) without its process-wide
    thread lock, which a click decoding or an encoding on the GUI's workers holds for their
    whole run: the decode thread sets torch to one intra-op thread once, for itself (the
    setting is per thread under OpenMP), and never waits on that lock again.
    """

    def __init__(self, model: Any, representation: Any, *, latent_shape: Sequence[int], hop: int | None = None,
                 overlap: int = 4, segment: float = 0.5, offset: float = 0.1,
                 phase: str = decoding.ESTIMATED_PHASE, tol: float = 1e-3, decode_every: int = 2,
                 gains: np.ndarray | None = None, background: bool = True) -> None:
        if overlap < 2:
            raise ConfigError(f"grains must overlap: overlap >= 2, got {overlap}")
        if phase not in decoding.DECODE_PHASES or phase == decoding.CLIP_PHASE:
            raise ConfigError(f"a played code has no clip phase; phase must be an estimated method, got {phase!r}")
        self.model = model
        self.representation = representation
        self.latent_shape = tuple(int(s) for s in latent_shape)
        self.latent_dim = int(np.prod(self.latent_shape))
        self.sr = int(representation.sample_rate)
        self.hop = int(hop) if hop else max(1, round(0.02 * self.sr))
        self.overlap = int(overlap)
        self.grain = self.overlap * self.hop
        self._window = np.hanning(self.grain + 1)[:-1]  # periodic: overlap shifted copies sum to overlap/2
        self._gain = 2.0 / self.overlap
        self._segment = max(int(round(segment * self.sr)), 2 * self.grain)
        self._offset = max(0, int(round(offset * self.sr)))
        self._phase = phase
        self._tol = float(tol)
        if decode_every < 1:
            raise ConfigError(f"decode_every must be >= 1, got {decode_every}")
        self._decode_every = int(decode_every)
        self._since = 0  # steps since the last decoding
        self._gains = _gains(gains, self.latent_dim)
        self._max_len = _natural_length(representation)
        self._acc = np.zeros(self.grain, dtype=np.float64)
        self._seg: np.ndarray | None = None
        self._jump = 0
        self._key: tuple[np.ndarray, float | None, float] | None = None  # what was last asked for
        self.decodes = 0  # how many grains were decoded (the cache's effect, for tests and benches)
        self.background = bool(background)
        # the decode thread's hand-over: requests in (latest wins), finished sounds out; both
        # lock-free for the stepping thread (SimpleQueue.put and deque append/popleft never wait)
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._finished: deque[tuple[np.ndarray, int]] = deque(maxlen=1)
        self._asked = 0  # requests made (the stepping thread's)
        self._answered = 0  # requests decoded (the decode thread's)
        self._idle = threading.Condition()  # for wait_decoded only, never taken by step
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.reset()

    def reset(self) -> None:
        self._acc[:] = 0.0
        self._pos = 0

    def _moved(self, code: np.ndarray, level: float | None, shift: float) -> bool:
        if self._key is None:
            return True
        last, last_level, last_shift = self._key
        if level != last_level or shift != last_shift:
            return True
        if self._since < self._decode_every:
            return False
        scale = float(np.sqrt(np.mean(last.astype(np.float64) ** 2)))
        return float(np.sqrt(np.mean((code - last) ** 2))) > self._tol * scale + 1e-6

    def _side(self, level: float | None, n: int) -> dict[str, np.ndarray]:
        if level is None:
            return {}
        keys = self.representation.side_keys
        if "frame_max" in keys:
            return {"frame_max": np.full(self.representation.feature_shape(n)[0], float(level), np.float32)}
        if "ref_db" in keys:
            return {"ref_db": np.array([float(level)], np.float32)}
        return {}  # a waveform has no level side information: its level is its samples'

    def _span(self, shift: float) -> tuple[int, int]:
        """(samples decoded, offset played from) for a shift."""
        ratio = 2.0 ** (float(shift) / 12.0)
        offset = self._offset
        n = offset + int(math.ceil(self._segment * max(ratio, 1.0)))
        if self._max_len is not None and n > self._max_len:
            n = self._max_len
            offset = min(offset, max(0, n - int(math.ceil(self._segment * max(ratio, 1.0)))))
        return n, offset

    def context(self, level: float | None, n: int) -> decoding.DecodeContext:
        """The decode context of a played code: ``n`` samples, the level as side information."""
        return decoding.DecodeContext(n_samples=n, feature_shape=tuple(self.representation.feature_shape(n)),
                                      side=self._side(level, n))

    def sound(self, code: np.ndarray, *, level: float | None = None, shift: float = 0.0) -> np.ndarray:
        """The decoded sound a code plays [shape=(n,)]: past ``offset``, resampled for ``shift``.

        :func:`~models.inference.decode.decode_to_sound`'s two halves (``decode_features``, the
        representation's ``synthesize``, ``limit_peak``) without its thread lock (class notes).
        """
        ratio = 2.0 ** (float(shift) / 12.0)
        n, offset = self._span(shift)
        context = self.context(level, n)
        rep = self.representation
        side = dict(context.side)
        rep.check_side(side)
        feats = decoding.decode_features(self.model, rep, np.asarray(code, np.float64).reshape(1, -1),
                                         latent_shape=self.latent_shape, feature_shape=context.feature_shape,
                                         gains=self._gains)
        y = decoding.limit_peak(rep.synthesize(feats, side=side or None, phase=self._phase, n_samples=n))
        y = y[offset:]
        if ratio != 1.0:
            # the decoded sound read faster: every frequency times `ratio`, the length divided by it
            y = resample(y, int(round(self.sr * ratio)), self.sr)
        return np.asarray(y, dtype=np.float64)

    def _decode(self, code: np.ndarray, level: float | None, shift: float) -> tuple[np.ndarray, int]:
        """The sound a code plays and its loop jump (the decode thread's work, or step's)."""
        y = self.sound(code, level=level, shift=shift)
        if len(y) < self.grain + self.hop:  # a sound shorter than a grain loops whole
            y = np.tile(y, int(math.ceil((self.grain + 2 * self.hop) / max(len(y), 1))))
            jump = len(y) - self.grain
        else:
            jump = _loop_jump(y, self.grain, self.hop)
        self.decodes += 1
        return y, jump

    def _swap(self, y: np.ndarray, jump: int) -> None:
        """Read the grains from here on in ``y`` (a crossfade: the sounding grains run out)."""
        self._seg, self._jump = y, jump
        while self._pos + self.grain > len(y):
            self._pos = max(0, self._pos - jump)

    def _ask(self, code: np.ndarray, level: float | None, shift: float) -> None:
        self._key = (code.copy(), level, shift)
        self._since = 0
        if not self.background:  # the caller's thread: bit-exact under the usual lock
            with decoding.fixed_threads():
                self._swap(*self._decode(code, level, shift))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=_decode_worker, name="grain-decoder", daemon=True,
                                            args=(weakref.ref(self), self._requests))
            weakref.finalize(self, self._requests.put, None)  # a dropped synth ends its thread
            self._thread.start()
        self._asked += 1
        self._requests.put((self._asked, code.copy(), level, shift))

    def wait_decoded(self, timeout: float | None = None) -> bool:
        """Block until every sound asked for is decoded (scripts, tests, the engine's pitch probe;
        never the audio thread). True when it is; its grains start at the next step."""
        with self._idle:
            return self._idle.wait_for(lambda: self._answered >= self._asked or self.error is not None, timeout)

    def close(self) -> None:
        """End the decode thread (it also ends when the synth is dropped)."""
        self._requests.put(None)

    def step(self, code: np.ndarray, *, level: float | None = None, shift: float = 0.0) -> np.ndarray:
        """code [shape=(latent_dim,)] -> ``hop`` samples [shape=(hop,), dtype=float32]: one more grain
        starts (from the last decoded sound; a moved code asks for its own).

        Raises
        ------
        RuntimeError
            The decode thread failed (its exception is the cause; also kept in ``error``).
        """
        c = np.asarray(code, dtype=np.float32).reshape(-1)
        if c.size != self.latent_dim:
            raise ConfigError(f"a code of {c.size} values given to a synthesiser of a {self.latent_dim}-value latent")
        if self.error is not None:
            raise RuntimeError(f"the grain decoder failed: {self.error}") from self.error
        level = None if level is None else float(level)
        self._since += 1
        if self._moved(c, level, float(shift)):
            self._ask(c, level, float(shift))
        try:
            self._swap(*self._finished.popleft())
        except IndexError:
            pass
        if self._seg is None:  # the first sound is still being decoded
            return np.zeros(self.hop, np.float32)
        seg, g, hop = self._seg, self.grain, self.hop
        acc = self._acc
        acc += seg[self._pos: self._pos + g] * self._window
        out = acc[:hop] * self._gain
        acc[:-hop] = acc[hop:]
        acc[-hop:] = 0.0
        self._pos += hop
        if self._pos + g > len(seg):
            self._pos -= self._jump
        return _limit(out)


def _decode_worker(synth_ref: weakref.ref, requests: queue.SimpleQueue) -> None:
    """A :class:`GrainSynth`'s decode thread: decodes the latest request, hands the sound over.

    Holds the synth only while decoding (a weak reference between requests), so a dropped
    synth ends it (its finalizer posts None).
    """
    single_torch_thread()
    lower_thread_priority()  # the producer and the card's callback first: a grain can come later
    while True:
        job = requests.get()
        while job is not None:  # only the latest request matters: a skipped one is never heard
            try:
                later = requests.get_nowait()
            except queue.Empty:
                break
            job = later
        synth = None if job is None else synth_ref()
        if synth is None:
            return
        asked, code, level, shift = job
        try:
            synth._finished.append(synth._decode(code, level, shift))
        except Exception as exc:  # noqa: BLE001 - handed to the stepping thread, which raises it
            synth.error = exc
        with synth._idle:
            synth._answered = asked
            synth._idle.notify_all()
        del synth


def _natural_length(representation: Any) -> int | None:
    """The longest sound a clip model of this representation decodes (None: no bound)."""
    cfg = representation.config
    if getattr(cfg, "n_samples", None):  # fixed-length clips (waveform)
        return int(cfg.n_samples)
    if getattr(cfg, "n_frames", None) and hasattr(representation, "stft_params"):  # a fixed frame count (logmel)
        return int(representation.stft_params.natural_length(cfg.n_frames))
    return None


def _loop_jump(y: np.ndarray, grain: int, hop: int) -> int:
    """How far the read position jumps back at the end of ``y``: the lag in the second half of the
    sound where it best matches its own last grain (normalised cross-correlation), so the grains
    before and after the jump are in phase and the loop sounds as one steady tone.

    y : np.ndarray [shape=(n,)], n >= grain + hop
    """
    n = len(y)
    j_max = n - grain
    j_min = max(hop, j_max // 2)
    if j_min >= j_max:
        return j_max
    ref = y[n - grain:]
    # candidate starts s = n - grain - J, for J in [j_min, j_max]: s in [0, n - grain - j_min]
    head = y[: n - j_min]
    dots = signal.correlate(head, ref, mode="valid", method="fft")  # [shape=(n - j_min - grain + 1,)]
    energy = np.concatenate([[0.0], np.cumsum(head ** 2)])
    norms = np.sqrt(np.maximum(energy[grain:] - energy[:-grain], 0.0) * float(ref @ ref)) + 1e-12
    score = dots / norms[: len(dots)]
    s = int(np.argmax(score))
    return int(n - grain - s)


# --- choosing ---------------------------------------------------------------------------------------
def make_synth(model: Any, representation: Any, *, latent_shape: Sequence[int], layout: str | None = None,
               **options: Any) -> FrameSynth | GrainSynth:
    """The synthesiser that plays ``model``: frames on STFT magnitudes -> :class:`FrameSynth`,
    anything else (windows, clips, waveforms, nn~ hops) -> :class:`GrainSynth`.

    layout : the model's item layout (:func:`models.inference.layout.layout_for` when None).
    options : keywords of the chosen class (``gains`` for both).
    """
    layout = item_layout.layout_for(model, representation) if layout is None else item_layout.parse_layout(layout)
    if layout == item_layout.FRAMES and is_frame_magnitude(representation):
        return FrameSynth(model, representation, latent_shape=latent_shape, **options)
    return GrainSynth(model, representation, latent_shape=latent_shape, **options)
