"""The phase policy in the window: the sound panel says how a sound was made, and the reference switch works."""

from __future__ import annotations

import pytest
from explorer_tiny import make_dataset_folder, tiny_loaded_model
from test_explorer_window import TIMEOUT, click_data, make_window, wait_map

from models.inference import engine

pytestmark = pytest.mark.gui


def test_original_phase_is_a_reference_the_user_switches_on(qtbot, tmp_path):
    w, sink = make_window(qtbot, tmp_path)
    w.open_dataset(make_dataset_folder(tmp_path / "ds", per_class=4))
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.add_model(tiny_loaded_model())
    wait_map(qtbot, w, 16)
    c, panel = w.controller, w.sound_panel
    assert c.clip_phase == engine.ESTIMATED_PHASE and not panel.original_phase.isChecked()
    x, y = c.points[3]
    click_data(qtbot, w, x, y)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    # the panel always says how the sound it shows was made (the tiny model decodes a waveform)
    assert panel.made_label.text() == f"decoded: {c.decoded.decoded.made}" and c.decoded.decoded.made
    panel.original_phase.setChecked(True)  # the clip is decoded again, with its own phase, and played
    qtbot.waitUntil(lambda: len(sink.played) == 2, timeout=TIMEOUT)
    assert c.clip_phase == "original"
    panel.original_phase.setChecked(False)
    qtbot.waitUntil(lambda: len(sink.played) == 3, timeout=TIMEOUT)
    assert c.clip_phase == engine.ESTIMATED_PHASE
