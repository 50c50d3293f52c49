"""Sessions: what the user was looking at, as a versioned JSON file (no Qt).

A session names the dataset and model files (not their content), the projection, colours,
hidden classes, selection, gains, and the 2-D layout so that a t-SNE map reopens exactly as it
was without being recomputed. Files are written atomically; older schema versions are migrated
by the functions in ``MIGRATIONS``; newer ones are refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models import __version__
from models.atomic import atomic_write_json
from models.errors import ConfigError
from models.safe_json import load_json_file
from models.safe_paths import display_name

SCHEMA_VERSION = 3
#: ``MIGRATIONS[v]`` turns a version-``v`` session into version ``v + 1``
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # 2: morph paths, each ``models.morphing.morph.MorphPath.to_dict()``
    1: lambda s: {**s, "schema_version": 2, "paths": []},
    # 3: waypoints name the sounds they stand for (members, weights, a centre's statistic) and paths
    # have a mode; a version-2 waypoint names none and is resolved on the map it is rendered on
    2: lambda s: {**s, "schema_version": 3},
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
    """Read, migrate and check a session file.

    Raises
    ------
    ConfigError
        The file cannot be read, is not (depth-limited) UTF-8 JSON, or a field has the wrong
        type or an absurd size; the message names the field.
    """
    where = f"session {display_name(path)}"
    data = load_json_file(path, what="session", error=ConfigError, max_bytes=MAX_SESSION_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f"{display_name(path)} is not a session file")
    return check_session(migrate(data), where=where)


#: a session holds a layout (two numbers per point) and paths; 256 MB is far above any real one
MAX_SESSION_BYTES = 256 * 1024 * 1024
_OPTIONAL_STR = ("dataset", "current_model", "projection", "point_mode", "colour_field")


def check_session(s: dict[str, Any], *, where: str = "session") -> dict[str, Any]:
    """Type-check every field the app reads from a (migrated) session; returns ``s``.

    Morph paths are parsed here too (their step counts and durations checked), so a path the
    app could not render is refused when the session opens, not met later as an exception.
    """
    from models.morphing.morph import MorphPath

    def fail(field: str, text: str) -> ConfigError:
        return ConfigError(f"{where}: {field} {text}")

    for key in _OPTIONAL_STR:
        if s.get(key) is not None and not isinstance(s[key], str):
            raise fail(key, f"must be a string, got {type(s[key]).__name__}")
    for key in ("models", "hidden_classes"):
        value = s.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise fail(key, "must be a list of strings")
    sel = s.get("selection")
    if sel is not None:
        if not isinstance(sel, dict) or sel.get("kind") not in ("point", "position"):
            raise fail("selection", "must be a point or a position")
        if sel["kind"] == "point" and not all(_is_index(sel.get(k)) for k in ("clip", "frame")):
            raise fail("selection", "must name a clip and a frame by their indices")
        if sel["kind"] == "position" and not _numbers(sel.get("xy"), 2):
            raise fail("selection", "must hold an xy position of two numbers")
    gains = s.get("gains")
    if gains is not None:
        if not isinstance(gains, dict) or not all(
                gains.get(k) is None or _numbers(gains[k]) for k in ("values", "edges")):
            raise fail("gains", "must hold lists of numbers 'values' and 'edges'")
    layout = s.get("layout")
    # a layout may hold NaN for a clip that failed to encode (json writes it as NaN)
    if layout is not None and not (isinstance(layout, list) and all(_numbers(p, 2, finite=False) for p in layout)):
        raise fail("layout", "must be a list of [x, y] positions")
    paths = s.get("paths")
    if paths is not None:
        if not isinstance(paths, list):
            raise fail("paths", "must be a list of paths")
        for i, d in enumerate(paths):
            if not isinstance(d, dict):
                raise fail(f"paths[{i}]", "must be a JSON object")
            try:
                MorphPath.from_dict(d)
            except ConfigError as exc:
                raise fail(f"paths[{i}]", f"is not a path this version can use: {exc}") from None
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                raise fail(f"paths[{i}]", f"is malformed ({type(exc).__name__}: {exc})") from None
    return s


def _is_index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -1 <= v < 1 << 40


def _numbers(v: Any, n: int | None = None, *, finite: bool = True) -> bool:
    """A list of numbers (finite ones unless ``finite`` is false; of length ``n`` when given)."""
    if not isinstance(v, list) or (n is not None and len(v) != n):
        return False
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and (not finite or np.isfinite(x))
               for x in v)
