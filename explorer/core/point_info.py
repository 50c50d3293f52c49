"""What each map point is: its codes, clip, frame, class and tooltip, computed once per layout. No Qt.

The map asks these questions on every hover move, every click and every frame of a t-SNE
animation (several times a frame: colours, visibility, class centres, label counts). Rebuilding
a class name per point in Python each time cost milliseconds at 10,000 points and tens of
milliseconds at 100,000, all on the GUI thread. Here the answers are computed once per
(dataset, encoding, point mode, colour field, cluster labels) and kept as numpy arrays: a class
is an integer per point into a short list of names, visibility is an ``isin`` over those integers,
and the code matrix is handed out as the encoding's own array wherever no row is left out.

The cache checks what it was computed from on every question (a few ``is`` tests: the dataset,
the encoding and each of its arrays, the point mode, the colour field, the cluster labels, the
hidden classes and the filter), so every change the controller announces (a new dataset, encoding,
point mode, colour field or clusters) is seen by the next question, whichever slot asks first;
:meth:`PointInfo.invalidate` drops everything (the controller calls it when a dataset is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KMEANS", "PENDING", "MapPoints", "PointClasses", "PointInfo", "class_centres", "class_sort_key",
           "describe_point"]

#: the colour field that means "k-means clusters of the codes" rather than a dataset label
KMEANS = "k-means clusters"
#: the class of every point while k-means clusters are still being computed
PENDING = "…"


def class_sort_key(name: str) -> tuple:
    """Classes in a stable order: numbers numerically (``cluster 10`` after ``cluster 9``), names alphabetically."""
    try:
        return (0, float(name.replace("cluster ", "")), name)
    except ValueError:
        return (1, 0.0, name)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: a cached array handed out must not be changed by one caller under the others."""
    v = a.view()
    v.setflags(write=False)
    return v


@dataclass(frozen=True)
class MapPoints:
    """Where each map point comes from.

    codes : np.ndarray [shape=(n, d)]
        The encoding's own array when every clip has a code (no copy), else its rows of the clips that have one.
    clips : np.ndarray [shape=(n,), dtype=int]
        The clip of each point.
    frames : np.ndarray [shape=(n,), dtype=int]
        The frame of each point in its clip, -1 in clip mode.
    """

    codes: np.ndarray
    clips: np.ndarray
    frames: np.ndarray


@dataclass(frozen=True)
class PointClasses:
    """The class of every map point, as integers into ``names``.

    names : tuple of str
        The classes in their stable order (:func:`class_sort_key`).
    index : np.ndarray [shape=(n,), dtype=intp]
        ``names[index[i]]`` is point ``i``'s class.
    text : np.ndarray [shape=(n,), dtype=object]
        The same as text (what ``Controller.point_labels`` returned); built once, read-only.
    counts : np.ndarray [shape=(len(names),), dtype=int]
        How many points each class has.
    """

    names: tuple[str, ...]
    index: np.ndarray
    text: np.ndarray
    counts: np.ndarray

    def mask_of(self, classes: set[str] | frozenset[str]) -> np.ndarray:
        """Points whose class is one of ``classes`` [shape=(n,), dtype=bool]."""
        ks = [k for k, n in enumerate(self.names) if n in classes]
        return np.isin(self.index, ks) if ks else np.zeros(len(self.index), bool)


def _classes_of(candidates: list[str], which: np.ndarray) -> PointClasses:
    """Classes from ``candidates`` (one text per distinct value) and each point's index into them.

    Only the classes some point has are kept (a failed clip's label is no class of the map); the
    Python work is per distinct value, never per point.
    """
    which = np.asarray(which, dtype=np.intp).reshape(-1)
    present = np.flatnonzero(np.bincount(which, minlength=len(candidates))) if len(which) else np.zeros(0, np.intp)
    names = sorted({candidates[k] for k in present}, key=class_sort_key)
    rank = {n: r for r, n in enumerate(names)}
    remap = np.full(len(candidates), -1, dtype=np.intp)
    for k in present:  # equal texts of different values (1 and "1") fall into one class, as before
        remap[k] = rank[candidates[k]]
    index = remap[which] if len(which) else np.zeros(0, np.intp)
    text = np.array(names, dtype=object)[index] if len(index) else np.zeros(0, dtype=object)
    counts = np.bincount(index, minlength=len(names))
    return PointClasses(tuple(names), _read_only(index), _read_only(text), _read_only(counts))


