"""MIDI in: injected mido messages become the right engine calls; ports fail with a reason, never raise."""

from __future__ import annotations

import mido
import numpy as np
import pytest
import rtmidi

from explorer.play.midi_in import VIRTUAL_PORT, MidiBindings, MidiInput
from models.config import config_from_dict, config_to_dict
from models.errors import ConfigError
from models.realtime.engine import EngineConfig, PlayEngine
from models.realtime.position import PositionField


class BoxField:
    """normalised() onto the box [-2, 6] x [10, 14]: an affine map like PositionField's."""

    def normalised(self, u: float, v: float) -> tuple[float, float]:
        return -2.0 + 8.0 * u, 10.0 + 4.0 * v

    def unit(self, x: float, y: float) -> tuple[float, float]:
        return min(1.0, max(0.0, (x + 2.0) / 8.0)), min(1.0, max(0.0, (y - 10.0) / 4.0))


class FakeEngine:
    """Records the controls it is given, as the play engine would receive them."""

    def __init__(self, field: BoxField | None = None, cursor: tuple[float, float] | None = None) -> None:
        self.calls: list[tuple] = []
        self.field = field
        self.cursor = cursor

    def set_xy(self, x: float, y: float) -> None:
        self.calls.append(("set_xy", x, y))

    def start(self) -> None:
        self.calls.append(("start",))

    def stop(self) -> None:
        self.calls.append(("stop",))

    def note_on(self, pitch: int, velocity: int) -> None:
        self.calls.append(("note_on", pitch, velocity))

    def note_off(self, pitch: int) -> None:
        self.calls.append(("note_off", pitch))


class FakePort:
    def __init__(self, name: str, callback) -> None:  # noqa: ANN001
        self.name, self.callback, self.closed = name, callback, False

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    """mido's backend surface: a keyboard named "Keys", and optionally no virtual ports."""

    def __init__(self, *, virtual_ok: bool = True) -> None:
        self.virtual_ok = virtual_ok
        self.ports: list[FakePort] = []

    def get_input_names(self) -> list[str]:
        return ["Keys"]

    def open_input(self, name: str, virtual: bool = False, callback=None) -> FakePort:  # noqa: ANN001
        if virtual and not self.virtual_ok:
            # what python-rtmidi raises on Windows (WinMM)
            raise rtmidi.UnsupportedOperationError("Virtual ports are not supported by the Windows MultiMedia API.")
        if not virtual and name not in self.get_input_names():
            raise OSError(f"unknown port {name!r}")
        self.ports.append(FakePort(name, callback))
        return self.ports[-1]


def test_note_on_plays_and_note_off_releases() -> None:
    engine = FakeEngine(BoxField())
    midi = MidiInput(engine)
    midi.handle(mido.Message("note_on", note=60, velocity=100))
    midi.handle(mido.Message("note_on", note=64, velocity=30))
    assert midi.held == {60, 64}
    midi.handle(mido.Message("note_off", note=60, velocity=64))
    assert engine.calls == [("note_on", 60, 100), ("note_on", 64, 30), ("note_off", 60)]
    assert midi.held == {64}


def test_note_on_with_velocity_zero_is_a_note_off() -> None:
    engine = FakeEngine(BoxField())
    midi = MidiInput(engine)
    midi.handle(mido.Message("note_on", note=72, velocity=90))
    midi.handle(mido.Message("note_on", note=72, velocity=0))
    assert engine.calls == [("note_on", 72, 90), ("note_off", 72)]
    assert midi.held == set()


def test_all_notes_off_releases_what_is_held() -> None:
    engine = FakeEngine(BoxField())
    midi = MidiInput(engine)
    for note in (48, 55):
        midi.handle(mido.Message("note_on", note=note, velocity=80))
    midi.handle(mido.Message("control_change", control=123, value=0))
    assert engine.calls[2:] == [("note_off", 48), ("note_off", 55)]
    assert midi.held == set()


