"""Content hashes of dataset files, cached so that re-opening a large dataset stays fast.

The cache is one JSON file per dataset root (named by a hash of its absolute path) mapping a
relative path to ``[size, mtime_ns, hash]``; a file whose size or mtime changed is hashed
again. It is only a cache: losing it costs time, never correctness, and two processes writing
it at once simply leave the last complete (atomically written) version.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from models.atomic import atomic_write_json
from models.errors import LatentExplorerError
from models.safe_json import load_json_file

_CHUNK = 1 << 20
_log = logging.getLogger(__name__)


def default_cache_root() -> Path:
    """Where the project caches things: ``$LATENT_EXPLORER_CACHE``, else
    ``$XDG_CACHE_HOME/latent-explorer``, else ``~/.cache/latent-explorer``."""
    explicit = os.environ.get("LATENT_EXPLORER_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "latent-explorer"


def hash_file(path: str | os.PathLike) -> str:
    """BLAKE2b (128-bit) of a file's bytes, as 32 hex digits."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _valid_entry(v: object) -> bool:
    return (isinstance(v, list) and len(v) == 3 and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:2])
            and isinstance(v[2], str))


class FileHasher:
    """Hash files under ``root``, reusing hashes of files whose size and mtime are unchanged."""

    def __init__(self, root: str | os.PathLike, *, cache_root: Path | None = None) -> None:
        self.root = Path(root).resolve()
        key = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:24]
        self.cache_path = (cache_root or default_cache_root()) / "hashes" / f"{key}.json"
        self._entries: dict[str, list] = {}
        self._dirty = False
        try:
            data = load_json_file(self.cache_path, what="hash cache")
        except LatentExplorerError:  # missing or damaged: it is only a cache
            data = None
        if isinstance(data, dict) and data.get("root") == str(self.root) and isinstance(data.get("files"), dict):
            self._entries = {k: v for k, v in data["files"].items() if _valid_entry(v)}

    def hash(self, path: str | os.PathLike) -> str:
        """The file's hash, from the cache when its size and mtime are unchanged.

        Raises OSError when the file cannot be read (e.g. it vanished).
        """
        path = Path(path)
        st = path.stat()
        rel = os.path.relpath(path.resolve(), self.root)
        cached = self._entries.get(rel)
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            return str(cached[2])
        digest = hash_file(path)
        self._entries[rel] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        if not self._dirty:
            return
        try:
            atomic_write_json(
                self.cache_path, {"root": str(self.root), "files": self._entries}, indent=None
            )
        except OSError as exc:
            # A read-only cache folder only costs speed: the next open hashes the files again.
            _log.warning("could not save file hashes to %s: %s", self.cache_path, exc)
            return
        self._dirty = False
