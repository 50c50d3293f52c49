"""Playing the map in the window: scrub with the mouse, keep the gesture, record a take, OSC, live input.

The window's audio is a recording sink; the tests drive the stream as a sound card's callback
would (``fill_up`` then ``drive``), so what is checked is what a listener would hear.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
from explorer_tiny import N_SAMPLES, SR, make_dataset_folder, tiny_loaded_model
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog
from test_explorer_window import TIMEOUT, make_window, wait_map

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path):
    w, sink = make_window(qtbot, tmp_path)
    w.open_dataset(make_dataset_folder(tmp_path / "ds", per_class=4))
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.add_model(tiny_loaded_model())
    wait_map(qtbot, w, 16)
    yield w, sink
    w.play.shutdown()
    w.runner.cancel_all()
    w.runner.wait(5000)


def drive(w, sink, seconds: float, *, block: int = 512) -> np.ndarray:
    """What the sound card would play in ``seconds``: the producer filled, then read block by block."""
    out = []
    for _ in range(int(seconds * sink.sr / block)):
        w.play.producer.fill_up()
        out.append(sink.drive(block, block=block))
    return np.concatenate(out)


def max_jump(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y)))) if len(y) > 1 else 0.0


def drag(qtbot, w, points: np.ndarray) -> None:
    """A left-button drag through map positions ``points`` [shape=(n, 2)]."""
    vp = w.map_view.plot.viewport()
    px = [w.map_view.data_to_viewport(float(x), float(y)) for x, y in points]
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=px[0])
    for p in px[1:]:
        qtbot.mouseMove(vp, pos=QPoint(p.x(), p.y()))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=px[-1])


def test_scrub_follows_the_mouse_and_the_gesture_becomes_a_path(qtbot, window):
    w, sink = window
    c = w.controller
    w.play.act_scrub.setChecked(True)
    assert w.play.engine is not None and w.play.scrub.active
    a, b = c.points[0], c.points[-1]
    line = a + np.linspace(0, 1, 12)[:, None] * (b - a)
    drag(qtbot, w, line)
    # the engine saw the drag: its cursor is where the mouse let go (within a pixel)
    px = np.array(w.map_view.vb.viewPixelSize())
    assert np.all(np.abs(np.asarray(w.play.engine.cursor) - b) <= 2 * px)
    assert w.play.last_gesture is not None and len(w.play.last_gesture) == len(line)
    # the gesture is kept as a drawn morph path through the same positions
    n_paths = len(w.path_panel.book.paths)
    w.play.keep_gesture()
    assert len(w.path_panel.book.paths) == n_paths + 1 and w.path_panel.book.path.drawn
    w.play.act_scrub.setChecked(False)
    assert not w.play.scrub.active


def test_scrubbed_sound_is_continuous_and_follows_the_cursor(qtbot, window):
    w, sink = window
    c = w.controller
    w.play.act_scrub.setChecked(True)
    e = w.play.engine
    low = int(np.flatnonzero([c.dataset.clips[int(k)].labels.get("label") == "low" for k in c.point_clip])[0])
    high = int(np.flatnonzero([c.dataset.clips[int(k)].labels.get("label") == "high" for k in c.point_clip])[0])
    e.set_xy(*c.points[low])
    e.start()
    y_low = drive(w, sink, 0.5)
    e.set_xy(*c.points[high])
    y_high = drive(w, sink, 0.5)
    e.stop()
    y_tail = drive(w, sink, 0.2)
    y = np.concatenate([y_low, y_high, y_tail])
    assert np.sqrt(np.mean(y_low[len(y_low) // 2:] ** 2)) > 2e-3  # it sounds
    # no click anywhere, the switch of sound included: no step larger than the loudest sine's slope allows
    assert max_jump(y) < 0.5 * np.pi * 2 * 1500 * 1.1 / sink.sr * 4
    # the pitch follows the cursor: the dominant frequency of each half
    def dominant(x):
        x = x[len(x) // 2:]
        f = np.fft.rfftfreq(len(x), 1 / sink.sr)
        return f[np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x)))))]
    assert dominant(y_low) < 400 < 1000 < dominant(y_high)
    assert np.abs(y_tail[-256:]).max() < 1e-3  # the release fades to silence
    assert e.underruns == 0


def test_take_is_saved_as_a_daw_ready_wav(qtbot, window, tmp_path, monkeypatch):
    w, sink = window
    c = w.controller
    w.play.act_scrub.setChecked(True)
    out = tmp_path / "takes" / "my take.wav"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "WAV (*.wav)"))
    w.play.act_take.setChecked(True)
    w.play.engine.set_xy(*c.points[2])
    w.play.engine.start()
    drive(w, sink, 0.6)
    w.play.act_take.setChecked(False)
    y, sr = sf.read(out, dtype="float32")
    assert sr == 48000 and len(y) > 0.4 * sr
    assert abs(y[0]) < 1e-3 and abs(y[-1]) < 1e-3  # faded in and out: no click at the file's edges
    assert not list(out.parent.glob(".*"))  # no temporary left beside it


def test_osc_moves_the_cursor_and_plays(qtbot, window):
    from pythonosc.udp_client import SimpleUDPClient

    w, sink = window
    w.settings.setValue("play/osc_port", 0)  # a free port
    w.play.act_osc.setChecked(True)
    osc = w.play.osc
    assert osc is not None and osc.port > 0
    client = SimpleUDPClient("127.0.0.1", osc.port)
    client.send_message("/latent/xy", [0.25, 0.75])
    client.send_message("/latent/play", [])
    qtbot.waitUntil(lambda: osc.received >= 2, timeout=TIMEOUT)
    want = w.play.engine.field.normalised(0.25, 0.75)
    assert np.allclose(w.play.engine.cursor, want)
    y = drive(w, sink, 0.4)
    assert np.sqrt(np.mean(y[len(y) // 2:] ** 2)) > 0.005
    w.play.act_osc.setChecked(False)
    assert w.play.osc is None


def test_osc_feedback_relinks_after_a_model_switch(qtbot, window):
    """The app sends the cursor out as 0..1 of the map, and OSC keeps playing the next model's engine."""
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer
    from pythonosc.udp_client import SimpleUDPClient

    w, sink = window
    got: list[tuple[float, float]] = []
    arrived = threading.Event()

    def on_cursor(_addr, u, v):
        got.append((u, v))
        arrived.set()

    d = Dispatcher()
    d.map("/latent/cursor", on_cursor)
    listener = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        w.settings.setValue("play/osc_port", 0)
        w.settings.setValue("play/osc_send_port", listener.server_address[1])
        w.play.act_osc.setChecked(True)
        osc = w.play.osc
        client = SimpleUDPClient("127.0.0.1", osc.port)
        client.send_message("/latent/xy", [0.25, 0.75])
        qtbot.waitUntil(lambda: osc.received >= 1, timeout=TIMEOUT)
        qtbot.waitUntil(arrived.is_set, timeout=TIMEOUT)
        assert got[-1] == pytest.approx((0.25, 0.75), abs=1e-6)  # the same frame as /latent/xy, not converted twice
        first = w.play.engine
        # another model: the engine is rebuilt for it once its map is in, and OSC drives the new one
        w.add_model(tiny_loaded_model("tiny-model-2"))
        qtbot.waitUntil(lambda: w.controller.current_key == "tiny-model-2" and w.play.engine is not None
                        and w.play.engine is not first, timeout=TIMEOUT)
        before = osc.received
        client.send_message("/latent/xy", [0.9, 0.1])
        qtbot.waitUntil(lambda: osc.received > before, timeout=TIMEOUT)
        assert np.allclose(w.play.engine.cursor, w.play.engine.field.normalised(0.9, 0.1))
    finally:
        listener.shutdown()
        listener.server_close()