def test_default_ccs_move_x_and_y_across_the_box() -> None:
    engine = FakeEngine(BoxField())
    midi = MidiInput(engine)
    b = MidiBindings()
    midi.handle(mido.Message("control_change", control=b.x_cc, value=127))
    # y never moved and there is no cursor: it starts in the middle of the box
    assert engine.calls[-1] == ("set_xy", 6.0, 12.0)
    midi.handle(mido.Message("control_change", control=b.y_cc, value=0))
    assert engine.calls[-1] == ("set_xy", 6.0, 10.0)  # x stays where its knob is
    midi.handle(mido.Message("control_change", control=b.x_cc, value=0))
    assert engine.calls[-1] == ("set_xy", -2.0, 10.0)
    midi.handle(mido.Message("control_change", control=7, value=100))  # unbound CC: nothing moves
    assert len(engine.calls) == 3 and midi.ignored == 1


def test_an_axis_not_moved_yet_starts_at_the_cursor() -> None:
    engine = FakeEngine(BoxField(), cursor=(4.0, 13.0))
    midi = MidiInput(engine)
    midi.handle(mido.Message("control_change", control=MidiBindings().x_cc, value=0))
    assert engine.calls == [("set_xy", -2.0, 13.0)]


def test_ccs_without_a_map_do_nothing() -> None:
    engine = FakeEngine(field=None)
    midi = MidiInput(engine)
    midi.handle(mido.Message("control_change", control=MidiBindings().x_cc, value=64))
    assert engine.calls == [] and midi.ignored == 1


def test_midi_learn_binds_the_next_cc_and_reports_it() -> None:
    engine = FakeEngine(BoxField())
    learned: list[MidiBindings] = []
    midi = MidiInput(engine, on_learned=learned.append)
    midi.learn("y")
    assert midi.learning == "y"
    midi.handle(mido.Message("control_change", control=21, value=127))
    assert midi.learning is None
    assert learned == [MidiBindings(x_cc=1, y_cc=21)] and midi.bindings == learned[0]
    assert engine.calls[-1] == ("set_xy", 2.0, 14.0)  # the learned move already counts
    midi.handle(mido.Message("control_change", control=74, value=127))  # the old y CC is free now
    assert len(engine.calls) == 1
    # learning x onto y's CC swaps them rather than binding one CC twice
    midi.learn("x")
    midi.handle(mido.Message("control_change", control=21, value=0))
    assert midi.bindings == MidiBindings(x_cc=21, y_cc=1)
    # channel-mode messages are never learned
    midi.learn("x")
    midi.handle(mido.Message("control_change", control=121, value=0))
    assert midi.learning == "x" and midi.bindings.x_cc == 21


def test_channel_filter_and_pitch_bend() -> None:
    engine = FakeEngine(BoxField())
    midi = MidiInput(engine, bindings=MidiBindings(channel=2, bend="x"))
    midi.handle(mido.Message("note_on", channel=0, note=60, velocity=100))
    assert engine.calls == []
    midi.handle(mido.Message("pitchwheel", channel=2, pitch=8191))
    assert engine.calls == [("set_xy", 6.0, 12.0)]
    midi.handle(mido.Message("pitchwheel", channel=2, pitch=-8192))
    assert engine.calls[-1] == ("set_xy", -2.0, 12.0)
    midi.handle(mido.Message("pitchwheel", channel=2, pitch=0))  # the wheel at rest: the middle
    assert engine.calls[-1] == ("set_xy", 2.0, 12.0)


def test_bindings_round_trip_and_reject_nonsense() -> None:
    b = MidiBindings(x_cc=16, y_cc=17, channel=9, bend="y")
    assert config_from_dict(MidiBindings, config_to_dict(b)) == b
    for bad in ({"x_cc": 74}, {"x_cc": 123}, {"channel": 16}, {"bend": "z"}, {"y_cc": -1}):
        with pytest.raises(ConfigError):
            MidiBindings(**bad)


