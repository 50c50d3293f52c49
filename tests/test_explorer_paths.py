"""Morph paths in the real window, driven with mouse events (pytest-qt, offscreen)."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import soundfile as sf
from explorer_tiny import N_SAMPLES, SR, FakeState
from PySide6.QtCore import QPoint, Qt
from test_explorer_window import TIMEOUT, click_data, make_window, wait_map

from explorer.core.controller import load_model
from models.morphing.export_audio import ExportOptions, render_from_spec

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    from explorer_tiny import make_dataset_folder

    return make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=10)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real model (Colonel's hybrid at tiny size, untrained) saved as a checkpoint file."""
    from models.checkpoints.checkpoint import save_checkpoint
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset("colonel-hybrid")
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "colonel.safetensors", model,
                           preset="colonel-hybrid", representation=rep.to_dict())


def open_window(qtbot, tmp_path, dataset_dir, lm):
    w, sink = make_window(qtbot, tmp_path)
    w.open_dataset(dataset_dir)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.add_model(lm)
    wait_map(qtbot, w, 40)
    w.tools_tabs.setCurrentWidget(w.path_panel)
    return w, sink


@pytest.fixture
def window(qtbot, tmp_path, dataset_dir):
    from explorer_tiny import tiny_loaded_model

    w, sink = open_window(qtbot, tmp_path, dataset_dir, tiny_loaded_model())
    yield w, sink
    w.runner.cancel_all()
    w.runner.wait(5000)


@pytest.fixture
def real_window(qtbot, tmp_path, dataset_dir, checkpoint):
    w, sink = open_window(qtbot, tmp_path, dataset_dir, load_model(checkpoint))
    yield w, sink
    w.runner.cancel_all()
    w.runner.wait(5000)


def empty_spots(w, n=2):
    """Map positions far from every point (so a click there is a position, not a point)."""
    pts = w.controller.points
    lo, hi = pts.min(0), pts.max(0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 21), np.linspace(lo[1], hi[1], 21)), -1).reshape(-1, 2)
    dist = np.min(np.linalg.norm(grid[:, None] - pts[None], axis=-1), axis=1)
    order = np.argsort(-dist)
    out = [grid[order[0]]]
    for j in order[1:]:  # a second spot far from the first, so the path is long
        if np.linalg.norm(grid[j] - out[0]) > 0.5 * np.linalg.norm(hi - lo) and len(out) < n:
            out.append(grid[j])
    return out


def draw_path(qtbot, w, a, b, n_moves=12):
    """Press at ``a``, drag along a bent line through the middle, release at ``b`` (data coords)."""
    vp = w.map_view.plot.viewport()
    pa, pb = w.map_view.data_to_viewport(*a), w.map_view.data_to_viewport(*b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
    for t in np.linspace(0, 1, n_moves)[1:]:
        bend = 40 * np.sin(np.pi * t)  # a curve, so the path has a corner or two
        p = QPoint(int(pa.x() + t * (pb.x() - pa.x())), int(pa.y() + t * (pb.y() - pa.y()) + bend))
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)
    return pa, pb


def wait_render(qtbot, w):
    book = w.path_panel.book
    qtbot.waitUntil(lambda: book.render_of(book.path) is not None and not w.runner.is_running("morph"),
                    timeout=TIMEOUT)
    return book.render_of(book.path)


def test_drawn_path_decodes_n_steps_ending_on_its_end_points(qtbot, window):
    w, sink = window
    panel = w.path_panel
    panel.steps_spin.setValue(7)
    qtbot.keyClick(w, Qt.Key.Key_M)  # path mode
    assert panel.mode_btn.isChecked()
    a, b = empty_spots(w)
    pa, _ = draw_path(qtbot, w, a, b)
    path = panel.book.path
    assert path is not None and path.drawn and len(path.waypoints) >= 2
    assert not sink.played  # drawing plays nothing and does not pan
    r = wait_render(qtbot, w)
    assert len(r.steps) == 7 and all(len(s) == N_SAMPLES for s in r.steps)
    c = w.controller
    # the first step is exactly what a click on the path's start plays...
    qtbot.keyClick(w, Qt.Key.Key_M)
    qtbot.mouseClick(w.map_view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pa)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    assert np.array_equal(sink.played[0][0], r.steps[0])
    # ...and the last what a click on its end point plays (a blend of the clips nearest to it)
    c.select_position(*path.waypoints[-1].xy)
    assert np.array_equal(r.steps[-1], c.decode_task()(FakeState()).decoded.y)
    assert not np.allclose(r.steps[0], r.steps[-1])
    # placed-back steps are drawn, with a link from each step on the path
    assert len(panel.tool.placed.data) == 7 and np.allclose(
        np.c_[panel.tool.placed.data["x"], panel.tool.placed.data["y"]], r.placed)
    assert len(panel.tool.steps.data) == 7
    # "where the path really goes": one dashed line through the placed steps in step order, and
    # the user's path as a line through its waypoints, both drawn
    line = panel.tool.placed_line.getData()
    assert np.allclose(np.c_[line[0], line[1]], r.placed)
    drawn = panel.tool.line.getData()
    assert np.allclose(np.c_[drawn[0], drawn[1]], path.xy)
    assert "where the steps really land" in panel.legend.text()
    # the continuous morph: 7 steps of N_SAMPLES, each overlapping the next by half
    hop = N_SAMPLES - N_SAMPLES // 2
    assert len(r.morph) == N_SAMPLES + 6 * hop


