"""One trainer per run folder: an OS lock that a second trainer finds, naming the first's PID.

Two trainers on one run folder would both write ``last``, ``best`` and the training state, and
whichever saved later would win: an older checkpoint could replace a newer one. The lock is an
``flock`` on ``run_dir/.trainer.lock``, which the OS drops when the process dies however it
dies (SIGKILL included), so a crash never leaves a stale lock behind; the file holds the PID
and host of the holder for the message. Where ``fcntl`` does not exist, :mod:`filelock` locks
the same file (without the PID).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from types import TracebackType

from models.errors import LatentExplorerError

LOCK_FILE = ".trainer.lock"


class RunLockedError(LatentExplorerError):
    """The run folder is in use by another trainer (the CLI exits 4)."""


class RunLock:
    """Hold the run folder's lock while training; ``with RunLock(run_dir): ...``.

    Raises
    ------
    RunLockedError
        On enter, when another process holds the lock.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None
        self._fallback = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX
            self._acquire_filelock()
            return
        for _ in range(8):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunLockedError(
                    f"{self.path.parent} is in use by another trainer{holder}; wait for it to finish, "
                    "stop it (a file named STOP in the run folder), or choose another --run-dir"
                ) from None
            except OSError:
                os.close(fd)
                raise
            # a trainer that failed may unlink the lock file just after we opened it: a lock on
            # an unlinked file guards nothing, so take the lock of the file now at that path
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:
            raise RunLockedError(f"{self.path.parent}: its lock file keeps being replaced; is another trainer starting?")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd

    def _acquire_filelock(self) -> None:
        import filelock

        lock = filelock.FileLock(str(self.path))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise RunLockedError(f"{self.path.parent} is in use by another trainer; "
                                 "wait for it to finish or choose another --run-dir") from None
        self._fallback = lock

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        if self._fallback is not None:
            self._fallback.release()
            self._fallback = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        if text and text[0].isdigit():
            host = f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else ""
            return f" (PID {int(text[0])}{host})"
    return ""
