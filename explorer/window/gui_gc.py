"""Python's cycle collector runs on the GUI thread only, while a window is open.

The collector runs on whichever thread happens to allocate when a threshold is crossed. When that
is a worker (a render, a decode) and the garbage holds Qt wrappers, Qt objects are destroyed off
the GUI thread while the GUI thread holds the GIL: measured here as a deadlock (a render worker's
collection freeing a QObject waits for the GIL, the GUI thread waits for that object's mutex).
pyqtgraph's ``GarbageCollector`` (a well-kept helper for exactly this) disables automatic
collection and collects on a GUI-thread timer instead; a count lets several windows share it.

A full collection walks every tracked object: with torch, librosa, numba and Qt imported that is
about 300,000 objects and 180-220 ms measured here, a stall of the window each time the oldest
generation is collected. So when the first window opens, everything alive (the imported modules'
objects, which live as long as the process) is moved out of the collector's reach with
``gc.freeze()``; a full collection then walks what the session made since (about 20 ms with the
demo loaded). Frozen objects are still freed by reference counting; only a cycle among them
would stay, and the last window's close hands them back (``gc.unfreeze()``).
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

_holders = 0
_collector: GarbageCollector | None = None


def hold() -> None:
    """A window opened: collect on the GUI thread from now on."""
    global _holders, _collector
    _holders += 1
    if _collector is None:
        gc.freeze()  # the imports' objects: never walked again by a collection on the GUI thread
        _collector = GarbageCollector(interval=0.5)


def release() -> None:
    """A window closed: the last one gives collection back to Python (and collects once)."""
    global _holders, _collector
    _holders = max(0, _holders - 1)
    if _holders == 0 and _collector is not None:
        _collector.timer.stop()
        _collector = None
        gc.unfreeze()
        gc.enable()
        gc.collect()
