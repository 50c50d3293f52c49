"""Sessions: what the user was looking at, as a versioned JSON file (no Qt).

A session names the dataset and model files (not their content), the projection, colours,
hidden classes, selection, gains, and the 2-D layout so that a t-SNE map reopens exactly as it
was without being recomputed. Files are written atomically; older schema versions are migrated
by the functions in ``MIGRATIONS``; newer ones are refused with a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models import __version__
from models.atomic import atomic_write_json
from models.errors import ConfigError

SCHEMA_VERSION = 2
#: ``MIGRATIONS[v]`` turns a version-``v`` session into version ``v + 1``
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # 2 (issue 7): morph paths, each ``models.morphing.morph.MorphPath.to_dict()``
    1: lambda s: {**s, "schema_version": 2, "paths": []},
}


def session_from_controller(c: Any) -> dict[str, Any]:
    """The controller's state as a JSON-able dict (see the module docstring)."""
    sel = None
    if c.selection is not None and c.selection.kind == "point" and c.selection.index is not None:
        _, clips, frames = c.map_codes()
        if c.selection.index < len(clips):
            sel = {"kind": "point", "clip": int(clips[c.selection.index]), "frame": int(frames[c.selection.index])}
    elif c.selection is not None and c.selection.xy is not None:
        sel = {"kind": "position", "xy": [float(v) for v in c.selection.xy]}
    layout = None
    if c.embedding is not None and len(c.embedding.points) == len(c.points):
        layout = np.round(c.points, 6).tolist()
    return {
        "schema_version": SCHEMA_VERSION,
        "app_version": __version__,
        "dataset": c.dataset_path,
        "models": list(c.models),
        "current_model": c.current_key,
        "projection": c.method,
        "point_mode": c.point_mode,
        "colour_field": c.colour_field,
        "hidden_classes": sorted(c.hidden),
        "selection": sel,
        "gains": {"values": list(c.gain_values), "edges": list(c.gain_edges)},
        "layout": layout,
        "paths": [p.to_dict() for p in getattr(c, "paths", [])],
    }


def save_session(path: str | Path, session: dict[str, Any]) -> None:
    atomic_write_json(path, session)


def migrate(session: dict[str, Any]) -> dict[str, Any]:
    v = session.get("schema_version")
    if not isinstance(v, int):
        raise ConfigError("not a latent-explorer session (no integer schema_version)")
    if v > SCHEMA_VERSION:
        raise ConfigError(
            f"this session was written by a newer latent-explorer (schema {v}, this one reads up to "
            f"{SCHEMA_VERSION}); update the app to open it"
        )
    while v < SCHEMA_VERSION:
        if v not in MIGRATIONS:
            raise ConfigError(f"cannot read session schema {v}")
        session = MIGRATIONS[v](session)
        v = session["schema_version"]
    return session


def load_session(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read session {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a session file")
    return migrate(data)
