"""Follow a run folder's ``events.jsonl`` written by a trainer the app did not start.

A run on a GPU machine (with the folder synced or mounted) or in a terminal appends its events
to ``<run_dir>/events.jsonl``; this reads what was added since the last read, from the byte
offset where it stopped. A QFileSystemWatcher wakes it when the file changes, and a polling
timer covers file systems that send no notification (network mounts) and the file appearing
later. A partial last line waits for its end; a truncated or replaced file is read again from
the start.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from explorer.training.trainer_process import LineSplitter
from models.events import EventError, parse_event

EVENTS_FILE = "events.jsonl"


class RunWatcher(QObject):
    """Tails ``run_dir/events.jsonl``.

    Signals
    -------
    event_received(object)
        Each new, valid event (a line that does not parse, e.g. one cut by a crash, is
        reported through ``log_received`` and skipped).
    log_received(str)
    """

    event_received = Signal(object)
    log_received = Signal(str)

    def __init__(self, run_dir: str | os.PathLike, *, poll_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EVENTS_FILE
        self.offset = 0
        self._inode: int | None = None
        self._lines = LineSplitter()
        self._fs = QFileSystemWatcher(self)
        self._fs.fileChanged.connect(self._on_fs_changed)
        self._fs.directoryChanged.connect(self._on_fs_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        """Read what is there now, then follow."""
        if self.run_dir.is_dir():
            self._fs.addPath(str(self.run_dir))
        self.poll()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        paths = self._fs.files() + self._fs.directories()
        if paths:
            self._fs.removePaths(paths)

    def _on_fs_changed(self, _path: str) -> None:
        self.poll()

    def poll(self) -> None:
        """Read and emit the events appended since the last call."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if str(self.path) not in self._fs.files():
            self._fs.addPath(str(self.path))  # watchers drop a file that was replaced
        if st.st_ino != self._inode or st.st_size < self.offset:
            # a new or truncated file: start over
            self._inode, self.offset, self._lines = st.st_ino, 0, LineSplitter()
        if st.st_size == self.offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        self.offset += len(data)
        for line in self._lines.feed(data):
            if not line.strip():
                continue
            try:
                ev = parse_event(line)
            except EventError as exc:
                self.log_received.emit(f"{self.path.name}: skipped a line ({exc})")
                continue
            self.event_received.emit(ev)
