"""Atomic file writing: a crash or a full disk never leaves a half-written file behind.

Every writer in the project goes through these helpers: data is written to a temporary
sibling (same directory, so the final ``os.replace`` is a rename on one file system),
flushed and fsynced, then moved over the destination.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from models.errors import LatentExplorerError


class WriteError(LatentExplorerError, OSError):
    """A file could not be written (disk full, no permission...). Its message names what was
    being written and what is left, never a temporary name; ``errno`` is the original one.
    """

    @classmethod
    def of(cls, exc: OSError, target: str | os.PathLike, *, kept: str = "") -> WriteError:
        """Describe ``exc``, raised while writing ``target`` (a file or a folder).

        kept : what is still there, e.g. ``"the previous checkpoint is unchanged"``.
        """
        from models.safe_paths import display_name

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = f"the disk is full{_why(exc)}"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason = f"no permission to write{_why(exc)}"
        elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
            reason = f"a file is in the way of a folder{_why(exc)}"
        else:
            reason = f"cannot write{_why(exc) or ' (' + type(exc).__name__ + ')'}"
        err = cls(f"{reason}: nothing was written to {display_name(target)}" + (f"; {kept}" if kept else ""))
        err.errno = exc.errno
        return err


def os_error_message(exc: OSError, *, target: str | os.PathLike | None = None) -> str:
    """One line for a failed file operation: a full disk as "... nothing was written to X" (what
    :meth:`WriteError.of` says), any other failure as its reason and the path.

    target : where it was writing, when the error names no file.
    """
    from models.safe_paths import display_name

    where = exc.filename if exc.filename is not None else target
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return str(WriteError.of(exc, where if where is not None else "the disk"))
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}: {display_name(where)}" if where is not None else reason


def _why(exc: OSError) -> str:
    return f" ({exc.strerror})" if exc.strerror else ""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    if "r" in mode or "a" in mode:
        raise ValueError("atomic_open is for writing only")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; the final file gets the mode any other program would give it
        os.fchmod(fd, default_file_mode())
    finally:
        os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def default_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` gives a new file."""
    return 0o666 & ~process_umask()


def process_umask() -> int:
    """The process umask, read once and cached.

    Read from ``/proc/self/status`` where there is one; elsewhere by setting and restoring it
    (the umask is process-wide, so this is done once, not on every write).
    """
    global _UMASK
    if _UMASK is None:
        mask = None
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Umask:"):
                        mask = int(line.split()[1], 8)
        if mask is None:
            mask = os.umask(0o022)
            os.umask(mask)
        _UMASK = mask
    return _UMASK


_UMASK: int | None = None


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporaries a killed writer left in ``directory`` (``.NAME.*.tmp``); returns them.

    Only call this where no other writer can be at work (e.g. under a run-directory lock).
    """
    removed = []
    for p in Path(directory).glob(".*.tmp"):
        if p.is_file() and not p.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory in a temporary sibling, then swap it in place of ``path``.

    The previous directory (if any) is kept until the new one is complete, so a crash
    while writing leaves the old one intact. The swap itself is two renames; between them
    ``path`` is briefly absent but ``<path>.old-*`` holds the previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~process_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Durability of the rename itself; not every platform lets us open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
