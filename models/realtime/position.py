"""Map position -> latent code, smooth everywhere: what a scrubbing cursor or a controller plays.

The same inverse as an empty-space click (:func:`models.morphing.sources.position_members`): the
``k`` nearest visible points blended with :func:`models.morphing.trajectory.neighbour_weights`,
whose weights reach 0 at the ``(k+1)``-th neighbour, so the code is continuous in the position
and never jumps when one neighbour gives way to another. Here the neighbours come from a KD-tree
(scipy's ``cKDTree``: about 20 us a query at 100k points), because a cursor asks hundreds of
times a second. No Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from models.errors import ConfigError, DatasetError
from models.morphing import trajectory as tj


class PositionField:
    """One code per map point, readable at any position.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
        The map's positions.
    codes : np.ndarray [shape=(n, d)]
        One (flattened) code per point.
    visible : np.ndarray [shape=(n,), dtype=bool], optional
        Points the user sees; hidden classes take no part (all hidden: all take part, the
        nearest sounds rather than silence, as an empty-space click does).
    k : int
        Neighbours blended.
    pitches : np.ndarray [shape=(n,)], optional
        MIDI pitch of each point's clip (NaN: unknown): the reference a played note shifts from.
    levels : np.ndarray [shape=(n,)], optional
        A side value blended like the codes (the frame maximum of envelope representations).
    """

    def __init__(self, points: np.ndarray, codes: np.ndarray, *, visible: np.ndarray | None = None,
                 k: int = tj.NEIGHBOURS, pitches: np.ndarray | None = None,
                 levels: np.ndarray | None = None) -> None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        codes = np.asarray(codes, dtype=np.float64)
        codes = codes.reshape(len(codes), -1)
        if len(pts) != len(codes):
            raise ConfigError(f"a position field needs one code per point: {len(pts)} points, {len(codes)} codes")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        rows = np.arange(len(pts))
        if visible is not None:
            mask = np.asarray(visible, dtype=bool).reshape(-1)
            if len(mask) != len(pts):
                raise ConfigError(f"visible has {len(mask)} entries for {len(pts)} points")
            if mask.any():
                rows = np.flatnonzero(mask)
        rows = rows[np.isfinite(pts[rows]).all(axis=1) & np.isfinite(codes[rows]).all(axis=1)]
        if len(rows) == 0:
            raise DatasetError("no sound on the map to play")
        self.rows = rows  # the points that take part (indices into ``points``)
        self.points = pts
        self.codes = codes
        self.k = int(k)
        self.latent_dim = codes.shape[1]
        self.pitches = None if pitches is None else np.asarray(pitches, dtype=np.float64).reshape(-1)
        self.levels = None if levels is None else np.asarray(levels, dtype=np.float64).reshape(-1)
        for name, v in (("pitches", self.pitches), ("levels", self.levels)):
            if v is not None and len(v) != len(pts):
                raise ConfigError(f"{name} has {len(v)} entries for {len(pts)} points")
        self._tree = cKDTree(pts[rows])
        self._lo, self._hi = pts[rows].min(axis=0), pts[rows].max(axis=0)

    def members_at(self, xy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(point indices [shape=(m,)], weights [shape=(m,)]) blended at ``xy``; m <= k."""
        q = np.asarray(xy, dtype=np.float64).reshape(2)
        if not np.isfinite(q).all():
            raise ConfigError(f"a map position must be finite, got {tuple(q)}")
        m = min(self.k + 1, len(self.rows))
        d, j = self._tree.query(q, k=m)
        return tj.members_of_nearest(self.rows[np.atleast_1d(j)], np.atleast_1d(d), k=self.k)

    def code_at(self, xy: Sequence[float]) -> np.ndarray:
        """The blended code at ``xy`` [shape=(d,)]."""
        rows, w = self.members_at(xy)
        return w @ self.codes[rows]

    def level_at(self, xy: Sequence[float]) -> float | None:
        """The blended side value at ``xy`` (None without ``levels``)."""
        if self.levels is None:
            return None
        rows, w = self.members_at(xy)
        return float(w @ self.levels[rows])

    def pitch_at(self, xy: Sequence[float]) -> float | None:
        """The pitch label of the sounds at ``xy``: that of the heaviest labelled member.

        Blending pitches would name a pitch none of them has (a 48 and a 60 are not a 54); None
        when no member is labelled.
        """
        if self.pitches is None:
            return None
        rows, w = self.members_at(xy)
        known = np.isfinite(self.pitches[rows])
        if not known.any():
            return None
        return float(self.pitches[rows][known][np.argmax(w[known])])

    def normalised(self, u: float, v: float) -> tuple[float, float]:
        """A 0..1 controller pair (OSC, MIDI CCs) -> map coordinates over the points' bounding box."""
        uv = np.clip(np.asarray([u, v], dtype=np.float64), 0.0, 1.0)
        x, y = self._lo + uv * (self._hi - self._lo)
        return float(x), float(y)

    def unit(self, x: float, y: float) -> tuple[float, float]:
        """The inverse of :meth:`normalised` (what the app sends back to a controller), clipped to 0..1."""
        span = np.where(self._hi > self._lo, self._hi - self._lo, 1.0)
        u, v = np.clip((np.asarray([x, y], dtype=np.float64) - self._lo) / span, 0.0, 1.0)
        return float(u), float(v)


def pitch_labels(dataset: Any, clips: np.ndarray) -> np.ndarray | None:
    """Each map point's MIDI pitch label (NSynth's ``pitch``), NaN where a clip has none; None if no clip has one."""
    out = np.full(len(clips), np.nan)
    for j, c in enumerate(clips):
        v = dataset.clips[int(c)].labels.get("pitch")
        try:
            out[j] = float(v)
        except (TypeError, ValueError):
            continue
    return out if np.isfinite(out).any() else None
