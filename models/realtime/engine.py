"""The real-time play engine every play mode shares: scrub, MIDI notes, OSC and live input.

:class:`PlayEngine` is pulled: ``process(n)`` is the only place sound is made, called by the
offline driver in tests and by the producer's thread for the sound card
(:class:`models.realtime.producer.Producer`). Controls
(``set_xy``, ``note_on``, ...) come from any thread (GUI, MIDI, OSC) as stamped messages on a
``collections.deque`` (append and popleft are atomic: no lock for the audio side to wait on); the
engine applies them at the start of its next hop and logs, per message, the stream sample it was
posted at and the one it took effect at (:attr:`PlayEngine.control_log`), so latency is measured
in stream samples, never in wall-clock time.

Sound never jumps: every voice's code glides to its target with a one-pole filter per hop (in
latent space, time constant ``smoothing_s``) and every gate change is a gain ramp (attack,
release, a fast fade when a voice is stolen). No Qt.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import librosa  # imported with the engine, not on the first note (it takes seconds there)
import numpy as np

from models.errors import ConfigError
from models.morphing.export_audio import DAW_RATE, ExportOptions, finish_signals, write_export
from models.realtime.position import PositionField
from models.threads import lower_thread_priority, single_torch_thread

if TYPE_CHECKING:
    from models.realtime.producer import Producer
    from models.realtime.synth import BlockSynth


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """How the engine plays.

    block : samples (model rate) the producer pulls per ``process`` call. The ring is filled in
        these steps, so it overshoots its lookahead by up to one block: small enough that the
        overshoot stays a few ms, large enough that the per-pull overhead (a resampler call, a
        Python loop) stays a small part of the block's period.
    lookahead : samples (model rate) the producer keeps ahead of the sound card; with the hop it
        bounds the output latency, so it is kept small (the producer raises it to the sound
        card's callback block plus ``stall_s`` and the callback's fade reserve when that is
        larger).
    stall_s : how long a producer step may stall (the OS, a virtual machine's stolen CPU, a
        thread holding the GIL) before the card runs short: the ring's margin beyond the card's
        block and the fade reserve. It is latency: with the app's 256-sample callback at 48 kHz
        and the default 10 ms, a control posted when the ring is at its fullest is heard 20-25
        ms later (tests/test_realtime_engine.py::test_real_synth_jump_is_heard_within_30_ms...;
        ``bench/bench_scrub.py`` prints both sides of the trade).
    smoothing_s : time constant of the code's glide to a new target (one pole per hop). The
        synths crossfade frames or grains already; this only takes the edge off a jump, and it
        counts in the latency.
    voices : note voices (the scrub voice comes on top).
    attack_s, release_s : gain ramps of a gate opening / closing (note-on, note-off, start, stop).
    steal_s : fade of a voice stolen for a new note (the new note starts when it ends).
    gain : master gain before the soft limiter (``tanh``: several voices never clip hard).
    max_shift : largest pitch shift a note asks of the synth, in semitones.
    default_pitch : the MIDI pitch a note is shifted from when the sounds at the cursor have no
        pitch label and no f0 can be estimated.
    take_max_s : longest take recorded (memory stays bounded when a take is left running).
    """

    block: int = 128
    lookahead: int = 128
    stall_s: float = 0.010
    smoothing_s: float = 0.005
    voices: int = 4
    attack_s: float = 0.005
    release_s: float = 0.060
    steal_s: float = 0.005
    gain: float = 0.8
    max_shift: float = 24.0
    default_pitch: float = 60.0
    take_max_s: float = 600.0

    def __post_init__(self) -> None:
        if self.block < 1 or self.lookahead < 0 or self.voices < 1:
            raise ConfigError("block and voices must be at least 1, lookahead at least 0")
        if min(self.smoothing_s, self.attack_s, self.release_s, self.steal_s, self.stall_s) < 0 or self.take_max_s <= 0:
            raise ConfigError("smoothing, fade and take times must not be negative")


class ControlRecord(NamedTuple):
    """One applied control: its sequence number, kind, and stream samples posted at / applied at."""

    seq: int
    kind: str
    posted: int
    applied: int


@dataclass
class Take:
    """What the engine played while a take was recording.

    y : [shape=(n,), dtype=float32] at ``sr``; path : [shape=(m, 3)] (stream sample, x, y) of the
    cursor at each hop: the gesture, to keep as a morph path.
    """

    y: np.ndarray
    sr: int
    path: np.ndarray
    full: bool = False  # take_max_s was reached: the take stopped recording there


class _TakeStop:
    """A :meth:`PlayEngine.stop_take` in the inbox: the audio side ends the take, leaves its chunks
    here and sets ``done``, so only the audio side ever touches a running take."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.chunks: list = []
        self.full = False


