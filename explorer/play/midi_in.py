"""MIDI in: a keyboard or a DAW plays the map through the play engine (mido, python-rtmidi).

- **note-on** plays the sound at the current map position with the note's pitch and velocity
  (a note-on of velocity 0 is a note-off, as running-status keyboards send it); **note-off**
  releases it (the engine fades it out).
- **two control changes** move the position: x and y, each 0..127 across the map's bounding box
  (:meth:`PositionField.normalised <models.realtime.position.PositionField.normalised>`). Defaults:
  CC 1 (the modulation wheel, which every keyboard has) for x and CC 74 (the first "cutoff"
  knob of most controllers, and MPE's Y axis) for y. **MIDI learn** binds the next CC moved.
- **pitch bend**, optional, moves x or y (its centre is the middle of the map).
- CC 120 / 123 (all sound / all notes off) release the notes this input holds.

Ports never fail the app: where there is no MIDI system (no ALSA sequencer, no CoreMIDI) opening
returns a reason string the app shows, and the map still plays with the mouse and OSC.

Messages arrive on mido's callback thread; :meth:`MidiInput.handle` only calls the engine's
thread-safe controls, and ``on_learned`` is called on that thread too (a Qt app re-emits it through
a queued signal). No Qt here.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from explorer.play import PlayControls, clamp01, to_map
from models.errors import ConfigError

#: the virtual input port a DAW sends to (macOS and Linux; Windows needs loopMIDI)
VIRTUAL_PORT = "latent-explorer"
#: channel-mode messages (all sound off, reset, local control, all notes off, omni, mono, poly):
#: never learned as an axis
MODE_CCS = range(120, 128)
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123

Axis = Literal["x", "y"]


@dataclass(frozen=True, kw_only=True)
class MidiBindings:
    """What moves the position, saved with the app's settings (``models.config.config_to_dict``).

    ``channel`` counts from 0 like mido (0 is "channel 1" on a keyboard); None listens to all.
    ``bend`` is the axis pitch bend moves, or "off".
    """

    x_cc: int = 1
    y_cc: int = 74
    channel: int | None = None
    bend: Literal["off", "x", "y"] = "off"

    def __post_init__(self) -> None:
        for name in ("x_cc", "y_cc"):
            cc = getattr(self, name)
            if isinstance(cc, bool) or not isinstance(cc, int) or not 0 <= cc < MODE_CCS.start:
                raise ConfigError(f"MidiBindings.{name} must be a controller number 0..119, got {cc!r}")
        if self.x_cc == self.y_cc:
            raise ConfigError(f"MidiBindings: x and y cannot share CC {self.x_cc}")
        if self.channel is not None and (isinstance(self.channel, bool) or self.channel not in range(16)):
            raise ConfigError(f"MidiBindings.channel must be 0..15 or None, got {self.channel!r}")
        if self.bend not in ("off", "x", "y"):
            raise ConfigError(f"MidiBindings.bend must be 'off', 'x' or 'y', got {self.bend!r}")

    def bound(self, axis: Axis, cc: int) -> MidiBindings:
        """These bindings with ``cc`` on ``axis``; the other axis takes the old CC if it had ``cc``."""
        mine, other = ("x_cc", "y_cc") if axis == "x" else ("y_cc", "x_cc")
        changes = {mine: cc}
        if getattr(self, other) == cc:
            changes[other] = getattr(self, mine)
        return dataclasses.replace(self, **changes)


def _port_errors() -> tuple[type[BaseException], ...]:
    # What listing or opening a port raises: mido's "unknown port" and a missing ALSA sequencer are
    # OSErrors, python-rtmidi's others (virtual ports on Windows: a RuntimeError) derive from
    # RtMidiError; no backend installed is an ImportError. Anything else is a bug and propagates.
    try:
        from rtmidi import RtMidiError
    except ImportError:
        return (OSError, ImportError)
    return (OSError, ImportError, RtMidiError)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ImportError):
        return f"MIDI is unavailable: {text} (install python-rtmidi)"
    if "ALSA" in text:
        return (f"MIDI is unavailable: {text} (Linux needs the ALSA sequencer, /dev/snd/seq: "
                "load the snd-seq module, or run where a sound system is present)")
    return f"MIDI is unavailable: {text}"


def _default_backend() -> Any:
    # mido's module-level functions use its default backend (python-rtmidi). Imported here so a
    # machine without mido still starts the app (the reason string says so).
    import mido
    return mido


class MidiInput:
    """MIDI messages -> engine calls, plus the port it listens on.

    Parameters
    ----------
    engine : PlayControls
        The play engine (thread-safe controls).
    bindings : MidiBindings
        The CCs that move x and y.
    on_learned : callable, optional
        Called with the new bindings when MIDI learn binds a CC (on the MIDI thread).
    backend : object, optional
        Has mido's ``get_input_names()`` and ``open_input(name, virtual=, callback=)``; default mido's
        own (python-rtmidi). Tests pass a fake.
    """

    def __init__(self, engine: PlayControls, *, bindings: MidiBindings | None = None,
                 on_learned: Callable[[MidiBindings], None] | None = None, backend: Any = None) -> None:
        self._engine = engine
        self._bindings = bindings if bindings is not None else MidiBindings()
        self._on_learned = on_learned
        self._backend = backend
        self._lock = threading.Lock()
        self._learning: Axis | None = None
        self._uv: list[float | None] = [None, None]  # last controller position, None = not yet moved
        self._held: set[int] = set()
        self._port: Any = None
        self.port_name: str | None = None
        #: messages that did nothing: another channel, an unbound CC, no map yet (for a status line)
        self.ignored = 0

    def set_engine(self, engine: PlayControls) -> None:
        """Drive another engine (the app rebuilt it for another model); the port stays open.

        One reference store: atomic under the GIL, so the port's thread sees the old or the new one.
        """
        self._engine = engine

    # -- state the app reads and sets (GUI thread) ------------------------------------------
    @property
    def bindings(self) -> MidiBindings:
        return self._bindings

    def set_bindings(self, bindings: MidiBindings) -> None:
        with self._lock:
            self._bindings = bindings

    @property
    def learning(self) -> Axis | None:
        """The axis the next CC will be bound to, or None."""
        return self._learning

    def learn(self, axis: Axis | None) -> None:
        """Bind the next CC moved to ``axis`` ("x" or "y"); None cancels."""
        if axis not in ("x", "y", None):
            raise ValueError(f"axis must be 'x', 'y' or None, got {axis!r}")
        with self._lock:
            self._learning = axis

    @property
    def held(self) -> frozenset[int]:
        """Pitches this input holds (note-on without its note-off yet)."""
        with self._lock:
            return frozenset(self._held)

    # -- messages (mido's callback thread) ---------------------------------------------------
    def handle(self, msg: Any) -> None:
        """Turn one mido message into engine calls; messages of other types are ignored."""
        kind = msg.type
        channel = getattr(msg, "channel", None)
        b = self._bindings
        if channel is None or (b.channel is not None and channel != b.channel):
            self.ignored += 1
            return
        if kind == "note_on" and msg.velocity > 0:
            with self._lock:
                self._held.add(msg.note)
            self._engine.note_on(int(msg.note), int(msg.velocity))
        elif kind in ("note_off", "note_on"):  # note_on with velocity 0 is a note-off
            with self._lock:
                self._held.discard(msg.note)
            self._engine.note_off(int(msg.note))
        elif kind == "control_change":
            self._control(int(msg.control), int(msg.value))
        elif kind == "pitchwheel" and b.bend != "off":
            # -8192..8191 -> 0..1 with the wheel's rest (0) exactly in the middle of the map
            self._move(b.bend, 0.5 + msg.pitch / (16384.0 if msg.pitch < 0 else 16382.0))
        else:
            self.ignored += 1

    def _control(self, cc: int, value: int) -> None:
        if cc in (ALL_SOUND_OFF, ALL_NOTES_OFF):
            self.release_all()
            return
        learned = None
        with self._lock:
            if self._learning is not None and cc not in MODE_CCS:
                self._bindings = learned = self._bindings.bound(self._learning, cc)
                self._learning = None
            b = self._bindings
        if learned is not None and self._on_learned is not None:
            self._on_learned(learned)
        if cc == b.x_cc:
            self._move("x", value / 127.0)
        elif cc == b.y_cc:
            self._move("y", value / 127.0)
        else:
            self.ignored += 1

    def _move(self, axis: Axis, value: float) -> None:
        field = self._engine.field
        if field is None:  # no map yet: nothing to move over
            self.ignored += 1
            return
        with self._lock:
            # An axis not moved yet starts where the cursor is (or the middle): turning only the
            # x knob must not throw y to an edge. After that, each axis stays where its (absolute)
            # knob is, whatever the other one does.
            if None in self._uv:
                cursor = self._engine.cursor
                start = field.unit(*cursor) if cursor is not None else (0.5, 0.5)
                self._uv = [s if u is None else u for u, s in zip(self._uv, start)]
            self._uv[0 if axis == "x" else 1] = clamp01(value)
            u, v = self._uv
        self._engine.set_xy(*to_map(field, u, v))

    def release_all(self) -> None:
        """Note-off for every note this input holds (all-notes-off, closing the port)."""
        with self._lock:
            held, self._held = sorted(self._held), set()
        for pitch in held:
            self._engine.note_off(pitch)

    # -- ports (GUI thread) -----------------------------------------------------------------
    def input_names(self) -> tuple[list[str], str | None]:
        """The input ports there are, and None; or ``[]`` and the reason there are none."""
        try:
            backend = self._backend if self._backend is not None else _default_backend()
            return list(backend.get_input_names()), None
        except _port_errors() as exc:
            return [], _reason(exc)

    def open(self, name: str) -> str | None:
        """Listen on the input port ``name``; None when it is open, else why not (for the user)."""
        names, reason = self.input_names()
        if reason is not None:
            return reason
        if name not in names:
            listed = ", ".join(repr(n) for n in names) if names else "none"
            return f"no MIDI input named {name!r} (inputs: {listed})"
        return self._open(name, virtual=False)

    def open_virtual(self, name: str = VIRTUAL_PORT) -> str | None:
        """Create a virtual input port ``name`` other programs (a DAW) send to; None or why not."""
        return self._open(name, virtual=True)

    def _open(self, name: str, *, virtual: bool) -> str | None:
        self.close()
        try:
            backend = self._backend if self._backend is not None else _default_backend()
            port = backend.open_input(name, virtual=virtual, callback=self.handle)
        except _port_errors() as exc:
            reason = _reason(exc)
            if virtual and not isinstance(exc, OSError | ImportError):
                reason += " (this system has no virtual MIDI ports: on Windows use loopMIDI)"
            return reason
        self._port, self.port_name = port, name
        return None

    def close(self) -> None:
        """Close the port and release the notes it holds; safe to call twice."""
        port, self._port, self.port_name = self._port, None, None
        if port is not None:
            port.close()
        self.release_all()
