"""explorer.window.gui_gc: collection on the GUI thread, with the imports' objects frozen out of it."""

from __future__ import annotations

import gc

from explorer.window import gui_gc


def test_the_first_window_freezes_what_is_alive_and_the_last_one_hands_it_back(qapp):
    assert gc.get_freeze_count() == 0
    before = len(gc.get_objects())
    gui_gc.hold()
    gui_gc.hold()  # a second window shares the collector
    try:
        assert not gc.isenabled()  # pyqtgraph's collector collects on the GUI thread's timer
        assert gc.get_freeze_count() >= before // 2  # the imported modules' objects
        assert len(gc.get_objects()) < before // 2  # a full collection walks only what came since
        gui_gc.release()
        assert gc.get_freeze_count() > 0  # one window still open
    finally:
        gui_gc.release()
    assert gc.get_freeze_count() == 0 and gc.isenabled()