@dataclass
class _PitchCache:
    """Reference pitches (f0, MIDI) of one field's points, estimated by the engine's pitch worker."""

    field: PositionField
    values: dict[int, float] = dc_field(default_factory=dict)  # row -> pitch (written by the worker only)
    asked: set[int] = dc_field(default_factory=set)


@dataclass
class _Voice:
    synth: BlockSynth
    state: str = "idle"  # idle | on | release | steal
    gain: float = 0.0  # current envelope
    velocity: float = 1.0
    shift: float = 0.0
    pitch: int | None = None
    age: int = 0
    z: np.ndarray | None = None
    pending: tuple[int, float, float] | None = None  # (pitch, velocity gain, shift) after a steal


def velocity_gain(velocity: int) -> float:
    """MIDI velocity 0..127 -> linear gain: the square law (about 40 dB over the range)."""
    return (min(max(int(velocity), 0), 127) / 127.0) ** 2


class PlayEngine:
    """Voices that follow the map cursor (or a live code), mixed into one stream at the model rate.

    Parameters
    ----------
    synth_factory : () -> BlockSynth
        A new synthesiser (``models.realtime.synth``'s protocol: ``sr``, ``hop``, ``reset()``,
        ``step(code, level=, shift=) -> hop samples``); one per voice, made once here.
    sr : the model's sample rate (the synths').
    config : EngineConfig
    """

    def __init__(self, synth_factory: Callable[[], BlockSynth], *, sr: int,
                 config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.sr = int(sr)
        self._factory = synth_factory
        self._voices = [_Voice(synth_factory()) for _ in range(self.config.voices + 1)]  # [0]: scrub
        hop = int(self._voices[0].synth.hop)
        if hop < 1 or int(self._voices[0].synth.sr) != self.sr:
            raise ConfigError(f"the synth runs at {self._voices[0].synth.sr} Hz with hop {hop}; the engine at {self.sr} Hz")
        self.hop = hop
        self._alpha = 1.0 if self.config.smoothing_s <= 0 else 1.0 - math.exp(-hop / (self.config.smoothing_s * self.sr))
        self._ramp = np.arange(1, hop + 1, dtype=np.float64)
        self._rates = {k: 1.0 / max(1.0, s * self.sr) for k, s in
                       (("on", self.config.attack_s), ("release", self.config.release_s), ("steal", self.config.steal_s))}
        self._inbox: deque[tuple[int, int, int | None, str, tuple]] = deque()
        self._due: list[tuple[int, int, int, str, tuple]] = []  # heap (at, seq, posted, kind, args)
        self._seq = itertools.count()
        self.control_log: deque[ControlRecord] = deque(maxlen=4096)
        # state the audio side owns (only process() changes it)
        self._field: PositionField | None = None
        self._xy: tuple[float, float] | None = None
        self._code_mode = False
        self._target: np.ndarray | None = None
        self._level: float | None = None
        self._ages = itertools.count(1)
        self._synth_pos = 0  # samples synthesised (the start of the next hop)
        self._out_pos = 0  # samples handed out by process()
        self._hop_buf = np.zeros(hop, np.float32)
        self._hop_used = hop
        self._take: list | None = None
        self._take_len = 0
        self._take_full = False
        # what callers last asked for (read by the GUI, MIDI and OSC sides)
        self._posted_field: PositionField | None = None
        self._posted_xy: tuple[float, float] | None = None
        self._producer: Producer | None = None
        # reference pitches of unlabelled maps: estimated per map point on a worker thread, so a
        # note never waits for a render (see reference_pitch); never touched by process()
        self._pitches: _PitchCache | None = None
        self._pitch_jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pitch_ready = threading.Condition()
        self._pitch_thread: threading.Thread | None = None
        self._latent_dim = int(getattr(self._voices[0].synth, "latent_dim", 0)) or None

    # --- controls: any thread ---------------------------------------------------------------------
    def _post(self, kind: str, args: tuple = (), at: int | None = None, posted: int | None = None) -> int:
        seq = next(self._seq)
        self._inbox.append((seq, self._out_pos if posted is None else posted, at, kind, args))
        return seq

    def set_field(self, field: PositionField | None, *, at: int | None = None) -> int:
        """The map the cursor reads codes from (None: the cursor plays nothing).

        Raises
        ------
        ConfigError
            The map's codes do not fit the synth's latent (here, in the caller's thread: the audio
            side never sees a map it cannot play).
        """
        if field is not None and self._latent_dim is not None and field.latent_dim != self._latent_dim:
            raise ConfigError(f"the map's codes have {field.latent_dim} values, the synth takes {self._latent_dim}")
        posted = self._out_pos
        self._posted_field = field
        self._pitches = None if field is None else _PitchCache(field)
        if field is not None and self._posted_xy is not None:
            self._want_pitch(self._posted_xy)
        return self._post("field", (field,), at, posted)

    def set_xy(self, x: float, y: float, *, at: int | None = None) -> int:
        """Move the cursor (map coordinates); the voices glide to the code there.

        at : the stream sample to apply it at (scripted gestures, tests); None: the next hop.
        Returns the message's sequence number (its :class:`ControlRecord` in ``control_log``).
        """
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ConfigError(f"a map position must be finite, got ({x}, {y})")
        posted = self._out_pos
        self._posted_xy = (x, y)
        self._want_pitch((x, y))
        return self._post("xy", (x, y), at, posted)

    def set_code(self, code: np.ndarray | None, *, level: float | None = None, at: int | None = None) -> int:
        """Drive the voices with a code directly (live input, resynthesis); None: back to the cursor."""
        c = None if code is None else np.array(code, dtype=np.float64).reshape(-1)
        if c is not None and not np.isfinite(c).all():
            raise ConfigError("a code to play must be finite")
        if c is not None and self._latent_dim is not None and c.size != self._latent_dim:
            raise ConfigError(f"a code of {c.size} values given to a synth of a {self._latent_dim}-value latent")
        return self._post("code", (c, level), at)

    def start(self, *, at: int | None = None) -> int:
        """Open the scrub voice's gate: it sounds the cursor's code until :meth:`stop`."""
        return self._post("start", (), at)

    def stop(self, *, at: int | None = None) -> int:
        """Close the scrub voice's gate (a release fade)."""
        return self._post("stop", (), at)

    def note_on(self, pitch: int, velocity: int, *, at: int | None = None) -> int:
        """Play the sound at the cursor at MIDI ``pitch`` (velocity 0 is a note-off, as in MIDI).

        The shift is ``pitch`` minus the reference pitch of the sound at the cursor
        (:meth:`reference_pitch`): a label or a cached estimate, looked up here in the caller's
        thread (microseconds), never estimated at note time.
        """
        posted = self._out_pos  # stamped before any work: the log sees what the caller waited
        pitch = int(pitch)
        if not 0 <= pitch <= 127:
            raise ConfigError(f"a MIDI pitch is 0..127, got {pitch}")
        if int(velocity) <= 0:
            return self.note_off(pitch, at=at)
        ref = self.reference_pitch()
        shift = float(np.clip(pitch - ref, -self.config.max_shift, self.config.max_shift))
        return self._post("note_on", (pitch, velocity_gain(velocity), shift), at, posted)

    def note_off(self, pitch: int, *, at: int | None = None) -> int:
        return self._post("note_off", (int(pitch),), at)

    def all_notes_off(self, *, at: int | None = None) -> int:
        return self._post("all_off", (), at)

    def start_take(self, *, at: int | None = None) -> int:
        """Record what the engine plays from now on (see :meth:`stop_take`)."""
        return self._post("take", (), at)

    def stop_take(self, *, timeout: float = 1.0) -> Take:
        """The take recorded since :meth:`start_take` (empty when none was running).

        The stop is a control like the others, in order after a :meth:`start_take` still queued
        (a quick start and stop leaves no take running): the audio side ends the take at its next
        hop and hands it back, so no thread but the audio side touches a running take. With the
        producer's thread running this waits for that hop (at most ``timeout`` seconds; past it,
        the take up to the last hop played is returned and the stop stays queued); with none
        (the offline driver: this thread is the audio side) the stop is applied here.
        """
        stop = _TakeStop()
        self._post("take_stop", (stop,))
        producer = self._producer
        if producer is None or not producer.running:
            self._drain()
        elif not stop.done.wait(timeout):
            return self._take_of(list(self._take or []), self._take_full)
        return self._take_of(stop.chunks, stop.full)

    def _take_of(self, chunks: list, full: bool) -> Take:
        y = np.concatenate([c for _, _, c in chunks]).astype(np.float32) if chunks else np.zeros(0, np.float32)
        path = np.array([(p, *(xy if xy is not None else (np.nan, np.nan))) for p, xy, _ in chunks],
                        dtype=np.float64).reshape(-1, 3)
        return Take(y=y, sr=self.sr, path=path, full=full)

    # --- what the other sides read ------------------------------------------------------------------
    @property
    def field(self) -> PositionField | None:
        """The field last given to :meth:`set_field`."""
        return self._posted_field

    @property
    def cursor(self) -> tuple[float, float] | None:
        """The cursor last given to :meth:`set_xy` (map coordinates)."""
        return self._posted_xy

    @property
    def position(self) -> int:
        """Stream samples handed out so far."""
        return self._out_pos

    @property
    def underruns(self) -> int:
        """Blocks the sound card found short (counted by the :class:`Producer` feeding it)."""
        return 0 if self._producer is None else self._producer.underruns

    @property
    def failure(self) -> BaseException | None:
        """Why the sound stopped: the exception the producer's thread met in :meth:`process` (its
        output then faded to silence), or None while it plays. The GUI polls it."""
        return None if self._producer is None else self._producer.error

    @property
    def active_voices(self) -> int:
        return sum(v.state != "idle" for v in self._voices)

    def _bind(self, producer: Producer) -> None:
        self._producer = producer

    def settle(self, timeout: float | None = None) -> None:
        """Wait until every voice's synth has decoded what it was asked for (a grain synth decodes on
        its own thread): the offline driver's step, so a stream pulled faster than real time sounds
        as if decoding took no time. Never called on the producer's thread."""
        for v in self._voices:
            wait = getattr(v.synth, "wait_decoded", None)
            if wait is not None:
                wait(timeout)

    def reference_pitch(self, xy: Sequence[float] | None = None, *, timeout: float = 0.0) -> float:
        """The MIDI pitch of the sound at ``xy`` (default the cursor), which notes shift from.

        The pitch label of the nearest labelled clip when the field has labels (NSynth's
        ``pitch``); else the median f0 (``librosa.yin``) of 0.25 s of the nearest point's code,
        rendered by a private synth on the engine's pitch worker (asked when the cursor reaches
        the point, kept per point); else, until that estimate exists (waiting up to ``timeout``
        seconds for it: scripts and tests), ``config.default_pitch``. Never estimates in the
        caller's thread: a note on a MIDI thread costs a lookup.
        """
        xy = self._posted_xy if xy is None else (float(xy[0]), float(xy[1]))
        cache = self._pitches
        if cache is None or xy is None:
            return self.config.default_pitch
        labelled = cache.field.pitch_at(xy)
        if labelled is not None:
            return labelled
        row = self._want_pitch(xy, cache)
        if row not in cache.values and timeout > 0:
            with self._pitch_ready:
                self._pitch_ready.wait_for(lambda: row in cache.values, timeout)
        return cache.values.get(row, self.config.default_pitch)

    def _want_pitch(self, xy: tuple[float, float], cache: _PitchCache | None = None) -> int | None:
        """The point nearest ``xy`` whose pitch a note there shifts from; its estimate is asked of
        the pitch worker if the field has no label there and it is not known or asked yet."""
        cache = self._pitches if cache is None else cache
        if cache is None:
            return None
        rows, w = cache.field.members_at(xy)
        row = int(rows[int(np.argmax(w))])
        labelled = cache.field.pitches is not None and np.isfinite(cache.field.pitches[rows]).any()
        if not labelled and row not in cache.values and row not in cache.asked:
            cache.asked.add(row)
            if self._pitch_thread is None:
                self._pitch_thread = threading.Thread(target=_pitch_worker, name="play-pitch", daemon=True,
                                                      args=(weakref.ref(self), self._pitch_jobs))
                weakref.finalize(self, self._pitch_jobs.put, None)  # a dropped engine ends its worker
                self._pitch_thread.start()
            self._pitch_jobs.put((cache, row))
        return row

    def _estimate_pitch(self, probe: BlockSynth, code: np.ndarray, level: float | None) -> float:
        """The median f0 of 0.25 s of ``code`` played by ``probe`` (the pitch worker's own synth)."""
        probe.reset()
        settle = getattr(probe, "wait_decoded", None)  # a grain synth decodes on its own thread
        n = max(4, int(0.25 * self.sr) // self.hop)
        parts = []
        for _ in range(n):
            parts.append(probe.step(code, level=level))
            if settle is not None and len(parts) == 1:
                settle()
                probe.reset()
                parts = [probe.step(code, level=level)]
        y = np.concatenate(parts)
        y = y[len(y) // 4:]  # past the attack of the overlap-add
        frame = 2048
        if len(y) < frame or np.sqrt(np.mean(y ** 2)) < 1e-4:  # silence has no pitch
            return self.config.default_pitch
        f0 = librosa.yin(y, fmin=max(40.0, 2.5 * self.sr / frame), fmax=min(2000.0, self.sr / 4), sr=self.sr,
                         frame_length=frame)
        f0 = f0[np.isfinite(f0)]
        return float(librosa.hz_to_midi(float(np.median(f0)))) if len(f0) else self.config.default_pitch

    # --- the audio side -----------------------------------------------------------------------------
    def process(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the stream [shape=(n,), dtype=float32] at the model rate."""
        n = int(n)
        out = np.empty(n, np.float32)
        done = 0
        while done < n:
            if self._hop_used >= self.hop:
                self._hop_buf = self._step_hop()
                self._hop_used = 0
            k = min(n - done, self.hop - self._hop_used)
            out[done: done + k] = self._hop_buf[self._hop_used: self._hop_used + k]
            self._hop_used += k
            done += k
        self._out_pos += n
        return out

    def _drain(self) -> None:
        while self._inbox:
            seq, posted, at, kind, args = self._inbox.popleft()
            heapq.heappush(self._due, (posted if at is None else int(at), seq, posted, kind, args))
        while self._due and self._due[0][0] <= self._synth_pos:
            _, seq, posted, kind, args = heapq.heappop(self._due)
            self._apply(kind, args)
            self.control_log.append(ControlRecord(seq, kind, posted, self._synth_pos))

    def _retarget(self) -> None:
        if self._code_mode:
            return
        if self._field is None or self._xy is None:
            self._target, self._level = None, None
            return
        self._target, self._level = self._field.code_at(self._xy), self._field.level_at(self._xy)

    def _apply(self, kind: str, args: tuple) -> None:
        scrub = self._voices[0]
        if kind == "field":
            self._field = args[0]
            self._retarget()
        elif kind == "xy":
            self._xy = args
            self._retarget()
        elif kind == "code":
            code, level = args
            self._code_mode = code is not None
            if self._code_mode:
                self._target, self._level = code, level
            else:
                self._retarget()
        elif kind == "start":
            self._gate_on(scrub, None, 1.0, 0.0)
        elif kind == "stop":
            if scrub.state == "on":
                scrub.state = "release"
        elif kind == "note_on":
            self._note_on(*args)
        elif kind == "note_off":
            for v in self._voices[1:]:
                if v.pitch == args[0] and v.state == "on":
                    v.state = "release"
                if v.pending is not None and v.pending[0] == args[0]:
                    v.pending = None
        elif kind == "all_off":
            for v in self._voices:
                v.pending = None
                if v.state == "on":
                    v.state = "release"
        elif kind == "take":
            self._take, self._take_len, self._take_full = [], 0, False
        elif kind == "take_stop":
            stop = args[0]
            stop.chunks, stop.full = self._take or [], self._take_full
            self._take = None
            stop.done.set()

    def _gate_on(self, v: _Voice, pitch: int | None, vel: float, shift: float) -> None:
        if v.state == "idle":
            v.synth.reset()
            v.z = None
        v.state, v.pitch, v.velocity, v.shift, v.age = "on", pitch, vel, shift, next(self._ages)

    def _note_on(self, pitch: int, vel: float, shift: float) -> None:
        notes = self._voices[1:]
        waiting = [v for v in notes if v.pending is not None and v.pending[0] == pitch]
        if waiting:  # the key's note waits for a stolen voice to fade: it starts with the new velocity
            waiting[0].pending = (pitch, vel, shift)
            return
        # a repeated key retriggers its voice, unless that voice is already fading for another
        # note (its pending note must not be dropped: the key is held)
        same = [v for v in notes if v.pitch == pitch and v.state in ("on", "release")]
        free = [v for v in notes if v.state == "idle"]
        if same:
            victim = same[0]
        elif free:
            self._gate_on(free[0], pitch, vel, shift)
            return
        else:  # steal: the quietest releasing voice, else the oldest note; a voice already
            # stolen for a waiting note only when every voice is (its waiting note is then dropped)
            releasing = [v for v in notes if v.state == "release"]
            playing = [v for v in notes if v.state == "on"]
            if releasing:
                victim = min(releasing, key=lambda v: v.gain)
            else:
                victim = min(playing or notes, key=lambda v: v.age)
        victim.state, victim.pending, victim.age = "steal", (pitch, vel, shift), next(self._ages)

    def _envelope(self, v: _Voice) -> np.ndarray:
        """The voice's gain over the next hop [shape=(hop,)]: a linear ramp to its gate's target."""
        target = 1.0 if v.state == "on" else 0.0
        rate = self._rates[v.state if v.state != "idle" else "release"]
        if v.gain < target:
            env = np.minimum(v.gain + rate * self._ramp, target)
        else:
            env = np.maximum(v.gain - rate * self._ramp, target)
        v.gain = float(env[-1])
        return env

    def _step_hop(self) -> np.ndarray:
        self._drain()
        out = np.zeros(self.hop, np.float64)
        target = self._target
        for v in self._voices:
            if v.state == "idle":
                continue
            if target is None:  # nothing to play (no map yet): close quietly
                if v.state == "on":
                    v.state = "release"
                if v.z is None:
                    v.state, v.gain = "idle", 0.0
                    continue
            else:
                v.z = target.copy() if v.z is None else v.z + self._alpha * (target - v.z)
            env = self._envelope(v)
            y = np.asarray(v.synth.step(v.z, level=self._level, shift=v.shift), dtype=np.float64)
            out += y * env * v.velocity
            if v.gain <= 0.0 and v.state in ("release", "steal"):
                pending, v.pending = v.pending, None
                v.state, v.pitch = "idle", None
                if pending is not None:
                    self._gate_on(v, *pending)
        mixed = np.tanh(self.config.gain * out).astype(np.float32)
        take = self._take  # read once: a take is only ever swapped on this side (take_stop)
        if take is not None:
            if self._take_len < self.config.take_max_s * self.sr:
                take.append((self._synth_pos, self._xy, mixed.copy()))
                self._take_len += self.hop
            else:
                self._take_full = True
        self._synth_pos += self.hop
        return mixed


def _pitch_worker(engine_ref: weakref.ref, jobs: queue.SimpleQueue) -> None:
    """The engine's pitch worker: estimates the reference pitch of the map points asked for.

    Holds the engine only while it works (a weak reference between jobs), so a dropped engine
    ends it (its finalizer posts None). One estimate is a 0.25 s render and ``librosa.yin``
    (about 30-60 ms of CPU on the demo), taken from the same cores as the audio: skipping the
    points a gesture has already left keeps it to the points the cursor rests on.
    """
    probe = None  # its own synth: never one of the voices, never the audio thread's
    single_torch_thread()
    lower_thread_priority()  # the sound first: a pitch can come a little later
    while True:
        job = jobs.get()
        while job is not None:  # a scrub passes many points: only the latest matters now (the
            try:                # skipped ones are asked again when the cursor comes back)
                later = jobs.get_nowait()
            except queue.Empty:
                break
            job[0].asked.discard(job[1])
            job = later
        engine = None if job is None else engine_ref()
        if engine is None:
            return
        cache, row = job
        if probe is None:
            probe = engine._factory()
        fld = cache.field
        level = None if fld.levels is None else float(fld.levels[row])
        value = engine._estimate_pitch(probe, fld.codes[row], level)
        with engine._pitch_ready:
            cache.values[row] = value
            engine._pitch_ready.notify_all()
        del engine


def write_take(path: str | Path, take: Take, *, sample_rate: int | None = DAW_RATE, subtype: str = "pcm24",
               normalize: bool = False) -> Path:
    """Write a take as a WAV with the export rules of morphs (models.morphing.export_audio).

    Resampled to ``sample_rate`` (48 kHz by default: a DAW session's rate; None keeps the
    model's), raised-cosine edge fades so it never starts or ends with a click, written all or
    nothing (a failure names the folder and leaves nothing behind).

    Raises
    ------
    ConfigError
        An empty take or a bad option; ExportWriteError when the folder cannot be written.
    """
    if len(take.y) == 0:
        raise ConfigError("the take is empty: start a take, play, then stop it")
    options = ExportOptions(what="sound", subtype=subtype, sample_rate=sample_rate, normalize=normalize)
    (y,), out_sr = finish_signals([take.y], take.sr, options)
    path = Path(path)
    return write_export(path.parent, [(path.name, y)], sr=out_sr, subtype=subtype)[0]
