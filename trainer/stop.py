"""Stop requests: SIGTERM/SIGINT, a ``STOP`` file in the run folder, or ``stop`` on stdin.

The loop polls :meth:`StopRequest.reason` after every step; the step in flight always finishes,
then the trainer saves ``last`` and its state and exits 0. A second SIGINT while stopping
raises KeyboardInterrupt (the user insists); the last saved checkpoint stays loadable because
every write is atomic.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

STOP_FILE = "STOP"


class StopRequest:
    """Collects stop requests from signals, a file and stdin.

    Parameters
    ----------
    run_dir : the run folder, where a file named ``STOP`` asks for a stop.
    stdin_commands : read lines from stdin; ``stop`` asks for a stop.
    watch_file : look for (and remove) the ``STOP`` file; off on the ranks > 0 of a distributed
        run, which write nothing and learn of a stop from rank 0.
    """

    def __init__(self, run_dir: Path, *, stdin_commands: bool = False, watch_file: bool = True) -> None:
        self.stop_file = run_dir / STOP_FILE
        self._watch_file = watch_file
        self._reason: str | None = None
        self._previous: dict[int, object] = {}
        if stdin_commands:
            threading.Thread(target=self._read_stdin, name="stdin-commands", daemon=True).start()

    def install(self) -> None:
        """Catch SIGTERM and SIGINT (main thread only, as Python requires)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def clear_stale_file(self) -> None:
        """A STOP file left by an earlier run would stop this one at once: remove it."""
        if self.stop_file.exists():
            log.info("removing stale %s", self.stop_file)
            self.stop_file.unlink(missing_ok=True)

    def request(self, reason: str) -> None:
        if self._reason is None:
            self._reason = reason
            log.info("stop requested (%s); finishing the current step", reason)

    def reason(self) -> str | None:
        """``"signal"``, ``"stop_file"``, ``"stdin"`` or None."""
        if self._reason is None and self._watch_file and self.stop_file.exists():
            self.stop_file.unlink(missing_ok=True)
            self.request("stop_file")
        return self._reason

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.request("signal")

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            if line.strip().lower() == "stop":
                self.request("stdin")
                return