class PointInfo:
    """The controller's cache of per-point facts (see the module docstring).

    Each method takes what its answer depends on and returns the cached answer while those are
    the same objects (and the same colour field, hidden classes, filter); ``computed`` counts the
    recomputations, so a test can see that hovering reuses them.
    """

    def __init__(self) -> None:
        self.computed = {"points": 0, "classes": 0, "visible": 0}
        self.invalidate()

    def invalidate(self, *_: object) -> None:
        """Forget everything (takes and ignores a signal's payload, so it can be connected to one)."""
        self._points_key: tuple = ()
        self._points: MapPoints | None = None
        self._classes_key: tuple = ()
        self._classes: PointClasses | None = None
        self._visible_key: tuple = ()
        self._visible: np.ndarray | None = None

    @staticmethod
    def _same(key: tuple, new: tuple) -> bool:
        # arrays and datasets by identity (comparing them would cost what the cache saves), text and sets by value
        return len(key) == len(new) and all(a is b or (type(a) is type(b) and isinstance(a, (str, frozenset)) and a == b)
                                            for a, b in zip(key, new))

    # --- where points come from ------------------------------------------------------------------
    def points(self, enc: Any, point_mode: str) -> MapPoints:
        """The map's points of encoding ``enc`` in ``point_mode`` ("clip" or "frame")."""
        if enc is None:
            return MapPoints(np.zeros((0, 1)), np.zeros(0, int), np.zeros(0, int))
        key = (enc, enc.clip_codes, enc.frame_codes, enc.frame_clip, enc.frame_index,
               "frame" if point_mode == "frame" and enc.has_time else "clip")
        if self._points is None or not self._same(self._points_key, key):
            self.computed["points"] += 1
            if key[-1] == "frame":
                mp = MapPoints(enc.frame_codes, enc.frame_clip, enc.frame_index)
            else:
                ok = enc.ok
                codes = enc.clip_codes if ok.all() else enc.clip_codes[ok]  # a view when nothing is left out
                mp = MapPoints(codes, _read_only(np.flatnonzero(ok)), _read_only(np.full(int(ok.sum()), -1)))
            self._points, self._points_key = mp, key
            self._classes = self._visible = None
        return self._points

    # --- classes ------------------------------------------------------------------------------------
    def classes(self, dataset: Any, clips: np.ndarray, colour_field: str | None,
                cluster_labels: np.ndarray | None) -> PointClasses:
        """Every point's class by ``colour_field`` (k-means ``cluster_labels`` for :data:`KMEANS`)."""
        key = (dataset, clips, colour_field, cluster_labels)
        if self._classes is None or not self._same(self._classes_key, key):
            self.computed["classes"] += 1
            n = len(clips)
            if colour_field == KMEANS:
                if cluster_labels is None or len(cluster_labels) != n:
                    pc = _classes_of([PENDING], np.zeros(n, np.intp))
                else:
                    ks, which = np.unique(np.asarray(cluster_labels), return_inverse=True)
                    pc = _classes_of([f"cluster {k + 1}" for k in ks], which)
            else:
                per_clip = [str(v) for v in dataset.labels(colour_field)]  # one str per clip, not per point
                pc = _classes_of(per_clip, np.asarray(clips, dtype=np.intp))
            self._classes, self._classes_key = pc, key
            self._visible = None
        return self._classes

    def visible(self, classes: PointClasses, hidden: set[str], map_filter: Any, dataset: Any,
                clips: np.ndarray) -> np.ndarray:
        """Points of shown classes that pass ``map_filter`` [shape=(n,), dtype=bool], read-only."""
        key = (classes, frozenset(hidden), map_filter.field, frozenset(map_filter.values), dataset, clips)
        if self._visible is None or not self._same(self._visible_key, key):
            self.computed["visible"] += 1
            shown = map_filter.mask(dataset, clips)
            if hidden:
                shown = shown & ~classes.mask_of(hidden)
            self._visible, self._visible_key = _read_only(shown), key
        return self._visible


def class_centres(points: np.ndarray, classes: PointClasses, shown: np.ndarray) -> dict[str, np.ndarray]:
    """The median position [shape=(2,)] of each class's shown points, by class name (classes with none left out).

    One boolean pass per class over integer labels: a t-SNE frame asks this every time.
    """
    out = {}
    for k, name in enumerate(classes.names):
        rows = shown & (classes.index == k)
        if rows.any():
            out[name] = np.median(points[rows], axis=0)
    return out


def describe_point(i: int, *, dataset: Any, points: MapPoints, colour_field: str | None,
                   classes: PointClasses | None, decoded: Any) -> str:
    """The tooltip of map point ``i``: the clip's name, its first labels, cluster, frame and the last sound's scores.

    One point's facts only: no per-point work over the map.
    """
    clip = int(points.clips[i])
    c = dataset.clips[clip]
    lines = [c.name]
    lines += [f"{k}: {v}" for k, v in list(c.labels.items())[:4]]
    if colour_field == KMEANS and classes is not None:
        lines.append(classes.names[int(classes.index[i])])
    if points.frames[i] >= 0:
        lines.append(f"frame {int(points.frames[i])}")
    if decoded and decoded.decoded.clip_index == clip and decoded.metrics:
        lines += [f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in decoded.metrics.items()]
    return "\n".join(lines)
