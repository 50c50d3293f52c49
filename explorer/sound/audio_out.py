"""Sound out: one small interface, a sounddevice implementation and a recording sink.

A new sound cuts the old one with a short fade-out while it fades itself in, so switching
sounds never clicks. A sound may also grow while it plays (:meth:`AudioOutput.stream`: a click's
decoding is handed over chunk by chunk, the first as soon as it exists). The mixing is done by :class:`Mixer`, plain numpy that the sounddevice
callback calls and tests call directly. Beside it the callback mixes a *stream source* (the
real-time player's ``models.realtime.producer.Producer``: anything with ``read_into(out)``), set
with ``set_stream_source``. The callback never waits on a lock the GUI holds: the GUI hands
sounds and sources over through a deque and a reference swap. No Qt here.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np

from models.audio import StreamResampler, resample  # the one resampler: one stream serves sounds of any rate

#: samples per sound-card callback (a power of two near 5 ms at 48 kHz)
CALLBACK_BLOCK = 256
#: length of the fade-out of a cut sound and the fade-in of a new one, in seconds
FADE_S = 0.010


class AudioOutput(Protocol):
    """What the app needs from a sound output.

    ``realtime``: whether what is handed over is heard at once (a sound card). Only then does the
    app stream a click's sound while decoding it; a recording sink gets the finished sound.
    """

    realtime: bool

    def play(self, y: np.ndarray, sr: int) -> None: ...
    def stop(self) -> None: ...
    @property
    def is_playing(self) -> bool: ...
    def close(self) -> None: ...
    def set_stream_source(self, source: StreamSource | None) -> None: ...
    def stream(self, sr: int) -> SoundStream: ...


class SoundStream(Protocol):
    """A sound handed over in blocks while it is made: ``append`` the blocks in order (any thread,
    never blocks), then ``close``. It starts playing (cutting the previous sound) at its first block."""

    def append(self, y: np.ndarray) -> None: ...
    def close(self) -> None: ...


class StreamSource(Protocol):
    """A stream the output pulls (the real-time player's producer), at the output's rate ``sr``."""

    def read_into(self, out: np.ndarray) -> None: ...


class RecordingSink:
    """Records what would be played: tests, and machines with no sound card.

    ``played`` is a list of ``(y, sr)``; ``stops`` counts calls to ``stop``. A stream source is
    pulled only when a test drives it (:meth:`drive`), as a sound card's callback would;
    ``streamed`` holds what it produced, at ``sr``.
    """

    realtime = False

    def __init__(self, *, sr: int = 48000) -> None:
        self.played: list[tuple[np.ndarray, int]] = []
        self.stops = 0
        self.sr = int(sr)
        self.source: StreamSource | None = None
        self.streamed: list[np.ndarray] = []

    def set_stream_source(self, source: StreamSource | None) -> None:
        self.source = source

    def drive(self, n: int, *, block: int = 512) -> np.ndarray:
        """Pull ``n`` samples from the stream source in callback-sized blocks; returns them (and keeps them)."""
        out = np.zeros(int(n), np.float32)
        if self.source is not None:
            for i in range(0, len(out), block):
                self.source.read_into(out[i: i + block])
        self.streamed.append(out)
        return out

    def play(self, y: np.ndarray, sr: int) -> None:
        self.played.append((np.array(y, dtype=np.float32, copy=True), int(sr)))

    def stream(self, sr: int) -> SoundStream:
        """A stream whose joined blocks land in ``played`` when it is closed."""
        return _RecordedStream(self, int(sr))

    def stop(self) -> None:
        self.stops += 1

    @property
    def is_playing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _RecordedStream:
    def __init__(self, sink: RecordingSink, sr: int) -> None:
        self._sink, self._sr, self.blocks = sink, sr, []

    def append(self, y: np.ndarray) -> None:
        self.blocks.append(np.array(y, dtype=np.float32, copy=True).reshape(-1))

    def close(self) -> None:
        self._sink.played.append((np.concatenate(self.blocks or [np.zeros(0, np.float32)]), self._sr))


class GrowingSound:
    """A Mixer entry whose samples arrive in blocks while it plays.

    ``append``/``close`` come from the thread that makes the sound, ``read`` from the audio
    callback; the blocks cross through a deque (atomic append/popleft), as the Mixer's commands do.
    A block that is late (the callback ran past what has arrived) leaves silence, not a wait.
    The first ``len(fade_in)`` samples are multiplied by ``fade_in`` as they are read.
    """

    def __init__(self, fade_in: np.ndarray) -> None:
        self._incoming: deque[np.ndarray] = deque()
        self._closed = False
        self._y = np.zeros(0, np.float32)
        self._pos = 0
        self._read = 0  # samples read so far (the fade-in's position)
        self._fade_in = fade_in

    def append(self, y: np.ndarray) -> None:
        self._incoming.append(np.array(y, dtype=np.float32, copy=True).reshape(-1))

    def close(self) -> None:
        self._closed = True

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` next samples (fewer when they have not arrived yet, or at the end)."""
        if self._incoming and self._pos + n > len(self._y):
            parts = [self._y[self._pos:]]
            while self._incoming:
                parts.append(self._incoming.popleft())
            self._y, self._pos = np.concatenate(parts), 0
        chunk = self._y[self._pos: self._pos + n].copy()
        self._pos += len(chunk)
        if self._read < len(self._fade_in):
            m = min(len(chunk), len(self._fade_in) - self._read)
            chunk[:m] *= self._fade_in[self._read: self._read + m]
        self._read += len(chunk)
        return chunk

    @property
    def finished(self) -> bool:
        # closed is read first: every append came before close, so the deque then holds them all
        return self._closed and not self._incoming and self._pos >= len(self._y)


class Mixer:
    """The current sound plus sounds fading out; ``render(n)`` gives the next ``n`` samples.

    ``play``/``stream``/``stop`` come from other threads, ``render`` from the audio callback:
    they hand commands over through a deque (atomic append/popleft), so the callback never waits
    on a lock the GUI holds; only ``render`` touches the sounds themselves. Every sound is a
    :class:`GrowingSound`: a played one arrives whole and closed.
    """

    def __init__(self, sr: int, *, fade_s: float = FADE_S) -> None:
        self.sr = int(sr)
        self.fade = max(1, int(round(fade_s * self.sr)))
        self._up = np.linspace(0.0, 1.0, self.fade, dtype=np.float32)
        self._down = np.linspace(1.0, 0.0, self.fade, dtype=np.float32)
        self._commands: deque[GrowingSound | None] = deque()  # a sound to play, or None: stop
        self._current: GrowingSound | None = None
        self._fading: list[tuple[np.ndarray, int]] = []

    def _fade_out_current(self) -> None:
        if self._current is None:
            return
        tail = self._current.read(self.fade)
        tail *= self._down[: len(tail)]
        self._fading.append((tail, 0))
        self._current = None

    def play(self, y: np.ndarray) -> None:
        sound = self.stream()
        sound.append(y)
        sound.close()

    def stream(self) -> GrowingSound:
        """A sound that starts now (cutting the current one) and grows by ``append`` while it plays."""
        sound = GrowingSound(self._up)
        self._commands.append(sound)
        return sound

    def stop(self) -> None:
        self._commands.append(None)

    @property
    def is_playing(self) -> bool:
        # reads of references: a racy but safe snapshot for the GUI
        return bool(self._commands) or self._current is not None or bool(self._fading)

    def render(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        self.render_into(out)
        return out

    def render_into(self, out: np.ndarray) -> None:
        """Add the next ``len(out)`` samples into ``out`` (the callback's buffer)."""
        n = len(out)
        while self._commands:
            sound = self._commands.popleft()
            self._fade_out_current()
            if sound is not None:
                self._current = sound
        if self._current is not None:
            chunk = self._current.read(n)
            out[: len(chunk)] += chunk
            if self._current.finished:
                self._current = None
        if self._fading:
            still = []
            for y, pos in self._fading:
                chunk = y[pos: pos + n]
                out[: len(chunk)] += chunk
                if pos + len(chunk) < len(y):
                    still.append((y, pos + len(chunk)))
            self._fading = still


class SoundDeviceOutput:
    """Plays through the default output device with one always-open stream."""

    realtime = True

    def __init__(self, sd, *, device: int | str | None = None) -> None:  # noqa: ANN001 - module
        self._sd = sd
        info = sd.query_devices(device, kind="output")
        self.device_name = str(info["name"])
        self.sr = int(info["default_samplerate"]) or 48000
        self._mixer = Mixer(self.sr)
        self._source: StreamSource | None = None
        self._scratch = np.zeros(4096, np.float32)  # the stream source's block, reused
        #: callbacks PortAudio flagged ``output_underflow`` (the card ran dry before the callback
        #: returned: a Python callback late behind the GIL); the ring's own count is the source's
        self.underflows = 0
        self._stream = sd.OutputStream(
            samplerate=self.sr, channels=1, dtype="float32", device=device, callback=self._callback,
            # a fixed, small callback block: the live player's latency is this block plus its
            # short ring (models/realtime/engine.py), 5 ms at 48 kHz
            blocksize=CALLBACK_BLOCK, latency="low",
        )
        self._stream.start()

    def _callback(self, outdata, frames, time, status) -> None:  # noqa: ANN001 - PortAudio's
        if status.output_underflow:
            self.underflows += 1
        out = outdata[:, 0]
        out[:] = 0.0
        self._mixer.render_into(out)
        source = self._source  # one reference read: set_stream_source swaps it atomically
        if source is not None:
            if len(self._scratch) < frames:  # only if PortAudio asks for more than ever before
                self._scratch = np.zeros(frames, np.float32)
            buf = self._scratch[:frames]
            source.read_into(buf)
            out += buf

    def set_stream_source(self, source: StreamSource | None) -> None:
        """Mix ``source`` (at this output's ``sr``) into every callback from now on; None removes it."""
        self._source = source

    def play(self, y: np.ndarray, sr: int) -> None:
        self._mixer.play(resample(y, sr, self.sr))

    def stream(self, sr: int) -> SoundStream:
        return ResampledStream(self._mixer, sr)

    def stop(self) -> None:
        self._mixer.stop()

    @property
    def is_playing(self) -> bool:
        return self._mixer.is_playing

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class ResampledStream:
    """A :class:`SoundStream` at ``sr`` into a Mixer at its own rate, resampled block by block.

    The Mixer's entry is made at the first block, so the previous sound keeps playing until there
    is something to replace it with.
    """

    def __init__(self, mixer: Mixer, sr: int) -> None:
        self._mixer = mixer
        self._resampler = StreamResampler(int(sr), mixer.sr)
        self._sound: GrowingSound | None = None

    def append(self, y: np.ndarray) -> None:
        if self._sound is None:
            self._sound = self._mixer.stream()
        self._sound.append(self._resampler.process(y))

    def close(self) -> None:
        if self._sound is None:
            self._sound = self._mixer.stream()
        self._sound.append(self._resampler.process(np.zeros(0, np.float32), last=True))
        self._sound.close()


def make_output(*, force_sink: bool = False) -> tuple[AudioOutput, str]:
    """The sound card when there is one, else a recording sink; plus a status-bar message.

    Missing PortAudio raises ``OSError`` on import; PortAudio without a device raises
    ``sounddevice.PortAudioError`` (or ``ValueError`` for "no output device") on query.
    """
    if force_sink:
        return RecordingSink(), "Sound off (recording sink)"
    try:
        import sounddevice as sd
    except OSError as exc:
        return RecordingSink(), f"Sound off: PortAudio is not installed ({exc})"
    try:
        out = SoundDeviceOutput(sd)
    except (sd.PortAudioError, ValueError) as exc:
        return RecordingSink(), f"Sound off: no audio output device ({exc})"
    return out, f"Sound: {out.device_name}, {out.sr} Hz"
