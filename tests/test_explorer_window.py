"""The real main window driven with mouse events (pytest-qt, offscreen)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from explorer_tiny import N_SAMPLES, SR, make_dataset_folder, tiny_loaded_model
from PySide6.QtCore import QCoreApplication, QSettings, Qt

from explorer.sound.audio_out import RecordingSink
from explorer.core.controller import KMEANS
from explorer.window.main_window import MainWindow
from explorer.sound.sound_panel import ESTIMATE_TEXT

pytestmark = pytest.mark.gui
TIMEOUT = 20000


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=25)


def make_window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    sink = RecordingSink()
    # the tiny model is not a checkpoint file: sessions "load" it by its key
    w = MainWindow(audio=sink, audio_message="Sound off (recording sink)", settings=settings,
                   model_loader=tiny_loaded_model)
    w.controller.tsne_params = {"n_iter": 40, "early_exaggeration_iter": 20, "callbacks_every_iters": 10}
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w, sink


def wait_map(qtbot, w, n):
    qtbot.waitUntil(lambda: w.controller.embedding is not None and len(w.controller.points) == n
                    and not w.runner.is_running("project"), timeout=TIMEOUT)


@pytest.fixture
def window(qtbot, tmp_path, dataset_dir):
    w, sink = make_window(qtbot, tmp_path)
    w.open_dataset(dataset_dir)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.add_model(tiny_loaded_model())
    wait_map(qtbot, w, 100)
    yield w, sink
    w.runner.cancel_all()
    w.runner.wait(5000)


def click_data(qtbot, w, x, y):
    pos = w.map_view.data_to_viewport(x, y)
    qtbot.mouseClick(w.map_view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_empty_window_says_how_to_start(qtbot, tmp_path):
    w, _ = make_window(qtbot, tmp_path)
    w._update_hint()
    assert w.map_view.hint.isVisible() and "Open a dataset" in w.map_view.hint.text()


def test_click_on_point_plays_decoded_sound(qtbot, window):
    w, sink = window
    i = 37
    x, y = w.controller.points[i]
    click_data(qtbot, w, x, y)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    y_played, sr = sink.played[0]
    assert sr == SR and len(y_played) == N_SAMPLES and np.sqrt(np.mean(y_played**2)) > 0.05
    assert w.controller.selection.index == i
    assert not w.sound_panel.estimate_label.isVisible()
    assert w.sound_panel.play_orig.isEnabled()
    # metrics arrive off the GUI thread and fill the table, the class's MFCC-DTW deviation last
    qtbot.waitUntil(lambda: any(k.startswith("MFCC-DTW") for k in w.controller.decoded.metrics), timeout=TIMEOUT)
    label = str(w.controller.point_labels()[i])
    rows = {w.sound_panel.metrics.item(r, 0).text(): w.sound_panel.metrics.item(r, 1).text()
            for r in range(w.sound_panel.metrics.rowCount())}
    assert np.isfinite(float(rows[f"MFCC-DTW deviation vs {label} (25 sounds)"]))
    assert "RMSE (spectrogram)" in rows and "spectral convergence" in rows
    # O plays the original for comparison, Space the decoded again
    qtbot.keyClick(w, Qt.Key.Key_O)
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert len(sink.played) == 3
    orig = sink.played[1][0]
    assert len(orig) == N_SAMPLES and not np.allclose(orig, y_played)


def test_click_on_empty_space_plays_an_estimate(qtbot, window):
    w, sink = window
    pts = w.controller.points
    # the emptiest spot between points: the pixel farthest from every point in a small grid
    lo, hi = pts.min(0), pts.max(0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 25), np.linspace(lo[1], hi[1], 25)), -1).reshape(-1, 2)
    far = grid[np.argmax(np.min(np.linalg.norm(grid[:, None] - pts[None], axis=-1), axis=1))]
    click_data(qtbot, w, *far)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    assert w.controller.selection.kind == "position"
    y_played, sr = sink.played[0]
    assert len(y_played) == N_SAMPLES and np.abs(y_played).max() > 0.01
    assert w.sound_panel.estimate_label.isVisible() and w.sound_panel.estimate_label.text() == ESTIMATE_TEXT
    assert not w.sound_panel.play_orig.isEnabled()
    # no original, but a deviation against the nearest class, saying so
    qtbot.waitUntil(lambda: w.sound_panel.metrics.rowCount() == 1, timeout=TIMEOUT)
    assert w.sound_panel.metrics.item(0, 0).text().startswith("MFCC-DTW deviation vs nearest class ")
    assert np.isfinite(float(w.sound_panel.metrics.item(0, 1).text()))


def test_colour_field_recolours_and_legend_hides(qtbot, window):
    w, _ = window
    before = list(w.map_view.scatter.data["brush"])
    assert w.map_view.legend.count() == 4
    w.set_colour_field(KMEANS)
    qtbot.waitUntil(lambda: w.controller.cluster_labels is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.map_view.legend.count() > 1 and w.map_view.legend.item(0).text().startswith("cluster"),
                    timeout=TIMEOUT)
    after = list(w.map_view.scatter.data["brush"])
    assert [b.color().name() for b in before] != [b.color().name() for b in after]
    # untick a class in the legend: its points leave the scatter
    item = w.map_view.legend.item(0)
    name = item.text()
    item.setCheckState(Qt.CheckState.Unchecked)
    assert w.controller.hidden == {name}
    hidden = (w.controller.point_labels() == name).sum()
    assert hidden > 0 and len(w.map_view.scatter.data) == 100 - hidden


def test_pca_and_tsne_both_project(qtbot, window):
    w, _ = window
    pca_points = w.controller.points.copy()
    partials = []
    w.controller.embedding_changed.connect(lambda final: partials.append(final))
    qtbot.keyClick(w, Qt.Key.Key_T)
    qtbot.waitUntil(lambda: w.controller.embedding.method == "tsne", timeout=TIMEOUT)
    assert False in partials and partials[-1] is True  # animated, then final
    assert w.controller.points.shape == (100, 2) and not np.allclose(w.controller.points, pca_points)
    assert w.projection_combo.currentData() == "tsne"
    qtbot.keyClick(w, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: w.controller.embedding.method == "pca", timeout=TIMEOUT)
    assert np.allclose(w.controller.points, pca_points)


def test_session_round_trips(qtbot, window, tmp_path):
    w, sink = window
    w.set_projection("tsne")
    qtbot.waitUntil(lambda: w.controller.embedding.method == "tsne", timeout=TIMEOUT)
    x, y = w.controller.points[11]
    click_data(qtbot, w, x, y)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    w.controller.toggle_class("noise")
    path = tmp_path / "session.json"
    w.save_session(path)
    w2, sink2 = make_window(qtbot, tmp_path / "other")
    w2.open_session(path)
    qtbot.waitUntil(lambda: w2.controller.decoded is not None, timeout=TIMEOUT)
    c1, c2 = w.controller, w2.controller
    assert c2.method == "tsne" and np.allclose(c2.points, c1.points, atol=1e-5)
    assert c2.hidden == {"noise"} and c2.colour_field == c1.colour_field
    assert c2.selection.index == 11 and c2.decoded.decoded.clip_index == c1.point_clip[11]
    assert sink2.played == []  # restored quietly
    w2.runner.wait(5000)


def test_worker_error_is_shown_and_app_stays_responsive(qtbot, window):
    w, sink = window

    def boom(state):
        raise RuntimeError("disk on fire")

    with qtbot.waitSignal(w.runner.task_failed, timeout=TIMEOUT):
        w.runner.start("decode", boom)
    assert "disk on fire" in w.last_error and "disk on fire" in w.statusBar().currentMessage()
    assert w.error_box.isVisible()
    w.error_box.close()
    x, y = w.controller.points[3]
    click_data(qtbot, w, x, y)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)


def test_stale_results_are_dropped(qtbot, window):
    w, sink = window
    got = []
    release = threading.Event()

    def old(state):
        release.wait(5.0)  # still running when the newer task of its key starts
        return "old"

    w.runner.start("decode", old, on_result=got.append)
    w.runner.start("decode", lambda s: "new", on_result=got.append)
    qtbot.waitUntil(lambda: got == ["new"], timeout=TIMEOUT)
    release.set()  # the superseded task delivers after the newer one
    assert w.runner.wait(5000)  # its result has been sent...
    QCoreApplication.processEvents()  # ...and reached the GUI thread, where it is dropped
    assert got == ["new"]


def test_takes_a_model_at_another_rate_and_refuses_one_that_cannot_fit(qtbot, window):
    w, _ = window
    lm = tiny_loaded_model("other")
    lm.representation.sample_rate = 44100  # the 8 kHz clips are resampled for it
    w.add_model(lm)
    assert "other" in w.controller.models
    from explorer_tiny import TinyAE, TinyAEConfig

    bad = tiny_loaded_model("bad")
    bad.model = TinyAE(TinyAEConfig(input_shape=(32,)))
    w.add_model(bad)
    assert "was not loaded" in w.last_error and "cannot feed" in w.last_error and "bad" not in w.controller.models


def test_escape_stops_tsne_and_keeps_its_layout(qtbot, window):
    w, _ = window
    w.controller.tsne_params = {"n_iter": 100000, "early_exaggeration_iter": 10, "callbacks_every_iters": 5}
    partial = []
    w.controller.embedding_changed.connect(lambda final: partial.append(final))
    w.set_projection("tsne")
    # the first partial layout is t-SNE's start; one after it comes from its iterations
    qtbot.waitUntil(lambda: partial.count(False) >= 2, timeout=TIMEOUT)
    assert w.cancel_btn.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.controller.embedding.method == "tsne", timeout=TIMEOUT)
    assert not w.runner.is_running("project") and w.controller.points.shape == (100, 2)
    assert "t-SNE" in w.statusBar().currentMessage() or partial[-1] is True


def test_status_bar_rests_on_a_summary_after_encoding(qtbot, window):
    w, _ = window
    qtbot.waitUntil(lambda: not w.runner.running(), timeout=TIMEOUT)
    assert w.status_line.label.text() == "100 sounds · tiny-model · PCA"
    assert "encoding" not in w.statusBar().currentMessage() and not w.progress.isVisible()
    # (no second t-SNE run here: test_pca_and_tsne_both_project covers it, and each costs time)
    from explorer.window.status_line import summary_text

    w.controller.set_method("tsne")
    assert summary_text(w.controller) == "100 sounds · tiny-model · t-SNE"
    assert w.status_line.label.text() == summary_text(w.controller)  # the line follows the controller


def test_status_names_a_run_checkpoint_by_its_run():
    # every run writes best/last: two runs' models must not both read "best"
    from explorer.window.status_line import _model_name

    assert _model_name("/r/colonel-a/best.safetensors") == "colonel-a best"
    assert _model_name("/r/colonel-b/last.safetensors") == "colonel-b last"
    assert _model_name("/demo/colonel-notes.safetensors") == "colonel-notes"


def test_toolbar_shows_names_people_read(qtbot, window):
    w, _ = window
    combo = w.colour_combo
    fields = [combo.itemData(k) for k in range(combo.count())]
    assert fields == ["label", KMEANS] and combo.currentData() == "label"
    w.set_colour_field(KMEANS)  # set from code: the combo follows, by its item data
    assert combo.currentData() == KMEANS
    assert w.model_combo.currentText() == "tiny-model" and "checkpoint: tiny-model" in w.model_combo.toolTip()
    assert "stft_frames, 8000 Hz" in w.model_combo.toolTip()


def test_class_centre_labels_are_shown_without_overlap(qtbot, window):
    w, _ = window
    qtbot.waitUntil(lambda: not w.map_view._label_timer.isActive(), timeout=TIMEOUT)  # placed for this zoom
    labels = [t for t in w.map_view._centre_labels.values() if t.isVisible()]
    assert len(w.map_view._centre_labels) == 4 and labels
    rects = [t.mapRectToScene(t.boundingRect()) for t in labels]
    assert not any(a.intersects(b) for k, a in enumerate(rects) for b in rects[k + 1:])
    # a centre stays findable under the mouse, whether its label shows or not
    name, xy = next(iter(w.controller.class_centres_2d().items()))
    assert w.map_view.centre_under(*xy) == name
