"""Datasets: readers for a folder of sounds, NSynth, the Free Spoken Digit Dataset and Hydrogen
drumkits; builders that write the NSynth and FSDD layouts from a SoundFont and espeak-ng.

>>> ds = open_dataset("nsynth-valid", instrument_family_str=["brass", "flute"], pitch=60)
>>> y = ds.load(0, sr=16000)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from models.datasets.base import DEFAULT_MAX_DURATION, BuildCancelled, BuildReport, Clip, Dataset, Rejected
from models.datasets.build_digits import build_digits
from models.datasets.build_notes import build_notes
from models.datasets.folder import read_folder
from models.datasets.fsdd import looks_like_fsdd, parse_fsdd_name, read_fsdd
from models.datasets.hydrogen import classify_instrument, kit_folders, read_hydrogen
from models.datasets.nsynth import find_examples, read_nsynth
from models.errors import DatasetError

KINDS = ("folder", "nsynth", "fsdd", "hydrogen")

_READERS = {"folder": read_folder, "nsynth": read_nsynth, "fsdd": read_fsdd, "hydrogen": read_hydrogen}


def detect_kind(path: str | os.PathLike) -> str:
    """Guess the layout of ``path``: NSynth index, Hydrogen kit(s), FSDD names, else a folder."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if find_examples(path) is not None:
        return "nsynth"
    if kit_folders(path):
        return "hydrogen"
    if path.is_dir():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir() and find_examples(p))
        if splits:
            raise DatasetError(f"{path} holds NSynth splits; open one of them: {', '.join(splits)}")
    if path.is_dir() and looks_like_fsdd(path):
        return "fsdd"
    if path.is_dir():
        return "folder"
    raise DatasetError(f"{path}: not a dataset folder")


def open_dataset(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    **filters: Any,
) -> Dataset:
    """Open the dataset at ``path``.

    Parameters
    ----------
    path : a folder (or NSynth's ``examples.json``, or a ``drumkit.xml``).
    kind : ``"folder"``, ``"nsynth"``, ``"fsdd"`` or ``"hydrogen"``; detected when ``None``.
    max_duration : ``dataset.load`` reads at most this many seconds of each clip
        (default 30 s; ``None`` reads whole files).
    **filters : keep only clips whose label or metadata fields match, e.g. ``pitch=60``,
        ``instrument_family_str=["brass", "flute"]``, ``velocity=range(50, 128)``, or a callable.

    Raises
    ------
    DatasetError
        The path is missing, of an unknown kind, or filtered by a field it does not have.
    """
    kind = kind or detect_kind(path)
    if kind not in _READERS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    if max_duration is not None and max_duration <= 0:
        raise DatasetError(f"max_duration must be positive or None, got {max_duration}")
    return _READERS[kind](path, max_duration=max_duration, **filters)


__all__ = [
    "KINDS",
    "BuildCancelled",
    "BuildReport",
    "Clip",
    "Dataset",
    "Rejected",
    "build_digits",
    "build_notes",
    "classify_instrument",
    "detect_kind",
    "open_dataset",
    "parse_fsdd_name",
]
