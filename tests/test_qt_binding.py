"""Guard against a Qt binding that loses references to None (PySide6 6.12.0 on Python 3.11).

Such a binding aborts the app ("none_dealloc") after enough GUI work; requirements pin a good one.
"""

import sys

import pytest


@pytest.mark.gui
def test_void_qt_calls_keep_none_alive(qtbot):
    from PySide6.QtWidgets import QProgressBar

    bar = QProgressBar()
    qtbot.addWidget(bar)
    before = sys.getrefcount(None)
    for i in range(200):
        bar.setValue(i % 100)
        bar.setEnabled(True)
    # other threads may hold or drop a few references meanwhile; a leak loses one per call
    assert sys.getrefcount(None) - before > -50