def test_ports_open_by_name_virtual_and_close() -> None:
    engine = FakeEngine(BoxField())
    backend = FakeBackend()
    midi = MidiInput(engine, backend=backend)
    assert midi.input_names() == (["Keys"], None)
    assert midi.open("Keys") is None and midi.port_name == "Keys"
    port = backend.ports[-1]
    port.callback(mido.Message("note_on", note=50, velocity=70))  # what mido's thread does
    assert engine.calls == [("note_on", 50, 70)]
    assert midi.open_virtual() is None and midi.port_name == VIRTUAL_PORT
    assert port.closed and engine.calls[-1] == ("note_off", 50)  # reopening releases held notes
    midi.close()
    midi.close()
    assert backend.ports[-1].closed and midi.port_name is None


def test_a_bad_port_name_gives_a_reason() -> None:
    midi = MidiInput(FakeEngine(BoxField()), backend=FakeBackend())
    reason = midi.open("Nope")
    assert reason is not None and "Nope" in reason and "Keys" in reason
    assert midi.port_name is None


def test_no_virtual_ports_gives_a_reason() -> None:
    midi = MidiInput(FakeEngine(BoxField()), backend=FakeBackend(virtual_ok=False))
    reason = midi.open_virtual()
    assert reason is not None and "loopMIDI" in reason


def test_the_real_backend_never_raises() -> None:
    """On this machine (no ALSA sequencer) and on one with MIDI alike: a string or success, no exception."""
    midi = MidiInput(FakeEngine(BoxField()))
    names, reason = midi.input_names()
    assert (reason is None) or (names == [] and reason.startswith("MIDI is unavailable"))
    assert midi.open("no such port, latent-explorer test") is not None
    virtual = midi.open_virtual("latent-explorer-test")
    assert virtual is None or isinstance(virtual, str)
    midi.close()


# --- against the real play engine ------------------------------------------------------------------
SR, HOP = 16000, 128


class SineSynth:
    """A BlockSynth whose sound is known: a 220 Hz sine moved ``shift`` semitones, as loud as code[0]."""

    sr, hop, latent_dim = SR, HOP, 2

    def __init__(self) -> None:
        self.phase = 0.0

    def reset(self) -> None:
        self.phase = 0.0

    def step(self, code: np.ndarray, *, level: float | None = None, shift: float = 0.0) -> np.ndarray:
        f = 220.0 * 2.0 ** (shift / 12.0)
        t = self.phase + 2 * np.pi * f * np.arange(1, HOP + 1) / SR
        self.phase = float(t[-1] % (2 * np.pi))
        return (0.5 * float(code[0]) * np.sin(t)).astype(np.float32)


def peak_hz(y: np.ndarray) -> float:
    """The strongest frequency of ``y`` (4 Hz bins at 8192 samples)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * SR / len(y))


def real_engine() -> PlayEngine:
    engine = PlayEngine(SineSynth, sr=SR, config=EngineConfig(block=256, lookahead=256))
    points = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0], [4.0, 2.0]])
    codes = np.array([[0.2, 0.0], [1.0, 0.0], [0.2, 0.0], [1.0, 0.0]])  # louder to the right
    engine.set_field(PositionField(points, codes, pitches=np.full(4, 60.0)))
    return engine


def test_midi_plays_the_real_engine_at_the_notes_pitch() -> None:
    engine = real_engine()
    midi = MidiInput(engine)
    midi.handle(mido.Message("control_change", control=MidiBindings().x_cc, value=127))
    assert engine.cursor == (4.0, 1.0)  # right edge, y in the middle (no cursor before)
    # the sounds there are labelled pitch 60: note 72 plays them an octave up, 220 -> 440 Hz
    midi.handle(mido.Message("note_on", note=72, velocity=127))
    engine.process(2048)  # past the attack
    y = engine.process(8192)
    assert np.sqrt(np.mean(y ** 2)) > 0.1
    assert abs(peak_hz(y) - 440.0) < 5.0
    log = list(engine.control_log)
    assert [r.kind for r in log] == ["field", "xy", "note_on"]
    assert all(r.applied - r.posted <= HOP for r in log)  # heard within one hop of stream time
    midi.handle(mido.Message("note_on", note=72, velocity=0))
    engine.process(4096)  # the release (60 ms) is over
    assert np.abs(engine.process(1024)).max() == 0.0
    assert engine.active_voices == 0
