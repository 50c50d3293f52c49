"""Where events go: stdout (with ``--events``), ``events.jsonl`` always, and the human log.

``events.jsonl`` and ``train.log`` are append-only streams: they are the one exception to
"every file through models.atomic", since a reader tails them while they grow and a crash can
at worst cut the last line (readers skip a line that does not parse).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import IO

from models.events import Event, encode_event

log = logging.getLogger("trainer")


class EventSink:
    """Writes each event as one JSON line to stdout (optional) and to ``run_dir/events.jsonl``.

    Only rank 0 of a distributed run writes (``enabled=False`` elsewhere).
    """

    def __init__(self, run_dir: Path | None, *, stdout: bool, enabled: bool = True) -> None:
        self.stdout = stdout and enabled
        self.enabled = enabled
        self._file: IO[str] | None = None
        if run_dir is not None and enabled:
            self.open(run_dir)

    def open(self, run_dir: Path) -> None:
        if self._file is None and self.enabled:
            run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(run_dir / "events.jsonl", "a", encoding="utf-8")

    def emit(self, event: Event) -> None:
        if not self.enabled:
            return
        line = encode_event(event)
        if self.stdout:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        if self._file is not None:
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                # A full disk must not hide the event that reports it: stdout still gets it.
                log.warning("events.jsonl is no longer written (%s)", exc.strerror or exc)
                self._drop_file()

    def _drop_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()

    def close(self) -> None:
        self._drop_file()


def add_log_file(path: Path) -> logging.Handler:
    """Mirror the human log (stderr) into ``path``; returns the handler to remove later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _QuietFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


class _QuietFileHandler(logging.FileHandler):
    """A log file that goes silent when it cannot be written (a full disk), instead of
    printing logging's "--- Logging error ---" traceback on every later line."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.close()
        self.setLevel(logging.CRITICAL + 1)
