"""Which TorchScript files the user agreed to run, remembered by SHA-256 (no Qt).

A TorchScript file is a program: loading it and calling its methods runs code its author wrote.
Nothing opens one unless its hash is in the trust store, which holds the files the user said
yes to and the files this app exported itself (the exporter records the hash it wrote). A file
changed after it was trusted has another hash and asks again.

The store is a JSON file in the user's configuration folder (``$LATENT_EXPLORER_CONFIG_DIR``,
else ``$XDG_CONFIG_HOME/latent-explorer``, else ``~/.config/latent-explorer``), written
atomically. An unreadable store trusts nothing; it is never silently rewritten from scratch.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from models.atomic import atomic_write_json
from models.checkpoints.format import file_sha256
from models.errors import CheckpointError

__all__ = ["TRUST_FILE_NAME", "TrustStore", "UntrustedModelError", "config_dir", "default_store"]

TRUST_FILE_NAME = "trusted_models.json"
TRUST_SCHEMA_VERSION = 1


class UntrustedModelError(CheckpointError):
    """A TorchScript file was asked to open without the user's trust."""


def config_dir() -> Path:
    """The user's configuration folder of latent-explorer (not created here)."""
    own = os.environ.get("LATENT_EXPLORER_CONFIG_DIR")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "latent-explorer"


class TrustStore:
    """SHA-256 -> record of a trusted TorchScript file.

    Parameters
    ----------
    path : the JSON file; :func:`default_store` uses ``config_dir() / TRUST_FILE_NAME``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"the trust store {self.path} cannot be read ({exc}); fix or delete it") from None
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, dict):
            raise CheckpointError(f"the trust store {self.path} is not a latent-explorer trust store; delete it")
        return files

    def is_trusted(self, path: str | os.PathLike, *, sha256: str | None = None) -> bool:
        """Whether the file's current content (its hash) was trusted."""
        return (sha256 or file_sha256(path)) in self._read()

    def trust(self, path: str | os.PathLike, *, source: str = "user", sha256: str | None = None) -> str:
        """Remember the file's hash as trusted; returns the hash.

        source : ``"user"`` (the user said yes) or ``"export"`` (this app wrote it).
        """
        digest = sha256 or file_sha256(path)
        files = self._read()
        files[digest] = {"file": Path(path).name, "source": source,
                         "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"schema_version": TRUST_SCHEMA_VERSION, "files": files})
        return digest

    def source(self, path: str | os.PathLike) -> str | None:
        """``"user"``, ``"export"`` or None (not trusted)."""
        return self.source_of(file_sha256(path))

    def source_of(self, sha256: str) -> str | None:
        """:meth:`source` of a file's contents already read and hashed (so the bytes judged are the
        bytes run)."""
        rec = self._read().get(sha256)
        return None if rec is None else str(rec.get("source", "user"))


def default_store() -> TrustStore:
    """The user's trust store."""
    return TrustStore(config_dir() / TRUST_FILE_NAME)
