"""Where a waypoint's trajectory comes from: a clip, a class, a spot of the map (no Qt).

A waypoint records *which* sounds it stands for (``members``: ``(clip, frame)`` pairs, with
``weights`` for a position) rather than their codes over time, so a session stays small and a
waypoint means the same sounds on any later map; the trajectories are built from the
encoding (the frame codes) and the dataset (each clip's side information: its envelope, its
level) when a path is rendered or a spot is clicked. A render spec stores the built
trajectories, so it renders again from the checkpoint alone.

* a point (``frame = -1``): the clip's own frame codes, envelope and length;
* a point in frame mode (``frame >= 0``): that frame's code held over its clip, under the
  clip's envelope (Colonel's synthesiser);
* a class centre: the barycentre of the visible members' trajectories, or their medoid;
* an empty-space position: a blend of the nearest visible clips' trajectories, weighted by
  :func:`models.morphing.trajectory.neighbour_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.errors import ConfigError, DatasetError
from models.inference import layout as item_layout
from models.inference.encode import analyse_clip
from models.morphing import trajectory as tj
from models.morphing.trajectory import Counts, Trajectory

STATISTICS = ("barycentre", "medoid")


def grid(representation: Any, layout: str, input_shape: Sequence[int]) -> Counts:
    """``n_samples -> (n_items, n_frames)`` of a model on a representation.

    ``"frames"``: one item per feature frame, each with its frame maximum; ``"windows"``: runs
    of ``input_shape[0]`` frames tile the clip, the envelope stays per frame; ``"clips"``: one
    item, no envelope (see :mod:`models.inference.layout`).
    """
    input_shape = tuple(int(v) for v in input_shape)
    layout = item_layout.parse_layout(layout)

    def counts(n_samples: int) -> tuple[int, int | None]:
        if layout == item_layout.CLIPS:
            return 1, None
        n_frames = int(representation.feature_shape(int(n_samples))[0])
        if layout == item_layout.WINDOWS:
            return len(item_layout.window_starts(n_frames, input_shape[0], input_shape[0])), n_frames
        return n_frames, n_frames

    return counts


class TrajectoryBook:
    """Builds and caches the trajectories of one encoding's clips.

    Parameters
    ----------
    encoding : models.inference.engine.Encoding
    representation, dataset : what the clips are read with (their side information).
    input_shape : the model's item shape (for the chunk layout's item count).
    """

    def __init__(self, encoding: Any, representation: Any, dataset: Any, *, input_shape: Sequence[int]) -> None:
        self.enc, self.rep, self.ds = encoding, representation, dataset
        self.counts = grid(representation, encoding.layout, input_shape)
        self._side: dict[int, tuple[dict[str, np.ndarray], int]] = {}

    def _clip_side(self, clip: int) -> tuple[dict[str, np.ndarray], int]:
        """(side information without the phase, n_samples) of a clip: one load and analysis, kept."""
        if clip not in self._side:
            _, analysis = analyse_clip(self.ds, int(clip), self.rep)
            side = {k: np.asarray(v) for k, v in (analysis.side or {}).items() if k != "phase"}
            if not item_layout.has_time(self.enc.layout):
                side.pop(tj.FRAME_KEY, None)
            self._side[clip] = (side, int(analysis.n_samples))
        return self._side[clip]

    def frame_codes(self, clip: int) -> np.ndarray:
        """The clip's item codes in time order [shape=(n_items, d)]."""
        codes = self.enc.trajectory(int(clip))
        if len(codes) == 0:
            raise DatasetError(f"clip {clip} has no code (it could not be read)")
        return codes

    def point(self, clip: int, frame: int = -1) -> Trajectory:
        """A map point's trajectory: the clip's codes over time, or one of its frames held."""
        codes = self.frame_codes(clip)
        side, n = self._clip_side(clip)
        if frame >= 0:
            if frame >= len(codes):
                raise DatasetError(f"clip {clip} has no frame {frame}")
            codes = np.repeat(codes[int(frame)][None], len(codes), axis=0)
        return Trajectory(codes, n, side)

    def members(self, members: Sequence[Sequence[int]]) -> list[Trajectory]:
        return [self.point(int(c), int(f)) for c, f in members]

    def centre(self, members: Sequence[Sequence[int]], *, statistic: str = "barycentre") -> Trajectory:
        """A class centre over ``members`` (the class's visible points)."""
        if statistic not in STATISTICS:
            raise ConfigError(f"a class centre is one of {STATISTICS}, got {statistic!r}")
        if not members:
            raise DatasetError("this class has no visible sound to take a centre of")
        ts = self.members(members)
        if statistic == "medoid":
            return ts[tj.medoid(ts, self.counts)]
        return tj.barycentre(ts, self.counts)

    def blend(self, members: Sequence[Sequence[int]], weights: Sequence[float]) -> Trajectory:
        """An empty-space position: the members' trajectories mixed with ``weights``."""
        if not members:
            raise DatasetError("no sound near this position")
        return tj.mix(self.members(members), weights, self.counts)


def position_members(points: np.ndarray, xy: Sequence[float], *, visible: np.ndarray | None = None,
                     k: int = tj.NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """The map points an empty-space position blends and their weights.

    points : [shape=(n, 2)] the map; visible : mask of the points the user sees (hidden classes
    take no part). Returns (point indices [shape=(m,)], weights [shape=(m,)]), m <= k, zero
    weights dropped.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    idx = np.arange(len(pts)) if visible is None else np.flatnonzero(np.asarray(visible, bool))
    if len(idx) == 0:
        raise DatasetError("no visible sound on the map")
    d = np.linalg.norm(pts[idx] - np.asarray(xy, dtype=np.float64).reshape(1, 2), axis=1)
    order = np.argsort(d, kind="stable")[: int(k) + 1]
    # one click needs no tree (a linear scan is cheaper than building one); the blend itself is
    # the real-time cursor's, so a click and a scrub at one position sound the same
    return tj.members_of_nearest(idx[order], d[order], k=int(k))


def medoid_of_codes(trajectories: Sequence[np.ndarray]) -> int:
    """Index of the medoid of code trajectories [each shape=(n_items, d)], without reading audio.

    Each is resampled (time-normalised) to the median item count; the distance is the RMS over
    items of the code difference, as :func:`models.morphing.trajectory.distances`.
    """
    if not trajectories:
        raise DatasetError("no sound to take a medoid of")
    n = int(np.median([len(t) for t in trajectories]))
    X = np.stack([tj.resample(np.asarray(t, dtype=np.float64), n).reshape(-1) for t in trajectories])
    sq = (X**2).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0) / n)
    return int(np.argmin(d.sum(axis=1)))


def waypoint_trajectory(book: TrajectoryBook, w: Any) -> Trajectory:
    """The trajectory a waypoint (:class:`models.morphing.morph.Waypoint`) stands for.

    A point and a medoid centre are their clip's (or held frame's) trajectory; a barycentre is
    taken over the centre's members; a position blends its members with their weights.
    """
    if w.kind == "point" or (w.kind == "centre" and w.statistic == "medoid"):
        if w.clip is None:
            raise DatasetError(f"the waypoint {w.label!r} names no clip")
        return book.point(int(w.clip), int(w.frame))
    if not w.members:
        raise DatasetError(f"the waypoint {w.label!r} names no sounds to take a {w.kind} of")
    if w.kind == "centre":
        return book.centre(w.members)
    return book.blend(w.members, w.weights or np.ones(len(w.members)))
