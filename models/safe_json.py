"""JSON from files we did not write: nesting depth and size bounded before parsing.

:func:`json.loads` recurses once per nesting level, so ``[[[[...]]]]`` 10^5 deep raises
RecursionError (or, on a small stack, worse) from deep inside the parser. Every JSON a user
can hand us (checkpoint metadata, sessions, render specs, NSynth's ``examples.json``) is
measured first: strings are skipped, and the deepest bracket nesting is counted with numpy in
one pass, so a hostile file costs linear time and fails with our own error type.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ConfigError, LatentExplorerError

__all__ = ["MAX_DEPTH", "json_depth", "load_json_file", "loads_limited"]

#: deeper than anything we write (our deepest is about 6) and far below Python's recursion limit
MAX_DEPTH = 64
#: default size limit of a JSON file read by :func:`load_json_file`
MAX_JSON_BYTES = 256 * 1024 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


def json_depth(text: str | bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON ``text`` (brackets inside strings ignored)."""
    raw = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else bytes(text)
    bare = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    if not len(bare):
        return 0
    step = np.isin(bare, _OPEN).astype(np.int64) - np.isin(bare, _CLOSE).astype(np.int64)
    return int(max(0, np.cumsum(step).max()))


def loads_limited(text: str | bytes, *, where: str, error: type[LatentExplorerError] = ConfigError,
                  max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)``, or ``error`` when it is not JSON or nests past ``max_depth``.

    where : what the text is, for the message (``"session.json"``, ``"checkpoint metadata"``).
    kwargs : passed to :func:`json.loads` (``object_pairs_hook``, ``parse_constant``...).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{where} is not UTF-8 text (byte {exc.start})") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{where} nests {depth} levels deep; at most {max_depth} are read")
    try:
        return json.loads(text, **kwargs)
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON ({exc})") from None
    except RecursionError:  # the pre-count makes this unreachable; kept as a last guard
        raise error(f"{where} nests too deeply to be read") from None


def load_json_file(path: str | os.PathLike, *, what: str, error: type[LatentExplorerError] = ConfigError,
                   max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Read and parse a JSON file with :func:`loads_limited`; unreadable files raise ``error`` too."""
    path = Path(path)
    from models.safe_paths import display_name

    shown = display_name(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{what} {shown} is {size} bytes; at most {max_bytes} are read")
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    return loads_limited(raw, where=f"{what} {shown}", error=error, max_depth=max_depth)
