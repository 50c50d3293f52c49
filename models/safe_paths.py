"""Output names that stay where the user asked, and file names shown whatever their bytes.

Every writer that takes a file name from somewhere the user does not type (a render spec, a
path's title, a dataset's key) goes through :func:`confined_path`: the name must be one plain
path component, so nothing is ever written outside the chosen folder. Free names (``stem-2``,
``stem-3``...) are searched by :func:`free_stem`, which gives up after a bounded number of tries
instead of looping when every candidate is taken.

File names read from disk may be any bytes (POSIX allows everything but ``/`` and NUL); Python
keeps the undecodable ones as lone surrogates (``surrogateescape``). :func:`display_name` turns
those into ``\\xNN`` escapes for messages and lists, so a name that is not UTF-8 is shown, never
fatal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from models.errors import ConfigError

__all__ = ["MAX_FREE_TRIES", "confined_path", "display_name", "free_stem", "safe_name", "within"]

#: how many ``-k`` suffixes :func:`free_stem` tries before it gives up
MAX_FREE_TRIES = 10_000
#: most file systems limit one name to 255 bytes
MAX_NAME_BYTES = 255


def display_name(name: str | os.PathLike | bytes) -> str:
    """``name`` as printable text: undecodable bytes become ``\\xNN``, control characters escaped."""
    if isinstance(name, bytes):
        raw = name
    else:
        try:
            raw = os.fsencode(os.fspath(name))
        except UnicodeEncodeError:  # a lone surrogate (e.g. "\ud800" from JSON) has no bytes
            raw = os.fspath(name).encode("utf-8", errors="backslashreplace")
    text = raw.decode("utf-8", errors="backslashreplace")
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def safe_name(name: object, *, what: str = "output file name") -> str:
    """``name`` if it is one plain file name, else ConfigError saying why.

    Refused: anything but a string, the empty name, ``.`` and ``..``, absolute names, any path
    separator (so ``../x`` and ``a/b``), NUL and other control characters, names over 255 bytes,
    and names starting with ``.`` (hidden files and our own temporaries).
    """
    if not isinstance(name, str):
        raise ConfigError(f"{what} must be a string, got {type(name).__name__}")
    shown = display_name(name) if name else "''"
    if name in ("", ".", ".."):
        raise ConfigError(f"{what} {shown!r} is not a file name")
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name) or os.path.isabs(name):
        raise ConfigError(f"{what} {shown!r} names a path; only a plain file name is allowed "
                          "(it is written inside the output folder)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ConfigError(f"{what} {shown!r} holds a control character (NUL, newline...)")
    if name.startswith("."):
        raise ConfigError(f"{what} {shown!r} starts with '.'; hidden names are not written")
    try:
        size = len(os.fsencode(name))
    except UnicodeEncodeError:
        raise ConfigError(f"{what} {shown!r} cannot be encoded as a file name") from None
    if size > MAX_NAME_BYTES:
        raise ConfigError(f"{what} is {size} bytes long; file names are limited to {MAX_NAME_BYTES}")
    return name


def within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (links followed) to ``root`` or something inside it."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def confined_path(out_dir: str | os.PathLike, name: object, *, what: str = "output file name") -> Path:
    """``out_dir / name``, refusing any ``name`` that would land anywhere else.

    Besides :func:`safe_name`, an existing symbolic link at that name is refused: replacing it
    would be fine (``os.replace`` swaps the link itself), but a user who finds a link there did
    not ask for it to be replaced by audio.
    """
    name = safe_name(name, what=what)
    path = Path(out_dir) / name
    if path.is_symlink():
        raise ConfigError(f"{what} {display_name(name)!r} is a symbolic link in {display_name(out_dir)}; "
                          "it is not replaced")
    return path


def free_stem(out_dir: str | os.PathLike, stem: str, names_for: Callable[[str], Iterable[str]],
              *, limit: int = MAX_FREE_TRIES) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... the first whose files do not exist in ``out_dir``.

    names_for : ``stem -> the file names`` an output with that stem would write (each checked
        with :func:`safe_name`, so a name can only ever be looked up inside ``out_dir``).

    Raises
    ------
    ConfigError
        A name is not a plain file name, or ``limit`` candidates are all taken (the search is
        bounded: a name that never changes with the stem cannot make it loop).
    """
    out_dir = Path(out_dir)
    for k in range(1, limit + 1):
        candidate = stem if k == 1 else f"{stem}-{k}"
        names = [safe_name(n) for n in names_for(candidate)]
        if not any(os.path.lexists(out_dir / n) for n in names):
            return candidate
    raise ConfigError(f"no free name for {display_name(stem)!r} in {display_name(out_dir)} after {limit} tries; "
                      "choose another output folder")
