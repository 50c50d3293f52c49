"""The ring between a :class:`~models.realtime.engine.PlayEngine` and the sound card's callback.

A thread pulls the engine block by block, resamples to the card's rate and keeps a preallocated
ring a little ahead of the card; the callback only copies out of it. No Qt.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time

import numpy as np

from models.audio import StreamResampler
from models.errors import ConfigError
from models.realtime.engine import PlayEngine
from models.threads import realtime_switching, single_torch_thread


class Producer:
    """Keeps a preallocated ring ``lookahead`` device samples ahead of the sound card's callback.

    The thread (``start``) pulls ``engine.process(config.block)``, resamples it to the device rate
    (:class:`models.audio.StreamResampler`, libsamplerate) and writes it into the ring;
    :meth:`read_into` is what the audio callback calls: a copy out of the ring, no allocation, no
    lock. One producer and one consumer: each index is written by one side only (the GIL makes
    the int stores atomic).

    The callback keeps ``fade`` samples in reserve: a block the ring cannot fill while leaving
    that reserve counts as an underrun, hands out what is there and fades out over the reserve,
    so the fade always has material (even when the ring is empty but for it) and a late
    producer never clicks; the output stays silent until a whole block and a reserve are ready
    again, and then fades in. A failure in :meth:`PlayEngine.process` on the producer's thread
    is kept in :attr:`error` and ends the thread: the ring plays out and fades to silence.

    Parameters
    ----------
    engine : PlayEngine
    device_sr : the sound card's rate (default the engine's).
    lookahead : device samples kept ready (default ``engine.config.lookahead`` at the device rate;
        raised to the card's block plus a margin (``EngineConfig.stall_s``) and the reserve at
        the first callback).
    max_read : the largest block the callback asks for (sizes the ring).
    fade_s : the reserve and the length of the fades out and in.
    card_block : the callback's block when known (``explorer.sound.audio_out.CALLBACK_BLOCK``):
        the lookahead covers it from the start, so the first callback finds a block and a
        reserve ready (else the first read of each larger size underruns once, raising it).
    """

    def __init__(self, engine: PlayEngine, *, device_sr: int | None = None, lookahead: int | None = None,
                 max_read: int = 4096, fade_s: float = 0.002, card_block: int | None = None) -> None:
        self.engine = engine
        self.device_sr = int(device_sr or engine.sr)
        self.ratio = self.device_sr / engine.sr
        self.block = int(engine.config.block)
        self.lookahead = int(math.ceil(engine.config.lookahead * self.ratio)) if lookahead is None else int(lookahead)
        self._resampler = StreamResampler(engine.sr, self.device_sr)
        self._largest_read = 0
        self._margin = max(1, self.lookahead // 4, int(round(engine.config.stall_s * self.device_sr)))
        self.fade = max(2, int(round(fade_s * self.device_sr)))
        if card_block:
            self._largest_read = int(card_block)
            self.lookahead = max(self.lookahead, int(card_block) + self._margin + self.fade)
        need = self.lookahead + int(math.ceil(self.block * self.ratio)) + 64 + 2 * int(max_read) + self.fade
        cap = 1 << max(10, (2 * need - 1).bit_length())
        self._ring = np.zeros(cap, np.float32)
        self._cap = cap
        self._w = 0  # device samples written (the producer's only)
        self._r = 0  # device samples read (the consumer's only)
        self.underruns = 0
        self._down = np.linspace(1.0, 0.0, self.fade + 1, dtype=np.float32)[1:]
        self._up = np.linspace(0.0, 1.0, self.fade + 1, dtype=np.float32)[1:]
        self._faded = False
        self.step_times = np.zeros(1 << 16)  # seconds per engine pull + resample (a ring: steps % len)
        self.steps = 0
        self._wake = threading.Event()
        self._ready = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._switching: contextlib.AbstractContextManager | None = None
        engine._bind(self)

    @property
    def fill(self) -> int:
        """Device samples ready to read."""
        return self._w - self._r

    @property
    def position(self) -> int:
        """Device samples the callback has read (the sound card's stream clock)."""
        return self._r

    @property
    def running(self) -> bool:
        """Whether the producer's thread is pulling the engine (False before start, after close or a failure)."""
        t = self._thread
        return t is not None and t.is_alive() and self._running

    def fill_up(self) -> int:
        """The offline driver (tests, scripts; the thread's loop without its timing): pull from the
        engine until ``lookahead`` samples are ready, letting the synths' decode threads finish
        before each pull (:meth:`PlayEngine.settle`), so the stream does not depend on how fast
        they ran. Returns the pulls made."""
        return self._fill(settle=True)

    def _fill(self, *, settle: bool) -> int:
        pulls = 0
        while self._w - self._r < max(self.lookahead, 1):
            if settle:
                self.engine.settle(timeout=60.0)
            t0 = time.perf_counter()
            y = self._resampler.process(self.engine.process(self.block))
            self.step_times[self.steps % len(self.step_times)] = time.perf_counter() - t0
            self.steps += 1
            pulls += 1
            n = len(y)
            if n == 0:
                continue
            if n > self._cap - (self._w - self._r):
                raise ConfigError("the producer's ring is too small for one block")
            i = self._w % self._cap
            first = min(n, self._cap - i)
            self._ring[i: i + first] = y[:first]
            self._ring[: n - first] = y[first:]
            self._w += n
        with self._ready:
            self._ready.notify_all()
        return pulls

    def read_into(self, out: np.ndarray) -> None:
        """Fill ``out`` [shape=(frames,)] (the callback's buffer): a copy only; never waits."""
        n = len(out)
        if n > self._largest_read:  # the card's block: the ring keeps that and the reserve ready
            self._largest_read = n
            self.lookahead = max(self.lookahead, n + self._margin + self.fade)
        have = self._w - self._r
        short = have < n + self.fade
        if not short:
            k, m = n, 0  # a whole block, the reserve left behind
        elif self._faded:
            k, m = 0, 0  # still silent: wait for a block and a reserve
        else:  # fade out over the reserve (a normal read always leaves one), after what comes before it
            m = min(have, self.fade, n)
            k = min(have - m, n - m)
        got = k + m
        i = self._r % self._cap
        first = min(got, self._cap - i)
        out[:first] = self._ring[i: i + first]
        out[first:got] = self._ring[: got - first]
        if not short and self._faded:  # back after an underrun: fade in
            out[: self.fade] *= self._up[: min(n, self.fade)]
            self._faded = False
        if short:
            self.underruns += 1
            if m:
                out[k: got] *= self._down[self.fade - m:]
            out[got:] = 0.0
            self._faded = True
        self._r += got
        # wakes the producer at once rather than at its next poll: Event.set takes the Event's
        # own lock, which only the producer's wait holds, between two checks (never during work)
        self._wake.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block (a test's or bench's consumer, never the sound card's) until ``lookahead`` is ready."""
        with self._ready:
            return self._ready.wait_for(lambda: self._w - self._r >= self.lookahead or not self._running, timeout)

    def start(self) -> None:
        if self._thread is not None:
            return
        # the card's callback waits for the GIL this thread holds: hand it over every 0.5 ms
        self._switching = realtime_switching()
        self._switching.__enter__()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="play-producer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = self.block / self.engine.sr
        single_torch_thread()  # a frame model decodes on this thread
        try:
            while self._running:
                self._fill(settle=False)
                self._wake.wait(timeout=period / 2)
                self._wake.clear()
        except BaseException as exc:  # noqa: BLE001 - kept for the GUI (PlayEngine.failure); the ring fades out
            self.error = exc
            self._running = False
            with self._ready:
                self._ready.notify_all()

    def close(self) -> None:
        self._running = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        switching, self._switching = self._switching, None
        if switching is not None:
            switching.__exit__(None, None, None)
