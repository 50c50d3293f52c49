"""The map's far-zoom layer: every shown sound binned into an image, coloured by its class.

pyqtgraph's scatter draws each spot as a pixmap fragment on every frame: some 100-175 ms a frame
for 100,000 spots on these machines (6-10 fps), under 30 ms for 10,000 (bench/bench_map_fps.py).
When more spots are in the view than the scatter draws inside a frame, the map shows this image
instead (explorer.map.map_view decides): the shown sounds counted into bins of ``BIN_PX`` screen
pixels, each count spread over a spot's size (a ``DOT_BINS`` box, so a lone sound is still a dot),
a bin's colour the mean of its sounds' class colours weighted by count (datashader's categorical
shading), its opacity rising with the count on a fixed log scale, so dense regions read as dense
and nothing flickers as the view pans. Hidden classes and filtered sounds are not counted.

:func:`density_rgba` is plain arrays in, an image out (no Qt), its two loops compiled with numba;
:class:`DensityItem` is the pyqtgraph item that makes and draws it as the view moves.
"""

from __future__ import annotations

import math
import sys
import threading

import numba
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtGui import QImage

__all__ = ["BIN_PX", "DensityItem", "density_rgba", "warm_up"]

#: screen pixels per bin side: half the work of full resolution, still finer than a spot
BIN_PX = 2
#: a spot's width in bins (the map's spots are 7 px)
DOT_BINS = 3
#: a bin with a lone sound is this opaque; more sounds, more opaque, up to SATURATION sounds
MIN_ALPHA = 0.7
SATURATION = 30.0
#: while the view moves, one image serves: it covers the view and MARGIN of its size on each side
#: (a pan draws it shifted), and zooms up to ZOOM_SLACK times before it is remade; REFINE_MS after
#: the view stops, it is remade at the exact scale
MARGIN = 0.25
ZOOM_SLACK = 1.25
REFINE_MS = 120
#: the image format the raster painter draws without converting (ARGB32_Premultiplied: bytes
#: B, G, R, A on little-endian machines) and where it keeps red, green, blue
_LITTLE = sys.byteorder == "little"
_QIMAGE_FORMAT = QImage.Format.Format_ARGB32_Premultiplied if _LITTLE else QImage.Format.Format_RGBA8888_Premultiplied
_QIMAGE_ORDER = np.array([2, 1, 0] if _LITTLE else [0, 1, 2], dtype=np.intp)


def density_rgba(
    points: np.ndarray,
    classes: np.ndarray,
    colours: np.ndarray,
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    shape: tuple[int, int],
    visible: np.ndarray | None = None,
    dot: int = DOT_BINS,
    for_qimage: bool = False,
) -> np.ndarray:
    """Bin the visible points into an RGBA image of ``shape`` bins over the given data ranges.

    Parameters
    ----------
    points : np.ndarray [shape=(n, 2)]
        Map positions, in data units.
    classes : np.ndarray [shape=(n,), dtype=int]
        Each point's class, an index into ``colours``.
    colours : np.ndarray [shape=(k, 3), dtype=uint8]
        The class palette (the legend's colours), RGB.
    x_range, y_range : tuple of float
        Data extent of the image: row 0 is ``y_range[0]`` (the bottom of the map, as a
        ``QPainter`` in the view's data coordinates draws it), column 0 is ``x_range[0]``.
    shape : tuple of int
        ``(height, width)`` in bins.
    visible : np.ndarray or None [shape=(n,), dtype=bool]
        Points to draw (shown classes, the map filter); all when None. Hidden ones add nothing.
    dot : int
        A spot's width in bins: each count is spread over a ``dot x dot`` box.
    for_qimage : bool
        Premultiplied, in the byte order of the QImage format :class:`DensityItem` draws
        (``ARGB32_Premultiplied``, which the raster painter draws without converting), not plain RGBA.

    Returns
    -------
    np.ndarray [shape=(height, width, 4), dtype=uint8]
        RGBA, not premultiplied (unless ``for_qimage``); alpha 0 where no spot reaches.
    """
    h, w = (int(v) for v in shape)
    if h <= 0 or w <= 0:
        return np.zeros((max(h, 0), max(w, 0), 4), np.uint8)
    (x0, x1), (y0, y1) = x_range, y_range
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    vis = np.ones(len(pts), np.bool_) if visible is None else np.ascontiguousarray(visible, dtype=np.bool_)
    acc = np.zeros((4, h, w), np.float32)
    _splat(pts, np.ascontiguousarray(classes, dtype=np.intp), np.ascontiguousarray(colours, dtype=np.float32),
           vis, float(x0), float(y0), w / max(x1 - x0, 1e-300), h / max(y1 - y0, 1e-300), int(dot), acc)
    out = np.empty((h, w, 4), np.uint8)
    order = _QIMAGE_ORDER if for_qimage else np.arange(3)
    _compose(acc, MIN_ALPHA, 1.0 / math.log1p(SATURATION), order, for_qimage, out)
    return out


