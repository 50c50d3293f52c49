"""One live input (a sound card, or a file played as one) run on its own thread.

Live input runs for as long as the user lets it, so it gets a thread of its own rather than one of
the task runner's few (a click's decoding must never queue behind it). The compute chain is
:func:`models.realtime.live_input.run_live`; this only starts it, stops it (closing the source,
which also unblocks a sound card that delivers nothing) and brings its news to the GUI thread as
queued signals.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from models.errors import LatentExplorerError
from models.realtime.live_input import LiveCursor, LiveEncoder, run_live

#: the cursor is sent to the GUI at most this often (a frame model makes a code every 8-16 ms)
MOVE_INTERVAL_S = 1 / 60


class LiveRun(QObject):
    """``moved((x, y))`` while it runs; then ``ended(path [shape=(n, 2)])`` or ``failed(message)``."""

    moved = Signal(object)
    ended = Signal(object)
    failed = Signal(str)

    def __init__(self, source: Any, encoder: LiveEncoder, cursor: LiveCursor, *, name: str,
                 resynthesis: bool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source, self.encoder, self.cursor = source, encoder, cursor
        self.name = name
        #: whether the codes also drive the engine: fixed for the run, whatever the menu says later
        self.resynthesis = bool(resynthesis)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-input", daemon=True)
        self._last_move = 0.0

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, wait: float = 2.0) -> None:
        """Ask the run to end and close its source; waits up to ``wait`` seconds for the thread."""
        self._stop.set()
        self._close_source()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=wait)

    def _close_source(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            try:
                close()
            except OSError:  # a card already gone: nothing left to release
                pass

    def _on_position(self, _sample: int, xy: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_move >= MOVE_INTERVAL_S:
            self._last_move = now
            self.moved.emit((float(xy[0]), float(xy[1])))

    def _run(self) -> None:
        try:
            path = run_live(self.source, self.encoder, self.cursor, should_stop=self._stop.is_set,
                            on_position=self._on_position)
        except (LatentExplorerError, OSError, ValueError) as exc:  # a file or card that fails mid-way
            if not self._stop.is_set():
                self.failed.emit(f"Live input stopped: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a thread that dies unseen would leave the GUI waiting: say it
            self.failed.emit(f"Live input stopped by an internal error: {type(exc).__name__}: {exc}")
            return
        finally:
            self._close_source()
        self.ended.emit(np.array([xy for _, xy in path if xy is not None], dtype=float).reshape(-1, 2))