def test_esc_a_lost_release_and_hidden_classes(qtbot, window):
    w, sink = window
    c = w.controller
    w.play.act_scrub.setChecked(True)
    e = w.play.engine
    # a drag whose release never comes (the window lost the focus) ends the sound all the same
    vp = w.map_view.plot.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=w.map_view.data_to_viewport(*c.points[1]))
    assert w.play.scrub.dragging and e.cursor is not None
    drive(w, sink, 0.3)
    w.play.scrub.cancel()
    tail = drive(w, sink, 0.3)
    assert not w.play.scrub.dragging and np.abs(tail[-512:]).max() < 1e-3
    # Esc releases everything the engine plays
    e.start()
    assert np.abs(drive(w, sink, 0.3)[-512:]).max() > 1e-3
    w.stop_everything()
    assert np.abs(drive(w, sink, 0.3)[-512:]).max() < 1e-3
    # hidden classes take no part in what the cursor plays
    hidden = c.classes()[0]
    c.toggle_class(hidden)
    shown = set(e.field.rows.tolist())
    labels = c.point_labels()
    assert shown and all(str(labels[r]) != hidden for r in shown)


def test_gain_dials_reach_the_live_sound(qtbot, window):
    w, sink = window
    w.play.act_scrub.setChecked(True)
    first = w.play.engine
    d = w.controller.encoding.frame_codes.shape[1]
    w.controller.set_gains([0.0] * 1, [])  # every latent unit to zero: the live sound goes silent
    assert w.play.engine is not None and w.play.engine is not first
    e = w.play.engine
    e.set_xy(*w.controller.points[3])
    e.start()
    assert d > 0 and np.abs(drive(w, sink, 0.4)).max() < 1e-4


