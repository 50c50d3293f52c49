"""The Free Spoken Digit Dataset layout: ``{digit}_{speaker}_{index}.wav``, mono 8 kHz.

The label is the digit (an int); the speaker is the group key, so a split by speaker tests on
voices the model never heard. ``meta["split"]`` follows the dataset's usual convention: indices
0-4 are ``"test"``, the rest ``"train"``. Point the reader at the folder holding the files or at
the repository root (its ``recordings/`` sub-folder is used).
"""

from __future__ import annotations

import os
import re
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

FSDD_SAMPLE_RATE = 8000
#: Speakers may hold anything but an underscore (the field separator).
_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[^_]+)_(?P<index>\d+)$")
TEST_INDICES = range(5)


def parse_fsdd_name(name: str) -> tuple[int, str, int]:
    """``"3_jackson_12.wav"`` -> ``(3, "jackson", 12)``.

    Raises
    ------
    DatasetError
        The name does not follow ``{digit}_{speaker}_{index}.wav``.
    """
    stem = Path(name).stem if Path(name).suffix.lower() == ".wav" else None
    match = _NAME.match(stem) if stem is not None else None
    if match is None:
        raise DatasetError(
            f"{Path(name).name}: name does not follow {{digit}}_{{speaker}}_{{index}}.wav"
        )
    return int(match["digit"]), match["speaker"], int(match["index"])


def fsdd_root(path: str | os.PathLike) -> Path:
    path = Path(path)
    recordings = path / "recordings"
    return recordings if recordings.is_dir() else path


def looks_like_fsdd(path: str | os.PathLike, *, sample: int = 50) -> bool:
    """True when most audio files directly in the folder follow the FSDD naming."""
    root = fsdd_root(path)
    if not root.is_dir():
        return False
    names = [n for n in sorted(os.listdir(root)) if is_audio_path(n)][: sample * 4]
    if not names:
        return False
    good = sum(1 for n in names if _NAME.match(Path(n).stem) and n.lower().endswith(".wav"))
    return good >= max(1, int(0.8 * len(names)))


def read_fsdd(
    path: str | os.PathLike,
    *,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    **filters: Any,
) -> Dataset:
    root = fsdd_root(path)
    if not root.is_dir():
        raise DatasetError(f"{path}: not a folder")
    clips: list[Clip] = []
    rejected: list[Rejected] = []
    for name in sorted(os.listdir(root)):
        file = root / name
        if name.startswith(".") or not file.is_file() or not is_audio_path(name):
            continue
        try:
            digit, speaker, index = parse_fsdd_name(name)
        except DatasetError as exc:
            rejected.append(Rejected(file, str(exc).split(": ", 1)[1]))
            continue
        info, reason = check_header(file)
        if info is None:
            rejected.append(Rejected(file, reason or "unreadable"))
            continue
        meta = {"index": index, "split": "test" if index in TEST_INDICES else "train", **header_meta(info)}
        clips.append(Clip(path=file, name=name, labels={"digit": digit, "speaker": speaker}, meta=meta))
    clips = apply_filters(clips, filters, kind="fsdd")
    return Dataset(
        root=root,
        kind="fsdd",
        clips=clips,
        label_fields=("digit", "speaker"),
        default_label="digit",
        group_key="speaker",
        sample_rate=most_common_rate(clips) or FSDD_SAMPLE_RATE,
        rejected=rejected,
        max_duration=max_duration,
    )