def test_play_morph_moves_a_playhead_and_stops(qtbot, window):
    w, sink = window
    panel = w.path_panel
    qtbot.keyClick(w, Qt.Key.Key_M)
    a, b = empty_spots(w)
    draw_path(qtbot, w, a, b)
    r = wait_render(qtbot, w)
    panel.play_morph_btn.click()
    assert len(sink.played[-1][0]) == len(r.morph) and sink.played[-1][1] == SR
    assert len(panel.tool.playhead.data) == 1
    # the playhead glides along the path: the morph passes step k half a step into its slot, so
    # half-way between two slots it sits between the steps
    mid = panel.playhead_xy(0.5 * r.step_samples + 2.5 * r.hop_samples)
    assert np.allclose(mid, 0.5 * (r.xy[2] + r.xy[3]))
    stops = sink.stops
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert sink.stops > stops and len(panel.tool.playhead.data) == 0
    panel.play_steps_btn.click()
    gap = int(0.25 * N_SAMPLES)
    assert len(sink.played[-1][0]) == len(r.steps) * N_SAMPLES + (len(r.steps) - 1) * gap


def test_click_waypoints_edit_undo_redo(qtbot, window):
    w, _ = window
    panel, c = w.path_panel, w.controller
    qtbot.keyClick(w, Qt.Key.Key_M)
    centres = c.class_centres_2d()
    far = np.argmax(np.min(np.linalg.norm(c.points[:, None] - np.array(list(centres.values()))[None], axis=-1), axis=1))
    click_data(qtbot, w, *c.points[far])  # a point (the one farthest from every centre)
    # a class centre: the one with no point on it (a click there would be as near the point)
    lab = max(centres, key=lambda k: np.min(np.linalg.norm(c.points - centres[k], axis=1)))
    click_data(qtbot, w, *centres[lab])
    path = panel.book.path
    assert [wp.kind for wp in path.waypoints] == ["point", "centre"]
    assert path.waypoints[1].label == lab and path.title().endswith(f"-to-{lab}")
    labels = c.point_labels()
    assert np.allclose(path.waypoints[1].code, c.map_codes()[0][labels == lab].mean(0))
    wait_render(qtbot, w)
    # drag the centre waypoint to empty space: it becomes a position
    spot = empty_spots(w, 1)[0]
    vp = w.map_view.plot.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=w.map_view.data_to_viewport(*centres[lab]))
    qtbot.mouseMove(vp, w.map_view.data_to_viewport(*spot))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=w.map_view.data_to_viewport(*spot))
    assert panel.book.path.waypoints[1].kind == "position"
    assert np.allclose(panel.book.path.waypoints[1].xy, spot, atol=0.02 * np.ptp(c.points, axis=0).max())
    qtbot.keySequence(w, "Ctrl+Z")
    assert panel.book.path.waypoints[1].kind == "centre"
    qtbot.keySequence(w, "Ctrl+Z")
    qtbot.keySequence(w, "Ctrl+Z")
    assert panel.book.paths == []
    qtbot.keySequence(w, "Ctrl+Shift+Z")
    assert len(panel.book.paths) == 1 and len(panel.book.path.waypoints) == 1
    # a second path; both are kept
    panel.new_btn.click()
    click_data(qtbot, w, *c.points[5])
    click_data(qtbot, w, *c.points[30])
    assert len(panel.book.paths) == 2 and panel.paths_list.count() == 2


