"""Sound out: one small interface, a sounddevice implementation and a recording sink.

A new sound cuts the old one with a short fade-out while it fades itself in, so switching
sounds never clicks. The mixing is done by :class:`Mixer`, plain numpy that the sounddevice
callback calls and tests call directly. No Qt here.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from models.audio import resample  # the one resampler: one stream serves sounds of any rate

#: length of the fade-out of a cut sound and the fade-in of a new one, in seconds
FADE_S = 0.010


class AudioOutput(Protocol):
    """What the app needs from a sound output."""

    def play(self, y: np.ndarray, sr: int) -> None: ...
    def stop(self) -> None: ...
    @property
    def is_playing(self) -> bool: ...
    def close(self) -> None: ...


class RecordingSink:
    """Records what would be played: tests, and machines with no sound card.

    ``played`` is a list of ``(y, sr)``; ``stops`` counts calls to ``stop``.
    """

    def __init__(self) -> None:
        self.played: list[tuple[np.ndarray, int]] = []
        self.stops = 0

    def play(self, y: np.ndarray, sr: int) -> None:
        self.played.append((np.array(y, dtype=np.float32, copy=True), int(sr)))

    def stop(self) -> None:
        self.stops += 1

    @property
    def is_playing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class Mixer:
    """The current sound plus sounds fading out; ``render(n)`` gives the next ``n`` samples.

    Thread-safe: ``play``/``stop`` come from the GUI thread, ``render`` from the audio callback.
    """

    def __init__(self, sr: int, *, fade_s: float = FADE_S) -> None:
        self.sr = int(sr)
        self.fade = max(1, int(round(fade_s * self.sr)))
        self._lock = threading.Lock()
        self._current: tuple[np.ndarray, int] | None = None
        self._fading: list[tuple[np.ndarray, int]] = []

    def _fade_out_current(self) -> None:
        if self._current is None:
            return
        y, pos = self._current
        tail = y[pos: pos + self.fade].copy()
        tail *= np.linspace(1.0, 0.0, self.fade, dtype=np.float32)[: len(tail)]
        self._fading.append((tail, 0))
        self._current = None

    def play(self, y: np.ndarray) -> None:
        y = np.array(y, dtype=np.float32, copy=True)
        n = min(self.fade, len(y))
        y[:n] *= np.linspace(0.0, 1.0, self.fade, dtype=np.float32)[:n]
        with self._lock:
            self._fade_out_current()
            self._current = (y, 0)

    def stop(self) -> None:
        with self._lock:
            self._fade_out_current()

    @property
    def is_playing(self) -> bool:
        with self._lock:
            return self._current is not None or bool(self._fading)

    def render(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            if self._current is not None:
                y, pos = self._current
                chunk = y[pos: pos + n]
                out[: len(chunk)] += chunk
                pos += len(chunk)
                self._current = (y, pos) if pos < len(y) else None
            still = []
            for y, pos in self._fading:
                chunk = y[pos: pos + n]
                out[: len(chunk)] += chunk
                if pos + len(chunk) < len(y):
                    still.append((y, pos + len(chunk)))
            self._fading = still
        return out


class SoundDeviceOutput:
    """Plays through the default output device with one always-open stream."""

    def __init__(self, sd, *, device: int | str | None = None) -> None:  # noqa: ANN001 - module
        self._sd = sd
        info = sd.query_devices(device, kind="output")
        self.device_name = str(info["name"])
        self.sr = int(info["default_samplerate"]) or 48000
        self._mixer = Mixer(self.sr)
        self._stream = sd.OutputStream(
            samplerate=self.sr, channels=1, dtype="float32", device=device, callback=self._callback
        )
        self._stream.start()

    def _callback(self, outdata, frames, time, status) -> None:  # noqa: ANN001 - PortAudio's
        outdata[:, 0] = self._mixer.render(frames)

    def play(self, y: np.ndarray, sr: int) -> None:
        self._mixer.play(resample(y, sr, self.sr))

    def stop(self) -> None:
        self._mixer.stop()

    @property
    def is_playing(self) -> bool:
        return self._mixer.is_playing

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


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