@pytest.fixture
def demo_window(qtbot, tmp_path):
    """The window on a few of the demo's notes (two pitches of four families) with the demo model it opens on."""
    from explorer.core import paths
    from explorer.window.main_window import MainWindow
    from explorer.sound.audio_out import RecordingSink
    from PySide6.QtCore import QSettings

    ds = tmp_path / "notes"
    for wav in sorted((paths.DEMO_DATASET / "audio").glob("*.wav")):
        family = wav.stem.rsplit("_", 1)[0]
        if wav.stem.endswith(("-055-127", "-062-127")) and family in ("brass_acoustic", "flute_acoustic", "keyboard_electronic", "string_acoustic"):
            (ds / family).mkdir(parents=True, exist_ok=True)
            (ds / family / wav.name).write_bytes(wav.read_bytes())
    sink = RecordingSink()
    w = MainWindow(audio=sink, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.open_dataset(ds)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.open_checkpoints([paths.best_sounding_demo_checkpoint()])
    n = len(w.controller.dataset.clips)
    qtbot.waitUntil(lambda: w.controller.embedding is not None and len(w.controller.points) == n
                    and not w.runner.is_running("project"), timeout=60000)
    yield w, sink
    w.play.shutdown()
    w.runner.cancel_all()
    w.runner.wait(5000)


def test_live_input_from_a_file_moves_the_cursor(qtbot, demo_window):
    w, sink = demo_window
    c = w.controller
    assert len(c.points) >= 6
    for i in (0, len(c.points) - 1):
        clip = int(c.point_clip[i])
        w.play.start_live_file(c.dataset.clips[clip].path, realtime=False)
        qtbot.waitUntil(lambda: not w.play.live_running, timeout=TIMEOUT)
        path = w.play.live_path
        assert len(path) > 100  # one position per code: a frame model's hop
        # while the note sounds, the cursor stays nearer the clip it plays than to almost any other
        # (its mean distance along the path ranks among the first three of the map's points)
        mean_d = np.linalg.norm(path[:, None, :] - c.points[None], axis=2).mean(axis=0)
        assert i in np.argsort(mean_d)[:3], (i, np.argsort(mean_d)[:5])


def test_play_without_a_model_says_why(qtbot, tmp_path):
    w, _ = make_window(qtbot, tmp_path)
    messages: list[str] = []
    w.notifier.status_posted.connect(messages.append)
    w.play.act_scrub.setChecked(True)
    assert not w.play.act_scrub.isChecked() and w.play.engine is None
    assert any("needs a model" in m for m in messages)
