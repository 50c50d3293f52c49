"""Which map point is under the mouse: a KD-tree over the layout, visibility as a boolean array.

The map asks on every hover move and click, with up to 100,000 points. Measuring every point's
distance costs a millisecond or two at that size (and the old path also rebuilt every point's
class name to find the hidden ones); a ``scipy.spatial.cKDTree`` answers in microseconds, but
building it costs some 30-60 ms, too much to redo for each frame of a t-SNE animation. So the
tree is built lazily, on the second query against the same layout: a layout that is queried
once and then replaced (a moving t-SNE) is searched directly, a layout that stays is indexed.
Both searches give the same answer: the nearest visible point in *screen* distance (the view's
x and y scales may differ), ties to the lowest index.

Qt-free: positions and scales come in as numbers, so the logic is tested without a view.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["HitIndex"]


class HitIndex:
    """Nearest visible point to a position within a radius in screen pixels.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
        Map positions in data units; a copy is kept (replace it with :meth:`set_points`).
    """

    def __init__(self, points: np.ndarray | None = None) -> None:
        self._points = np.zeros((0, 2))
        self._tree: cKDTree | None = None
        self._queries = 0
        self.set_points(np.zeros((0, 2)) if points is None else points)

    @property
    def points(self) -> np.ndarray:
        """The indexed positions [shape=(n, 2)], float64 (read-only)."""
        return self._points

    @property
    def indexed(self) -> bool:
        """Whether the KD-tree of the current layout exists (it is built on its second query)."""
        return self._tree is not None

    def __len__(self) -> int:
        return len(self._points)

    def set_points(self, points: np.ndarray) -> None:
        """A new layout (a partial t-SNE frame, another projection); the tree is dropped."""
        pts = np.array(points, dtype=np.float64).reshape(-1, 2)
        pts.setflags(write=False)
        self._points = pts
        self._tree = None
        self._queries = 0

    def nearest(
        self,
        x: float,
        y: float,
        *,
        pixel_size: tuple[float, float],
        radius_px: float,
        visible: np.ndarray | None = None,
    ) -> int | None:
        """Index of the visible point nearest to ``(x, y)`` within ``radius_px`` pixels, or None.

        Parameters
        ----------
        x, y : float
            The position, in data units.
        pixel_size : tuple of float
            Data size of one screen pixel along x and along y (``ViewBox.viewPixelSize()``), so
            the radius means the same on the screen at any zoom and aspect ratio.
        radius_px : float
        visible : np.ndarray or None [shape=(n,), dtype=bool]
            Points that may be hit (shown classes, the map filter); all when None.
        """
        n = len(self._points)
        if n == 0 or radius_px < 0:
            return None
        if visible is not None:
            visible = np.asarray(visible, dtype=bool)
            if visible.shape != (n,):
                raise ValueError(f"visible has shape {visible.shape}, expected ({n},)")
        sx, sy = (max(abs(float(s)), 1e-300) for s in pixel_size)
        self._queries += 1
        if self._tree is None and self._queries >= 2:
            self._tree = cKDTree(self._points)
        if self._tree is None:
            candidates = None  # every point
            pts = self._points
        else:
            # Within radius_px pixels means |dx| <= r sx and |dy| <= r sy, so within r max(sx, sy)
            # data units: a ball that holds the screen ellipse; the exact test follows.
            found = self._tree.query_ball_point((float(x), float(y)), radius_px * max(sx, sy))
            if not found:
                return None
            candidates = np.sort(np.asarray(found, dtype=np.intp))
            pts = self._points[candidates]
        with np.errstate(over="ignore"):  # zoomed in far, a far point is inf pixels away: no hit, as it should be
            d2 = ((pts[:, 0] - x) / sx) ** 2 + ((pts[:, 1] - y) / sy) ** 2
        if visible is not None:
            d2 = np.where(visible if candidates is None else visible[candidates], d2, np.inf)
        j = int(np.argmin(d2))  # first of equal distances: the lowest index
        if not d2[j] <= radius_px**2:
            return None
        return j if candidates is None else int(candidates[j])
