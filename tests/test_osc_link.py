"""OSC: a real python-osc client on 127.0.0.1 plays a fake engine; a real server hears what the link sends."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from explorer.play.osc_link import OscConfig, OscLink
from models.config import config_from_dict, config_to_dict
from models.errors import ConfigError
from models.realtime.engine import EngineConfig, PlayEngine
from models.realtime.position import PositionField
from test_midi_in import SR, SineSynth, peak_hz

TIMEOUT_S = 10.0  # a bound on waiting for a UDP datagram on localhost, never a measured duration


class BoxField:
    """normalised() onto [-2, 6] x [10, 14], affine like PositionField's."""

    def normalised(self, u: float, v: float) -> tuple[float, float]:
        return -2.0 + 8.0 * u, 10.0 + 4.0 * v

    def unit(self, x: float, y: float) -> tuple[float, float]:
        return min(1.0, max(0.0, (x + 2.0) / 8.0)), min(1.0, max(0.0, (y - 10.0) / 4.0))


class Recorder:
    """A list that a test can wait on: append from any thread, wait for a condition with a timeout."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self._cond = threading.Condition()

    def append(self, item: tuple) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, predicate) -> list[tuple]:  # noqa: ANN001
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.items), timeout=TIMEOUT_S), self.items
            return list(self.items)


class FakeEngine:
    def __init__(self, field: BoxField | None = None) -> None:
        self.calls = Recorder()
        self.field = field
        self.cursor = None

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


SENTINEL = ("note_on", 1, 1)


def _until_sentinel(items: list[tuple]) -> bool:
    return SENTINEL in items


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(BoxField())


@pytest.fixture
def link(engine: FakeEngine):  # noqa: ANN201
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=0)) as link:
        yield link


def _client(link: OscLink) -> SimpleUDPClient:
    return SimpleUDPClient("127.0.0.1", link.port)


def test_the_server_binds_a_free_port_on_localhost(link: OscLink) -> None:
    assert link.port > 0
    assert link._server.server_address[0] == "127.0.0.1"


def test_controls_reach_the_engine_in_order(engine: FakeEngine, link: OscLink) -> None:
    client = _client(link)
    client.send_message("/latent/play", [])
    client.send_message("/latent/xy", [0.5, 0.25])
    client.send_message("/latent/xy", [1.5, -3])  # clamped to the box's corner
    client.send_message("/latent/note", [60, 100])
    client.send_message("/latent/note", [60.0, 0])  # velocity 0: note-off; floats are fine (TouchOSC)
    client.send_message("/latent/play", [0.0])  # a push button's release
    client.send_message("/latent/play", [1.0])
    client.send_message("/latent/stop", [0.0])  # a stop button's release: nothing
    client.send_message("/latent/stop", [])
    client.send_message("/latent/note", [1, 1])
    calls = engine.calls.wait_for(_until_sentinel)
    assert calls == [("start",), ("set_xy", 2.0, 11.0), ("set_xy", 6.0, 10.0), ("note_on", 60, 100),
                     ("note_off", 60), ("stop",), ("start",), ("stop",), SENTINEL]
    assert link.ignored == 0 and link.received == 9


def test_malformed_messages_are_ignored_and_counted(engine: FakeEngine, link: OscLink) -> None:
    client = _client(link)
    bad = [
        ("/latent/xy", [0.5]),
        ("/latent/xy", [0.5, 0.5, 0.5]),
        ("/latent/xy", ["left", 0.5]),
        ("/latent/xy", [math.nan, 0.5]),
        ("/latent/xy", [0.5, math.inf]),
        ("/latent/xy", [True, 0.5]),
        ("/latent/note", [60]),
        ("/latent/note", [128, 100]),
        ("/latent/note", [60, -1]),
        ("/latent/note", [math.nan, 100]),
        ("/latent/play", ["go"]),
        ("/latent/stop", [1, 2]),
        ("/latent/nothing", [1]),
    ]
    for address, args in bad:
        client.send_message(address, args)
    client._sock.sendto(b"not OSC at all", ("127.0.0.1", link.port))  # dropped by python-osc itself
    client.send_message("/latent/note", [1, 1])
    assert engine.calls.wait_for(_until_sentinel) == [SENTINEL]
    assert link.ignored == len(bad)
    assert link.last_ignored == "unknown address /latent/nothing"


class BrokenStart(FakeEngine):
    def start(self) -> None:
        raise RuntimeError("the engine broke")


def test_a_control_that_raises_is_counted_and_the_server_goes_on() -> None:
    engine = BrokenStart(BoxField())
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=0)) as link:
        client = _client(link)
        client.send_message("/latent/play", [])
        client.send_message("/latent/note", [1, 1])
        assert engine.calls.wait_for(_until_sentinel) == [SENTINEL]
        assert link.ignored == 1 and "the engine broke" in link.last_ignored


def test_xy_without_a_map_is_ignored() -> None:
    engine = FakeEngine(field=None)
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=0)) as link:
        client = _client(link)
        client.send_message("/latent/xy", [0.5, 0.5])
        client.send_message("/latent/note", [1, 1])
        assert engine.calls.wait_for(_until_sentinel) == [SENTINEL]
        assert link.ignored == 1


class Listener:
    """A real OSC server on a free port, recording what arrives."""

    def __init__(self) -> None:
        self.got = Recorder()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(lambda address, *args: self.got.append((address, *args)))
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=TIMEOUT_S)


@pytest.fixture
def listener():  # noqa: ANN201
    listener = Listener()
    yield listener
    listener.close()


def test_cursor_and_selection_go_out(engine: FakeEngine, listener: Listener) -> None:
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=listener.port)) as link:
        link.send_cursor(2.0, 13.0)
        got = listener.got.wait_for(lambda items: len(items) == 1)
        assert got[0][0] == "/latent/cursor"
        assert got[0][1:] == pytest.approx((0.5, 0.75))
        link.send_selected("kick_07.wav")
        got = listener.got.wait_for(lambda items: len(items) == 2)
        assert got[1] == ("/latent/selected", "kick_07.wav")


def test_sends_are_rate_limited_and_end_with_the_latest(engine: FakeEngine, listener: Listener) -> None:
    # one send per 1000 s: the first update goes at once, the other 99 coalesce into one sent on close
    link = OscLink(engine, config=OscConfig(listen_port=0, send_port=listener.port, max_send_hz=0.001))
    xs = [-2.0 + 8.0 * i / 99 for i in range(100)]
    for x in xs:
        link.send_cursor(x, 10.0)
    link.close()
    link.close()  # twice is fine
    got = listener.got.wait_for(lambda items: items and items[-1][1] == pytest.approx(1.0))
    # without the limit all 100 would arrive; with it, the first flush and the last value at most
    assert 1 <= len(got) <= 2 and link.sent == len(got)
    assert all(address == "/latent/cursor" for address, *_ in got)


def test_sending_to_nobody_never_raises(engine: FakeEngine) -> None:
    free = Listener()  # take a free port, then free it: nobody listens there any more
    port = free.port
    free.close()
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=port)) as link:
        link.send_cursor(0.0, 10.0)
        link.send_selected("a")
    assert link.sent + link.send_errors >= 1


def test_a_port_in_use_raises_oserror(engine: FakeEngine, link: OscLink) -> None:
    with pytest.raises(OSError):
        OscLink(engine, config=OscConfig(listen_port=link.port, send_port=0))


def test_config_round_trips_and_rejects_nonsense() -> None:
    cfg = OscConfig(listen_port=8000, send_host="192.168.1.20", send_port=9000, max_send_hz=60.0)
    assert config_from_dict(OscConfig, config_to_dict(cfg)) == cfg
    assert OscConfig().listen_host == "127.0.0.1"
    for bad in ({"listen_port": 70000}, {"send_port": -1}, {"max_send_hz": 0.0}, {"send_host": ""}):
        with pytest.raises(ConfigError):
            OscConfig(**bad)


def test_the_controllers_import_without_qt() -> None:
    # they run on mido's and the OSC server's threads: a fresh interpreter must not pull in Qt
    code = ("import sys, explorer.play.midi_in, explorer.play.osc_link;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','shiboken6')];"
            "print(bad); sys.exit(1 if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- against the real play engine ------------------------------------------------------------------


class SignallingEngine(PlayEngine):
    """The real engine, telling the test when the scrub voice's gate was asked to open or close."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.started, self.stopped = threading.Event(), threading.Event()

    def start(self, **kwargs) -> int:  # noqa: ANN003
        seq = super().start(**kwargs)
        self.started.set()
        return seq

    def stop(self, **kwargs) -> int:  # noqa: ANN003
        seq = super().stop(**kwargs)
        self.stopped.set()
        return seq