def test_export_wavs_and_a_spec_that_renders_the_same(qtbot, real_window, tmp_path):
    from trainer_helpers import run_cli

    w, _ = real_window
    panel = w.path_panel
    panel.steps_spin.setValue(5)
    panel.dur_spin.setValue(0.2)
    panel.interp_combo.setCurrentIndex(1)  # spherical
    qtbot.keyClick(w, Qt.Key.Key_M)
    a, b = empty_spots(w)
    draw_path(qtbot, w, a, b)
    r = wait_render(qtbot, w)
    assert r.step_samples == int(0.2 * SR)
    out = tmp_path / "export"
    for what in ("steps", "morph"):
        with qtbot.waitSignal(w.runner.task_finished, timeout=TIMEOUT):
            panel.export_to(out, ExportOptions(what=what, subtype="float32", sample_rate=16000))
    wavs = sorted(out.glob("*.wav"))
    steps = [p for p in wavs if "_step" in p.name]
    assert len(steps) == 5 and all(sf.info(p).frames == 2 * int(0.2 * SR) for p in steps)
    (morph_wav,) = [p for p in wavs if "_step" not in p.name]
    assert morph_wav.name.startswith("morph_") and "_5steps_colonel" in morph_wav.name
    assert sf.info(morph_wav).frames == 2 * len(r.morph) and sf.info(morph_wav).samplerate == 16000
    spec_file = morph_wav.with_suffix(".json")
    spec = json.loads(spec_file.read_text())
    assert spec["path"]["params"]["interpolation"] == "spherical" and spec["model"]["weights_sha256"]
    again = render_from_spec(spec)
    assert np.array_equal(again.signals[0], sf.read(morph_wav, dtype="float32")[0])
    res = run_cli("render", str(spec_file), "--out", str(tmp_path / "cli"))
    assert res.returncode == 0, res.stderr
    assert np.array_equal(sf.read(tmp_path / "cli" / morph_wav.name, dtype="float32")[0],
                          sf.read(morph_wav, dtype="float32")[0])
    # drag out: a file URL to a WAV of the morph, at a DAW's rate, in the drag folder
    w.settings.setValue("drag/dir", str(tmp_path / "drags"))
    mime = panel.drag.mime_data()
    dragged = mime.urls()[0].toLocalFile()
    assert os.path.dirname(dragged) == str(tmp_path / "drags") and sf.info(dragged).samplerate == 48000
    assert abs(sf.info(dragged).frames - len(r.morph) * 48000 / SR) <= 1


def test_export_failure_shows_an_error_and_writes_nothing(qtbot, window, tmp_path, monkeypatch):
    w, _ = window
    panel = w.path_panel
    qtbot.keyClick(w, Qt.Key.Key_M)
    a, b = empty_spots(w)
    draw_path(qtbot, w, a, b)
    wait_render(qtbot, w)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with qtbot.waitSignal(w.runner.task_failed, timeout=TIMEOUT):
        panel.export_to(blocker / "out", ExportOptions(what="steps"))
    assert "export failed" in w.last_error and w.error_box.isVisible()
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".wav", ".json", ".part")]
    w.error_box.close()
    # a full disk half-way through the renames: nothing of the export stays
    real_replace, calls = os.replace, []

    def full(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "full"
    out.mkdir()
    with qtbot.waitSignal(w.runner.task_failed, timeout=TIMEOUT):
        panel.export_to(out, ExportOptions(what="steps"))
    assert "No space" in w.last_error and list(out.iterdir()) == []


def test_paths_round_trip_through_a_session(qtbot, window, tmp_path):
    w, _ = window
    c = w.controller
    qtbot.keyClick(w, Qt.Key.Key_M)
    click_data(qtbot, w, *c.points[3])
    click_data(qtbot, w, *c.points[33])
    wait_render(qtbot, w)
    w.save_session(tmp_path / "s.json")
    w2, _ = make_window(qtbot, tmp_path / "other")
    w2.open_session(tmp_path / "s.json")
    qtbot.waitUntil(lambda: w2.controller.embedding is not None and w2.path_panel.book.path is not None, timeout=TIMEOUT)
    wait_render(qtbot, w2)  # after the waypoints followed the reopened map
    p1, p2 = w.path_panel.book.path, w2.path_panel.book.path
    assert [(q.kind, q.code, q.clip) for q in p2.waypoints] == [(q.kind, q.code, q.clip) for q in p1.waypoints]
    assert np.allclose(p2.xy, p1.xy, atol=1e-4) and p2.params == p1.params
    w2.runner.wait(5000)
