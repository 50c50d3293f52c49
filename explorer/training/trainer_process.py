"""``latent-trainer train`` as a child process (QProcess), its events read line by line.

The app never imports the trainer: it runs ``python -m trainer train ... --events
--stdin-commands`` and reads the versioned JSON lines of :mod:`models.events` from its stdout;
stderr is the human log. Stopping writes ``stop`` on the child's stdin (the trainer finishes the
step, saves ``last`` and its resume state, and exits 0); if it has not ended after
``stop_timeout_ms`` it gets SIGTERM (the same clean stop, for a trainer that stopped reading),
then SIGKILL. Everything arrives through signals on the GUI thread; nothing here blocks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtCore import QIODevice, QObject, QProcess, QProcessEnvironment, QTimer, Signal

from models.events import Event, EventError, parse_event
from models.threads import NICE_ENV

#: how the app runs the trainer: the same interpreter, so the same installed packages
TRAINER_COMMAND = (sys.executable, "-m", "trainer")
#: the nice value a run the app starts adds to its own
TRAINER_NICE = 10


class LineSplitter:
    """Bytes in, complete text lines out; keeps a partial last line for the next chunk."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._rest + data
        *lines, self._rest = data.split(b"\n")
        return [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines]

    def flush(self) -> list[str]:
        rest, self._rest = self._rest, b""
        return [rest.decode("utf-8", "replace")] if rest.strip() else []


class TrainerProcess(QObject):
    """One trainer child process.

    Parameters
    ----------
    args : the trainer's arguments (``train_args(spec)``).
    command : the program and its leading arguments; tests pass a fake trainer script.
    stop_timeout_ms : how long a clean stop may take before SIGTERM, then as long again to SIGKILL.

    Signals
    -------
    event_received(object)
        A parsed :class:`models.events.Event`.
    log_received(str)
        A line of stderr, or a stdout line that is not an event.
    ended(int, bool)
        Exit code and whether it crashed (killed by a signal, failed to start).
    """

    event_received = Signal(object)
    log_received = Signal(str)
    ended = Signal(int, bool)

    def __init__(self, args: Sequence[str], *, command: Sequence[str] = TRAINER_COMMAND,
                 stop_timeout_ms: int = 20000, threads: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.command = list(command)
        self.args = list(args)
        self.stop_timeout_ms = stop_timeout_ms
        self.stopping = False
        self._ended = False
        self._out, self._err = LineSplitter(), LineSplitter()
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        # the trainer yields the CPU to the window (models.threads.NICE_ENV), as t-SNE's child does
        env.insert(NICE_ENV, str(TRAINER_NICE))
        if threads:
            # one core for the GUI: the trainer must not starve the app's event loop
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.insert(name, str(threads))
        self.proc.setProcessEnvironment(env)
        self.proc.readyReadStandardOutput.connect(self._on_proc_stdout)
        self.proc.readyReadStandardError.connect(self._on_proc_stderr)
        self.proc.finished.connect(self._on_proc_finished)
        self.proc.errorOccurred.connect(self._on_proc_error)
        self._escalate = QTimer(self)
        self._escalate.setSingleShot(True)
        self._escalate.timeout.connect(self._on_escalate_timeout)

    # --- control -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.proc.start(self.command[0], self.command[1:] + self.args)

    def is_running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self.proc.processId())

    def stop(self) -> None:
        """Ask for a clean stop (``stop`` on stdin); escalate if it does not come."""
        if not self.is_running() or self.stopping:
            return
        self.stopping = True
        self.proc.write(b"stop\n")
        self._escalate.start(self.stop_timeout_ms)

    def kill(self) -> None:
        if self.is_running():
            self.proc.kill()

    def wait(self, msecs: int) -> bool:
        """Block until the child ends (closing the app only)."""
        return not self.is_running() or self.proc.waitForFinished(msecs)

    # --- slots -----------------------------------------------------------------------------------------
    def _on_escalate_timeout(self) -> None:
        if not self.is_running():
            return
        if self._escalate.property("terminated"):
            self.log_received.emit("the trainer did not stop; killing it")
            self.proc.kill()
            return
        self.log_received.emit(f"no clean stop after {self.stop_timeout_ms / 1000:.0f} s; sending SIGTERM")
        self._escalate.setProperty("terminated", True)
        self.proc.terminate()
        self._escalate.start(self.stop_timeout_ms)

    def _on_proc_stdout(self) -> None:
        self._emit_stdout(self._out.feed(bytes(self.proc.readAllStandardOutput())))

    def _on_proc_stderr(self) -> None:
        for line in self._err.feed(bytes(self.proc.readAllStandardError())):
            self.log_received.emit(line)

    def _emit_stdout(self, lines: list[str]) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                ev: Event = parse_event(line)
            except EventError:
                self.log_received.emit(line)  # a stray print is log, not an event
                continue
            self.event_received.emit(ev)

    def _on_proc_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        # read whatever is left before saying it ended, so the last events come first
        self._on_proc_stdout()
        self._on_proc_stderr()
        self._emit_stdout(self._out.flush())
        for line in self._err.flush():
            self.log_received.emit(line)
        self._end(int(exit_code), status == QProcess.ExitStatus.CrashExit)

    def _on_proc_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.log_received.emit(f"could not start {self.command[0]}: {self.proc.errorString()}")
            self._end(-1, True)

    def _end(self, code: int, crashed: bool) -> None:
        if self._ended:
            return
        self._ended = True
        self._escalate.stop()
        self.ended.emit(code, crashed)


def start_background_resume(args: Sequence[str], *, command: Sequence[str] = TRAINER_COMMAND,
                            log_path: str | os.PathLike | None = None) -> int | None:
    """Start the trainer detached from the app (it outlives it); its pid (0: unknown) or None.

    Used when the user closes the app but wants the run to go on: the piped child is stopped
    cleanly and continued with ``--resume`` here, which is exact (the trainer's resume restores
    the optimizer and RNG state), without stdout (nobody reads it) and stderr to ``log_path``.
    """
    p = QProcess()
    p.setProgram(command[0])
    p.setArguments([*command[1:], *[a for a in args if a not in ("--events", "--stdin-commands")]])
    p.setStandardOutputFile(QProcess.nullDevice())
    p.setStandardInputFile(QProcess.nullDevice())
    if log_path is not None:
        p.setStandardErrorFile(str(log_path), QIODevice.OpenModeFlag.Append)
    result = p.startDetached()  # (ok, pid) as documented, or a bare bool in some PySide6 builds
    ok, pid = result if isinstance(result, tuple) else (result, 0)
    return int(pid) if ok else None
