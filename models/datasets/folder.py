"""Any folder of audio files; labels come from sub-folder names.

``root/kick/a.wav`` gets ``label="kick"``; deeper files keep the first sub-folder as ``label``
and their whole relative folder as ``folder`` (``"kick/acoustic"``). Files directly in ``root``
are labelled with the root folder's own name. Hidden files and folders are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from models.audio import is_audio_path
from models.datasets.base import (
    DEFAULT_MAX_DURATION,
    Clip,
    Dataset,
    Rejected,
    apply_filters,
    check_header,
    header_meta,
    most_common_rate,
)
from models.errors import DatasetError


def walk_audio(root: Path) -> list[Path]:
    """Audio files under ``root`` (recursive, by extension), sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and is_audio_path(name):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_folder(
    root: str | os.PathLike,
    *,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    **filters: Any,
) -> Dataset:
    """Read every audio file under ``root``; unreadable headers go to ``rejected``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    clips: list[Clip] = []
    rejected: list[Rejected] = []
    for path in walk_audio(root):
        info, reason = check_header(path)
        if info is None:
            rejected.append(Rejected(path, reason or "unreadable"))
            continue
        rel = path.relative_to(root)
        parts = rel.parent.parts
        labels = {
            "label": parts[0] if parts else root.resolve().name,
            "folder": rel.parent.as_posix() if parts else ".",
        }
        clips.append(Clip(path=path, name=rel.as_posix(), labels=labels, meta=header_meta(info)))
    clips = apply_filters(clips, filters, kind="folder")
    deep = any(c.labels["folder"] not in (c.labels["label"], ".") for c in clips)
    if not deep:
        for c in clips:
            del c.labels["folder"]
    return Dataset(
        root=root,
        kind="folder",
        clips=clips,
        label_fields=("label", "folder") if deep else ("label",),
        default_label="label",
        group_key=None,
        sample_rate=most_common_rate(clips),
        rejected=rejected,
        max_duration=max_duration,
    )