_warm = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Compile (or load from numba's cache) the image's loops on a background thread, once.

    The first image would otherwise stall the GUI thread: about 2 s to load the cached loops into
    a fresh process, several more to compile them after an install. Both array kinds the map
    passes are warmed (the controller's visibility masks are read-only).
    """
    global _warmed
    with _warm:
        if _warmed:
            return
        _warmed = True

    def run() -> None:
        read_only = np.ones(1, np.bool_)
        read_only.setflags(write=False)
        for v in (read_only, np.ones(1, np.bool_)):
            density_rgba(np.zeros((1, 2)), np.zeros(1, np.intp), np.zeros((1, 3), np.uint8),
                         x_range=(0.0, 1.0), y_range=(0.0, 1.0), shape=(2, 2), visible=v, for_qimage=True)

    threading.Thread(target=run, name="density-warm-up", daemon=True).start()


# Compiled loops (numba, as models/representations/pghi.py): numpy's bincounts, a box sum of
# shifted slices and the per-bin arithmetic took some 12 ms for 100,000 points into 240,000 bins
# (30 ms with the machine loaded), most of a 30 fps frame; these two passes take about a tenth.
@numba.njit(cache=True, nogil=True)
def _splat(pts, classes, colours, visible, x0, y0, sx, sy, dot, acc):  # noqa: ANN001, ANN202
    """Add each visible point's count and colour to the ``dot x dot`` bins around its bin."""
    h, w = acc.shape[1], acc.shape[2]
    lo = dot // 2
    for i in range(pts.shape[0]):
        if not visible[i]:
            continue
        fx = (pts[i, 0] - x0) * sx
        fy = (pts[i, 1] - y0) * sy
        # compared as floats before the cast: far outside the view a position overflows an int
        if fx < -dot or fy < -dot or fx >= w + dot or fy >= h + dot:
            continue
        bx = int(math.floor(fx)) - lo
        by = int(math.floor(fy)) - lo
        k = classes[i]
        r, g, b = colours[k, 0], colours[k, 1], colours[k, 2]
        for y in range(max(by, 0), min(by + dot, h)):
            for x in range(max(bx, 0), min(bx + dot, w)):
                acc[0, y, x] += 1.0
                acc[1, y, x] += r
                acc[2, y, x] += g
                acc[3, y, x] += b


@numba.njit(cache=True, nogil=True)
def _compose(acc, min_alpha, inv_log_sat, order, premultiply, out):  # noqa: ANN001, ANN202
    """RGBA per bin: the count-weighted mean colour; opacity up with the count's log, 0 where none.

    ``order[j]`` is the byte that gets colour channel ``j`` (alpha stays last).
    """
    h, w = acc.shape[1], acc.shape[2]
    for y in range(h):
        for x in range(w):
            n = acc[0, y, x]
            if n < 0.5:
                out[y, x, 0] = 0
                out[y, x, 1] = 0
                out[y, x, 2] = 0
                out[y, x, 3] = 0
                continue
            a = min_alpha + (1.0 - min_alpha) * min(math.log1p(n) * inv_log_sat, 1.0)
            scale = a / n if premultiply else 1.0 / n
            for j in range(3):
                out[y, x, order[j]] = min(int(acc[1 + j, y, x] * scale + 0.5), 255)
            out[y, x, 3] = int(a * 255.0 + 0.5)


class DensityItem(pg.GraphicsObject):
    """Draws :func:`density_rgba` of its points under the view, at screen resolution.

    The image is made in :meth:`paint`, so range changes between two frames cost one image. It
    covers the view plus ``MARGIN`` each side: a pan draws the same image shifted until the view
    leaves it, a zoom draws it scaled until the scale is ``ZOOM_SLACK`` off; ``REFINE_MS`` after the
    view stops moving an image at the exact scale replaces a scaled one. New data (a t-SNE frame,
    a class hidden) remakes it at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._points = np.zeros((0, 2))
        self._classes = np.zeros(0, np.intp)
        self._colours = np.zeros((0, 3), np.uint8)
        self._visible: np.ndarray | None = None
        self._bgra = np.zeros((0, 0, 4), np.uint8)  # premultiplied, what the QImage reads
        self._qimage: QImage | None = None
        self._extent = QRectF()  # data rectangle the image covers
        self._bin = (0.0, 0.0)  # its bin size in data units (x, y)
        self._wanted = (0.0, 0.0)  # the bin size of the last paint's scale
        self._refine = QTimer(self)
        self._refine.setSingleShot(True)
        self._refine.setInterval(REFINE_MS)
        self._refine.timeout.connect(self._on_refine_timeout)

    def set_data(self, points: np.ndarray, classes: np.ndarray, colours: np.ndarray,
                 visible: np.ndarray | None = None) -> None:
        """New points, classes, palette or visibility (shapes as in :func:`density_rgba`)."""
        self._points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        self._classes = np.asarray(classes, dtype=np.intp)
        self._colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
        self._visible = None if visible is None else np.asarray(visible, dtype=bool)
        self._qimage = None
        self.prepareGeometryChange()
        self.update()

    @property
    def image(self) -> np.ndarray:
        """The image last drawn as plain RGBA [shape=(height, width, 4), dtype=uint8], row 0 at the bottom."""
        bgra = self._bgra.astype(np.float64)
        a = bgra[..., 3:]
        rgb = np.where(a > 0, bgra[..., _QIMAGE_ORDER] * 255.0 / np.maximum(a, 1.0), 0.0)
        return np.concatenate([np.rint(rgb), a], axis=-1).astype(np.uint8)

    @property
    def extent(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The data ranges ``((x0, x1), (y0, y1))`` the image last drawn covers."""
        e = self._extent
        return (e.left(), e.right()), (e.top(), e.bottom())

    # --- pyqtgraph / Qt ---------------------------------------------------------------------------
    def dataBounds(self, ax: int, frac: float = 1.0,  # noqa: N802 - pyqtgraph's name
                   orthoRange: tuple | None = None) -> tuple | None:  # noqa: N803
        """The points' extent, for the view's auto-range (the item itself covers the view)."""
        pts = self._points if self._visible is None else self._points[self._visible]
        if len(pts) == 0:
            return None
        return float(pts[:, ax].min()), float(pts[:, ax].max())

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        vr = self.viewRect()
        return QRectF() if vr is None else vr

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph hook: the bounding rect is the view
        self.prepareGeometryChange()
        self._refine.start()  # restarted while the view moves: fires once it has stopped

    def _scale_off(self) -> float:
        """How many times the image's bins are larger or smaller than the view's scale asks (1: exact)."""
        (bx, by), (wx, wy) = self._bin, self._wanted
        if min(bx, by, wx, wy) <= 0:
            return math.inf
        return max(wx / bx, bx / wx, wy / by, by / wy)

    def _on_refine_timeout(self) -> None:
        if self._qimage is not None and self._scale_off() > 1.0 + 1e-6:  # a pan alone needs no new image
            self._qimage = None
            self.update()

    def paint(self, p, *args) -> None:  # noqa: ANN001 - QPainter, style option, widget
        vr = self.viewRect()
        if vr is None or len(self._points) == 0 or vr.width() <= 0 or vr.height() <= 0:
            return
        dev = p.transform().mapRect(vr)  # the view in device pixels
        if dev.width() < 1 or dev.height() < 1:
            return
        want = (vr.width() / dev.width() * BIN_PX, vr.height() / dev.height() * BIN_PX)
        self._wanted = want
        if self._qimage is None or self._scale_off() > ZOOM_SLACK or not self._extent.contains(vr):
            self._remake(vr, want)
        # row 0 at rect.top(), the lowest y in data coordinates: the bottom on screen
        p.drawImage(self._extent, self._qimage)

    def _remake(self, vr: QRectF, bin_size: tuple[float, float]) -> None:
        bx, by = bin_size
        w = math.ceil(vr.width() * (1 + 2 * MARGIN) / bx)
        h = math.ceil(vr.height() * (1 + 2 * MARGIN) / by)
        x0 = vr.center().x() - w * bx / 2
        y0 = vr.center().y() - h * by / 2
        self._bgra = density_rgba(self._points, self._classes, self._colours, visible=self._visible,
                                  x_range=(x0, x0 + w * bx), y_range=(y0, y0 + h * by), shape=(h, w),
                                  for_qimage=True)
        # the QImage reads the array's memory: self._bgra keeps it alive while the image is drawn
        self._qimage = QImage(self._bgra.data, w, h, 4 * w, _QIMAGE_FORMAT)
        self._extent = QRectF(x0, y0, w * bx, h * by)
        self._bin = (bx, by)
