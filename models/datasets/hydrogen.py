"""Hydrogen drumkits: ``drumkit.xml`` plus its samples, one clip per sample file.

Handles kits with and without the ``http://www.hydrogen-music.org/drumkit`` namespace, the old
layout (``<instrument><filename>``) and the newer ones (``<instrument><layer><filename>``, also
inside ``<instrumentComponent>``). Free-text instrument names are mapped to seven classes by the
ordered keyword rules in :data:`CLASS_RULES`; names no rule matches are ``"percussion"``.
Placeholder instruments (empty names, bare numbers such as ``"17"``, or a bare note name like
``"f#4 - "``) are dropped silently; listed samples that do not exist are reported in
``rejected``. A folder of kits (e.g. ``/usr/share/hydrogen/data/drumkits``) reads every kit,
with the kit name as group key.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

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

DRUM_CLASSES = ("kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion")

#: First match wins. Hand percussion is tested first so that "cowbell" is not a cymbal
#: bell and "djembe bass" is not a kick.
CLASS_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (cls, re.compile(pattern, re.IGNORECASE))
    for cls, pattern in (
        ("percussion", r"cow ?bell|tambourine|conga|bongo|djembe|dununba|sangban|kenkeni|cajon"
                       r"|clave|wood ?block|agogo|maraca|shaker|triangle|whistle|guiro|cabasa"),
        ("kick", r"kick|bass ?drum|\bbd\b|^bd[ _\d]"),
        ("clap", r"clap|snap"),
        ("hihat", r"hi[- ]?hat|\bhh\b|ohh\b|\bhat\b|hihat"),
        ("snare", r"snare|\bsd\b"),
        ("tom", r"\btom|floor"),
        ("cymbal", r"cymbal|crash|ride|splash|china|\bbell\b|\bcym"),
    )
)
_NOTE_PREFIX = re.compile(r"^\s*[a-g]#?-?\d\s*-\s*", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^\s*\d*\s*$")


def classify_instrument(name: str) -> str:
    """Map a free-text Hydrogen instrument name to one of :data:`DRUM_CLASSES`."""
    for cls, pattern in CLASS_RULES:
        if pattern.search(name):
            return cls
    return "percussion"


def is_placeholder(name: str | None) -> bool:
    """Empty names, bare numbers ("17") and bare note names ("f#4 - ") are unused slots."""
    if name is None:
        return True
    return bool(_PLACEHOLDER.match(_NOTE_PREFIX.sub("", name)))


def kit_folders(path: str | os.PathLike) -> list[Path]:
    """The kit folders ``path`` names: itself when it holds drumkit.xml, else its children."""
    path = Path(path)
    if path.is_file() and path.name == "drumkit.xml":
        return [path.parent]
    if (path / "drumkit.xml").is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted((p for p in path.iterdir() if (p / "drumkit.xml").is_file()), key=lambda p: p.name)


def read_hydrogen(
    path: str | os.PathLike,
    *,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    **filters: Any,
) -> Dataset:
    kits = kit_folders(path)
    if not kits:
        raise DatasetError(f"{path}: no drumkit.xml here or in its sub-folders")
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    clips: list[Clip] = []
    rejected: list[Rejected] = []
    for kit_dir in kits:
        kit_clips, kit_rejected = _read_kit(kit_dir, root)
        clips.extend(kit_clips)
        rejected.extend(kit_rejected)
    clips = apply_filters(clips, filters, kind="hydrogen")
    return Dataset(
        root=root,
        kind="hydrogen",
        clips=clips,
        label_fields=("class", "instrument", "kit"),
        default_label="class",
        group_key="kit",
        sample_rate=most_common_rate(clips),
        rejected=rejected,
        max_duration=max_duration,
    )


def _read_kit(kit_dir: Path, root: Path) -> tuple[list[Clip], list[Rejected]]:
    xml_path = kit_dir / "drumkit.xml"
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as exc:
        return [], [Rejected(xml_path, f"not a readable drumkit.xml ({exc})")]
    top = tree.getroot()
    ns = top.tag[: top.tag.index("}") + 1] if top.tag.startswith("{") else ""
    kit_name = (top.findtext(f"{ns}name") or kit_dir.name).strip() or kit_dir.name

    clips: list[Clip] = []
    rejected: list[Rejected] = []
    seen: set[Path] = set()
    for instrument in top.iter(f"{ns}instrument"):
        name = (instrument.findtext(f"{ns}name") or "").strip()
        if is_placeholder(name):
            continue
        cls = classify_instrument(_NOTE_PREFIX.sub("", name))
        for n_layer, element in enumerate(instrument.iter(f"{ns}filename")):
            text = (element.text or "").strip()
            if not text:
                continue
            file = Path(text) if os.path.isabs(text) else kit_dir / text
            if file in seen:
                continue
            seen.add(file)
            if not file.is_file():
                rejected.append(Rejected(file, f"listed for {name!r} in {kit_name}'s drumkit.xml but missing"))
                continue
            info, reason = check_header(file)
            if info is None:
                rejected.append(Rejected(file, reason or "unreadable"))
                continue
            try:
                rel = file.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                rel = f"{kit_dir.name}/{file.name}"
            meta = {"layer": n_layer, **header_meta(info)}
            labels = {"class": cls, "instrument": name, "kit": kit_name}
            clips.append(Clip(path=file, name=rel, labels=labels, meta=meta))
    return clips, rejected
