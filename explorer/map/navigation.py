"""Moving around the map with the keyboard, and finding sounds by name (no Qt here).

Arrow keys step from the selected sound to the nearest one *in that direction on the screen*,
as a file browser's icon view does: candidates lie in a cone of +-63 degrees around the
direction, and the cost ``along + 2 * across`` prefers the one straight ahead over a nearer one
off to the side. Distances are measured in screen pixels (``pixel_size``), so a map stretched
by the window's aspect ratio steps the way it looks.

Search matches a query against every sound's name and label values (case-insensitive
substrings; several words must all match, in any field), as a map tool's search box does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: screen directions of the arrow keys, y up (the map's data y grows upwards)
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, 1.0), "down": (0.0, -1.0)}


def step_towards(points: np.ndarray, start: int | None, direction: str, *, pixel_size: tuple[float, float],
                 visible: np.ndarray | None = None, centre: tuple[float, float] | None = None) -> int | None:
    """The point to go to from ``start`` in ``direction`` (``"left"``, ``"right"``, ``"up"``, ``"down"``).

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
        Map positions in data units.
    start : index of the selected point, or None: then the visible point nearest ``centre``
        (the middle of the view) is where the walk begins.
    pixel_size : data size of one screen pixel along x and y.
    visible : mask of the points that may be stepped to [shape=(n,), dtype=bool].

    Returns
    -------
    int or None
        None when no visible point lies that way.
    """
    pts = np.asarray(points, dtype=float)
    n = len(pts)
    if n == 0:
        return None
    ok = np.ones(n, bool) if visible is None else np.asarray(visible, bool).copy()
    sx, sy = (max(abs(float(s)), 1e-300) for s in pixel_size)
    px = np.c_[pts[:, 0] / sx, pts[:, 1] / sy]
    if start is None:
        c = np.array(centre if centre is not None else pts.mean(0), dtype=float)
        d = np.hypot(px[:, 0] - c[0] / sx, px[:, 1] - c[1] / sy)
        d[~ok] = np.inf
        return int(np.argmin(d)) if np.isfinite(d).any() else None
    dx, dy = DIRECTIONS[direction]
    v = px - px[start]
    along = v[:, 0] * dx + v[:, 1] * dy
    across = np.abs(v[:, 0] * dy - v[:, 1] * dx)
    ok &= (along > 0.5) & (across <= along)
    ok[start] = False
    if not ok.any():
        return None
    cost = np.where(ok, along + 3.0 * across, np.inf)
    return int(np.argmin(cost))


def search_mask(dataset: Any, clips: np.ndarray, query: str) -> np.ndarray:
    """Which map points (clip indices ``clips``) match ``query`` [shape=(len(clips),), dtype=bool].

    Every word of the query must appear in the clip's name or in one of its label values.
    An empty query matches nothing (nothing lights up).
    """
    clips = np.asarray(clips, dtype=int)
    words = [w for w in query.lower().split() if w]
    if not words or dataset is None:
        return np.zeros(len(clips), bool)
    texts = [" ".join([c.name, *(str(v) for v in c.labels.values())]).lower() for c in dataset.clips]
    hit = np.array([all(w in t for w in words) for t in texts], dtype=bool)
    return hit[clips] if len(clips) else np.zeros(0, bool)
