"""Names a musician reads for the datasets' label fields (the real field stays the key)."""

from __future__ import annotations

#: label field -> what the combo and the legend say; unknown fields are tidied by rule
FIELD_NAMES = {
    "instrument_family_str": "instrument family",
    "instrument_family": "instrument family (code)",
    "instrument_source_str": "instrument source",
    "instrument_source": "instrument source (code)",
    "instrument_str": "instrument",
    "pitch": "pitch",
    "velocity": "velocity",
    "digit": "digit",
    "speaker": "speaker",
    "kit": "kit",
    "class": "drum class",
    "instrument": "instrument",
    "label": "label",
    "folder": "folder",
}


def field_display_name(field: str) -> str:
    """``"instrument_family_str"`` -> ``"instrument family"``; ``"room_size"`` -> ``"room size"``."""
    if field in FIELD_NAMES:
        return FIELD_NAMES[field]
    name = field[:-4] if field.endswith("_str") else field
    return name.replace("_", " ").strip() or field