def test_osc_plays_the_real_engine_and_reports_its_cursor(listener: Listener) -> None:
    engine = SignallingEngine(SineSynth, sr=SR, config=EngineConfig())
    points = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 2.0], [4.0, 2.0]])
    codes = np.array([[0.2, 0.0], [1.0, 0.0], [0.2, 0.0], [1.0, 0.0]])
    engine.set_field(PositionField(points, codes))
    with OscLink(engine, config=OscConfig(listen_port=0, send_port=listener.port)) as link:
        client = _client(link)
        client.send_message("/latent/xy", [1.0, 0.25])
        client.send_message("/latent/play", [1.0])  # after the move: one server thread keeps the order
        assert engine.started.wait(TIMEOUT_S)
        assert engine.cursor == (4.0, 0.5)
        engine.process(2048)
        y = engine.process(8192)
        assert np.sqrt(np.mean(y ** 2)) > 0.1 and abs(peak_hz(y) - 220.0) < 5.0  # the scrub voice: no shift
        link.send_cursor(*engine.cursor)
        got = listener.got.wait_for(lambda items: len(items) == 1)
        assert got[0][0] == "/latent/cursor" and got[0][1:] == pytest.approx((1.0, 0.25))
        client.send_message("/latent/play", [0.0])  # the button's release
        assert engine.stopped.wait(TIMEOUT_S)
        engine.process(4096)
        assert np.abs(engine.process(1024)).max() == 0.0
        assert link.ignored == 0
