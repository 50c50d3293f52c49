"""A user's own folders in the window: skipped files, the descriptor map, a model that survives (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from explorer_tiny import make_dataset_folder, tiny_loaded_model
from own_window import TIMEOUT, make_window, wait_map, window_on

from explorer.core.own_data import DESCRIPTORS
from explorer.window.skipped_dialog import SkippedFilesDialog

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory):
    """Good sounds in three classes, plus an empty file, a text file and an all-NaN WAV."""
    root = make_dataset_folder(tmp_path_factory.mktemp("broken"), per_class=6)
    (root / "low" / "empty.wav").write_bytes(b"")
    (root / "mid" / "notes.wav").write_text("not audio")
    sf.write(root / "high" / "nan.wav", np.full(2000, np.nan, np.float32), 8000, subtype="FLOAT")
    return root


def _open(qtbot, w, path) -> None:  # noqa: ANN001
    w.open_dataset(path)
    qtbot.waitUntil(lambda: w.controller.dataset is not None and str(w.controller.dataset_path) == str(path),
                    timeout=TIMEOUT)


def test_skipped_files_are_listed_with_reasons(qtbot, tmp_path, broken_dir) -> None:
    w, _ = window_on(qtbot, tmp_path, broken_dir, 24)  # 4 classes x 6; the NaN file fails when encoded
    button = w.own_data.skipped_button
    qtbot.waitUntil(lambda: "3 files skipped" in button.text(), timeout=TIMEOUT)
    assert button.isVisible() and "(1 when decoded)" in button.text()
    # other status messages come and go; the button stays
    w.notifier.status_posted.emit("something else happened")
    assert button.isVisible()
    dlg = button.open_list()
    assert isinstance(dlg, SkippedFilesDialog) and dlg.isVisible()
    rows = dict(dlg.rows())
    assert rows["low/empty.wav"] == "empty file"
    assert rows["mid/notes.wav"].startswith("not a readable audio file")
    assert "NaN" in rows["high/nan.wav"]
    assert dlg.table.item(2, 2).text() == "when decoding"


def test_descriptor_map_plays_originals_and_offers_training(qtbot, tmp_path, broken_dir) -> None:
    w, sink = make_window(qtbot, tmp_path)
    _open(qtbot, w, broken_dir)  # no model at all
    wait_map(qtbot, w, 24)
    c = w.controller
    assert c.current_key == DESCRIPTORS and c.current is None and not w.map_view.hint.isVisible()
    assert w.own_data.train_offer.isVisible()
    # a click on a sound plays its recording
    pos = w.map_view.data_to_viewport(*c.points[3])
    from PySide6.QtCore import Qt

    qtbot.mouseClick(w.map_view.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    y, sr = sink.played[0]
    clip = int(c.point_clip[3])
    assert sr == 8000 and np.allclose(y, c.dataset.load(clip), atol=1e-4) and np.sqrt(np.mean(y**2)) > 0.01
    assert "no model" in w.sound_panel.title.text()
    # the offer opens the trainer on this folder, at its rate
    w.own_data.train_offer.click()
    form = w.trainer_panel.form
    assert w.trainer_panel.isVisible() and form.data.text() == str(broken_dir) and form.chosen_rate() == 8000
    # loading a model switches the map to its latent space
    w.add_model(tiny_loaded_model())
    qtbot.waitUntil(lambda: c.current_key == "tiny-model" and c.embedding is not None
                    and not w.runner.is_running("project") and len(c.points) == 24, timeout=TIMEOUT)
    assert c.encoding.latent_shape == (12,) and not w.own_data.train_offer.isVisible()


def test_a_refused_dataset_never_unloads_the_model(qtbot, tmp_path, broken_dir) -> None:
    w, _ = make_window(qtbot, tmp_path)
    good = make_dataset_folder(tmp_path / "good", per_class=3)
    _open(qtbot, w, good)
    w.add_model(tiny_loaded_model())
    wait_map(qtbot, w, 12)
    c = w.controller
    # a folder with nothing usable: refused, and nothing changes
    bad = tmp_path / "only_broken"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"")
    w.open_dataset(bad)
    qtbot.waitUntil(lambda: w.last_error is not None, timeout=TIMEOUT)
    assert "holds no usable sound" in w.last_error
    assert list(c.models) == ["tiny-model"] and c.current_key == "tiny-model" and str(c.dataset_path) == str(good)
    assert w.own_data.last_fit_notes == ()  # the 8 kHz model on 8 kHz sounds: nothing to say
    # a folder the model cannot read (clips shorter than its analysis): it stays loaded, the map
    # shows the descriptors, and the model comes back on a folder it reads
    short = tmp_path / "short"
    short.mkdir()
    for k in range(4):
        # 600 samples at 96 kHz: 50 at the model's 8 kHz (fewer than its analysis needs), 137 at 22.05 kHz
        sf.write(short / f"s{k}.wav", (0.3 * np.sin(np.arange(600) * (0.3 + 0.05 * k))).astype(np.float32), 96000)
    _open(qtbot, w, short)
    qtbot.waitUntil(lambda: c.current_key == DESCRIPTORS and len(c.points) == 4, timeout=TIMEOUT)
    assert "tiny-model" in c.models and "stays loaded" in w.last_error
    _open(qtbot, w, good)
    qtbot.waitUntil(lambda: c.current_key == "tiny-model" and len(c.points) == 12 and c.embedding is not None,
                    timeout=TIMEOUT)
    # the same model at 16 kHz: accepted, and the window says the clips are resampled
    other = tiny_loaded_model("tiny-16k")
    other.representation.sample_rate = 16000
    w.add_model(other)
    qtbot.waitUntil(lambda: c.current_key == "tiny-16k", timeout=TIMEOUT)
    assert w.own_data.last_fit_notes == ("clips resampled from 8000 Hz to the model's 16000 Hz",)


def test_the_current_sound_drags_out_as_a_wav(qtbot, tmp_path, broken_dir) -> None:
    from PySide6.QtCore import Qt

    w, sink = window_on(qtbot, tmp_path, broken_dir, 24)
    w.settings.setValue("drag/dir", str(tmp_path / "drag"))
    w.settings.setValue("export/rate", 0)  # the sound's own rate
    c = w.controller
    assert not w.sound_panel.drag.isEnabled() and not w.sound_panel.export_btn.isEnabled()
    qtbot.mouseClick(w.map_view.plot.viewport(), Qt.MouseButton.LeftButton, pos=w.map_view.data_to_viewport(*c.points[5]))
    qtbot.waitUntil(lambda: c.decoded is not None and len(sink.played) == 1, timeout=TIMEOUT)
    assert w.sound_panel.drag.isEnabled() and w.sound_panel.export_btn.isEnabled()
    mime = w.sound_panel.drag.mime_data()
    (url,) = mime.urls()
    path = url.toLocalFile()
    y, sr = sf.read(path)
    assert path.startswith(str(tmp_path / "drag")) and sr == c.decoded.decoded.sr
    assert len(y) == len(c.decoded.decoded.y) and np.sqrt(np.mean(y**2)) > 0.01
    assert w.sound_panel.drag.mime_data().urls()[0].toLocalFile() == path  # dragged again: the same file
