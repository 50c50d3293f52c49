"""The NSynth layout: ``examples.json`` (a dict keyed by ``note_str``) and ``audio/<note_str>.wav``.

Point the reader at the folder that holds ``examples.json`` (``nsynth-train``, ``nsynth-valid``,
``nsynth-test`` or one our builder wrote) or at the file itself. Every field of the JSON entry is
kept in ``clip.meta``; the categorical ones are also labels. Filters take any field, e.g.
``instrument_family_str=["brass", "flute"]``, ``pitch=60``, ``velocity=range(50, 128)``.

At open the index is trusted: with 289,205 notes in ``nsynth-train`` we check only that each
file exists and is not empty (one directory listing), not its header; decode errors surface
when features are computed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from models.datasets.base import DEFAULT_MAX_DURATION, Clip, Dataset, Rejected, apply_filters
from models.errors import ConfigError, DatasetError
from models.safe_json import load_json_file
from models.safe_paths import display_name, safe_name

#: NSynth's instrument families and sources, in the order of their integer codes.
FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release",
    "multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced",
)
FIELDS = (
    "note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
    "qualities", "qualities_str", "instrument_family", "instrument_family_str",
    "instrument_source", "instrument_source_str",
)
LABEL_FIELDS = ("instrument_family_str", "instrument_source_str", "instrument_str", "pitch", "velocity")
NSYNTH_SAMPLE_RATE = 16000
#: nsynth-train's examples.json is about 180 MB
MAX_INDEX_BYTES = 1 << 30

_INT_FIELDS = ("note", "instrument", "instrument_family", "instrument_source")
_STR_FIELDS = ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str")
#: field -> (lowest, highest) of the bounded integer fields
_RANGES = {"pitch": (0, 127), "velocity": (0, 127), "sample_rate": (1000, 384_000)}


def entry_problem(entry: dict[str, Any]) -> str | None:
    """What is wrong with the types of one examples.json entry, or None when nothing is.

    Labels must be strings or integers (they colour the map and split the data); a dict or a
    list where NSynth has a number is refused here, not met later as a TypeError.
    """
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in _INT_FIELDS:
        if not is_int(entry[key]):
            return f"{key} must be an integer, got {_shown(entry[key])}"
    for key in _STR_FIELDS:
        if not isinstance(entry[key], str):
            return f"{key} must be a string, got {_shown(entry[key])}"
    for key, (lo, hi) in _RANGES.items():
        if not is_int(entry[key]) or not lo <= entry[key] <= hi:
            return f"{key} must be an integer from {lo} to {hi}, got {_shown(entry[key])}"
    if not (isinstance(entry["qualities"], list) and all(is_int(q) for q in entry["qualities"])):
        return f"qualities must be a list of integers, got {_shown(entry['qualities'])}"
    if not (isinstance(entry["qualities_str"], list) and all(isinstance(q, str) for q in entry["qualities_str"])):
        return f"qualities_str must be a list of strings, got {_shown(entry['qualities_str'])}"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def find_examples(path: str | os.PathLike) -> Path | None:
    """The ``examples.json`` that ``path`` names or holds, or ``None``."""
    path = Path(path)
    if path.is_file() and path.name == "examples.json":
        return path
    candidate = path / "examples.json"
    return candidate if candidate.is_file() else None


def read_nsynth(
    path: str | os.PathLike,
    *,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    **filters: Any,
) -> Dataset:
    examples = find_examples(path)
    if examples is None:
        splits = sorted(p.name for p in Path(path).glob("nsynth-*") if find_examples(p))
        hint = f" (choose one of its splits: {', '.join(splits)})" if splits else ""
        raise DatasetError(f"{path}: no examples.json here{hint}")
    root = examples.parent
    index = load_json_file(examples, what="NSynth index", error=DatasetError, max_bytes=MAX_INDEX_BYTES)
    if not isinstance(index, dict):
        raise DatasetError(f"{examples}: expected a JSON object keyed by note_str")

    audio_dir = root / "audio"
    present: dict[str, int] = {}
    if audio_dir.is_dir():
        with os.scandir(audio_dir) as it:
            for e in it:
                with contextlib.suppress(OSError):  # vanished since listed: treated as missing
                    if e.is_file():
                        present[e.name] = e.stat().st_size

    clips: list[Clip] = []
    rejected: list[Rejected] = []
    for note_str in sorted(index):
        entry = index[note_str]
        try:
            # the key names a file in audio/: never "../x", "/x" or "a/b", which would read elsewhere
            name = safe_name(f"{note_str}.wav", what="examples.json key")
        except ConfigError as exc:
            rejected.append(Rejected(audio_dir / display_name(note_str), str(exc)))
            continue
        wav = audio_dir / name
        missing = [f for f in FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            rejected.append(Rejected(wav, f"examples.json entry lacks {', '.join(missing)}"))
            continue
        problem = entry_problem(entry)
        if problem is not None:
            rejected.append(Rejected(wav, f"examples.json entry: {problem}"))
            continue
        labels = {name: entry[name] for name in LABEL_FIELDS}
        clips.append(Clip(path=wav, name=note_str, labels=labels, meta=dict(entry)))
    clips = apply_filters(clips, filters, kind="nsynth")

    kept: list[Clip] = []
    for clip in clips:
        size = present.get(clip.path.name)
        if size is None:
            rejected.append(Rejected(clip.path, "listed in examples.json but the file is missing"))
        elif size == 0:
            rejected.append(Rejected(clip.path, "empty file"))
        else:
            kept.append(clip)
    if not filters:
        listed = {f"{k}.wav" for k in index}
        for name in sorted(set(present) - listed):
            if name.endswith(".wav"):
                rejected.append(Rejected(audio_dir / name, "not listed in examples.json"))

    rates = {int(c.meta["sample_rate"]) for c in kept}
    return Dataset(
        root=root,
        kind="nsynth",
        clips=kept,
        label_fields=LABEL_FIELDS,
        default_label="instrument_family_str",
        group_key="instrument_str",
        sample_rate=rates.pop() if len(rates) == 1 else NSYNTH_SAMPLE_RATE,
        rejected=rejected,
        max_duration=max_duration,
    )
