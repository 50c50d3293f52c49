"""Every file a dataset left out, with the reason, in one list (no Qt).

Files are refused at two moments (see :mod:`models.datasets.base`): when the folder is opened
(the header does not parse, the file is empty or too short) and when a clip is decoded (a
truncated body, NaN samples, features that are not finite). A user who sees "5 files refused"
needs the names and the reasons of both kinds, wherever they were found: this module merges
them, without duplicates, in the words ``latent-trainer dataset info`` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: when a file was refused
HEADER, DECODE = "header", "decode"


@dataclass(frozen=True)
class SkippedFile:
    """One refused file.

    path : where it is.
    name : the path relative to the dataset's folder (what a user recognises).
    reason : why, in words (no leading file name).
    stage : :data:`HEADER` (refused when opening) or :data:`DECODE` (when decoding).
    """

    path: Path
    name: str
    reason: str
    stage: str

    def line(self) -> str:
        """The text ``latent-trainer dataset info`` prints for this file."""
        return f"{self.name}: {self.reason}"


def _name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(path).name


class SkippedFiles:
    """The refused files of one dataset, in the order they were found, each path once.

    Parameters
    ----------
    dataset : a :class:`models.datasets.base.Dataset`; its ``rejected`` entries (refused at
        open, or by ``validate``) are taken in at once.
    """

    def __init__(self, dataset: Any = None) -> None:
        self.root: Path | None = Path(dataset.root) if dataset is not None else None
        self._items: dict[str, SkippedFile] = {}
        if dataset is not None:
            self.add_rejected(dataset.rejected, stage=HEADER)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):  # noqa: ANN204 - an iterator of SkippedFile
        return iter(self._items.values())

    @property
    def items(self) -> list[SkippedFile]:
        return list(self._items.values())

    def add(self, path: str | Path, reason: str, *, stage: str) -> bool:
        """Record one file; returns False when it was already listed (the first reason stays)."""
        key = str(Path(path))
        if key in self._items:
            return False
        self._items[key] = SkippedFile(Path(path), _name(Path(path), self.root), str(reason), stage)
        return True

    def add_rejected(self, rejected: Iterable[Any], *, stage: str = DECODE) -> int:
        """Take in ``Rejected`` entries (``.path``, ``.reason``); returns how many were new.

        ``dataset.rejected`` mixes header refusals with those ``validate`` added: an entry
        whose reason is one a header check gives cannot be told apart, so the stage is the
        caller's word.
        """
        return sum(self.add(r.path, r.reason, stage=stage) for r in rejected)

    def add_failed(self, dataset: Any, failed: Iterable[tuple[int, str]]) -> int:
        """Take in an encoding's ``failed`` list (clip index, reason) of ``dataset``."""
        return sum(self.add(dataset.clips[int(i)].path, reason, stage=DECODE) for i, reason in failed)

    def lines(self) -> list[str]:
        """One ``"name: reason"`` line per file."""
        return [s.line() for s in self._items.values()]

    def summary(self) -> str:
        """A status-bar sentence: how many files were left out, of which when decoding."""
        n = len(self)
        if n == 0:
            return "no file skipped"
        late = sum(1 for s in self._items.values() if s.stage == DECODE)
        files = f"{n} file{'s' if n != 1 else ''} skipped"
        return f"{files} ({late} when decoded)" if late else files


def with_reasons(encoding: Any, dataset: Any, rejected: Iterable[Any]) -> Any:
    """``encoding`` with the feature cache's reasons in its ``failed`` list, returned.

    An encoding made from cached features only knows that a clip has none ("could not be
    decoded"); the cache's ``Rejected`` entries know why (NaN samples, a truncated file).
    """
    if encoding is None:
        return None
    why = {str(r.path): r.reason for r in rejected}
    encoding.failed = [(i, why.get(str(dataset.clips[int(i)].path), reason)) for i, reason in encoding.failed]
    return encoding
