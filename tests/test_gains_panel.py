"""Colonel's latent gains: a dial turned by the mouse, the keyboard or the wheel reaches the controller."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from explorer.sound.sound_panel import GainsPanel

pytestmark = pytest.mark.gui


def test_a_dial_turned_from_the_keyboard_is_applied_once_it_settles(qtbot):
    panel = GainsPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.gains_edited, timeout=2000) as sent:
        qtbot.keyClick(panel.dials[0], Qt.Key.Key_PageUp)
    values, _edges = sent.args
    assert values[0] == pytest.approx(panel.dials[0].value() / 100) and values[0] > 1.0


def test_showing_the_controllers_state_sends_nothing_back(qtbot):
    panel = GainsPanel()
    qtbot.addWidget(panel)
    with qtbot.assertNotEmitted(panel.gains_edited, wait=400):
        panel.set_state([0.5] * len(panel.dials), [0.2, 0.4, 0.6, 0.8][: len(panel.edge_sliders)])
    assert panel.values()[0] == pytest.approx(0.5)
