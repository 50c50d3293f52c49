"""The latent map: one scatter of every sound, coloured by a label, clickable everywhere.

Rendering follows pyqtgraph's fast path: one ``ScatterPlotItem`` (``pxMode=True``) filled with a
single ``setData`` and an array of reused brushes, its spots moved in place when only the layout
changes, and drawn through a device-pixmap cache, so a change of the tiny selection and hover
items over it does not redraw every spot.
With more than ``LOD_POINTS`` shown sounds in the view (far zoom on a big library) a density image
of them (:mod:`explorer.map.density`) replaces the scatter, in the same class colours, under the
same centres, marks and paths; zoomed in, the spots come back.
Hit-testing is the controller's (numpy), never ``points()``.

Navigation is every map tool's: the wheel zooms, a left drag draws a zoom box, a middle drag (or
a left drag with Space held) pans, F or Home fits the view to the shown sounds, arrow keys step
to the nearest sound in that direction (:mod:`explorer.map.navigation`). Search matches light
up in a ring of their own. Class centres are hollow rings, so the sound under one shows through.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from explorer.core.controller import Controller
from explorer.core.hit_index import HitIndex
from explorer.core.field_names import field_display_name
from explorer.map.density import DensityItem, warm_up
from explorer.map.label_layout import place_labels
from explorer.map.navigation import search_mask, step_towards
from explorer.map.palette import BACKGROUND, categorical_palette

POINT_SIZE = 7
MATCH_PX = 13  # the ring around a search match
MATCH_PEN = "#ffe14d"
HIT_RADIUS_PX = 7.0
EMPTY_HINT = "Open a dataset… (Ctrl+O), or drop a folder of sounds here"
CENTRE_PX = 14  # size of a class-centre ring: a point (7 px) shows through its hole
CENTRE_LABEL_FILL = "#1e1f22c0"  # the map's background, mostly opaque: labels read over points
#: text anchor of a centre label for each side place_labels picks (TextItem anchors, y down)
LABEL_ANCHORS = {"above": (0.5, 1.0), "below": (0.5, 0.0), "right": (0.0, 0.5), "left": (1.0, 0.5)}
LABEL_GAP_PX = 7.0
#: more shown sounds than this in the view and the map draws them as a density image
#: (explorer.map.density): the scatter draws about 10,000 spots inside a 30 fps frame here,
#: 100,000 at 5-10 fps (bench/bench_map_fps.py); back to spots under LOD_BACK of it
LOD_POINTS = 12_000
LOD_BACK = 0.8
#: with many sounds, the scatter holds those within the view and this much of it on each side
SCATTER_MARGIN = 0.5


def class_colours(classes: list[str]) -> dict[str, QColor]:
    """Glasbey's distinct colours (:mod:`explorer.map.palette`); a viridis ramp for many numbers (pitch)."""
    numeric = all(_is_number(c) for c in classes)
    if numeric and len(classes) > 12:
        cmap = pg.colormap.get("viridis")
        vals = np.array([float(c) for c in classes])
        t = (vals - vals.min()) / max(np.ptp(vals), 1e-12)
        return {c: cmap.map(float(v), mode="qcolor") for c, v in zip(classes, t)}
    return {c: QColor(h) for c, h in zip(classes, categorical_palette(len(classes)))}


class MapScatter(pg.ScatterPlotItem):
    """A ``ScatterPlotItem`` whose bounding rect is worked out once per change of its data or of the view.

    pyqtgraph's scene asks each item for it several times per mouse move (its hover search, then
    the paint), some 50 calls a move for the map's items, and pyqtgraph recomputes it every time
    (the view's pixel size, a few QPointF): ~5 ms a move on a loaded machine. pyqtgraph replaces
    ``self.bounds`` with a new list whenever the data, the spot sizes or the view transform
    change, so that list is the cache's key.
    """

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        key = self.bounds
        if getattr(self, "_rect_key", None) is key and key[0] is not None and key[1] is not None:
            return QRectF(self._rect)
        rect = super().boundingRect()  # fills self.bounds (the data extent), in place
        self._rect_key, self._rect = self.bounds, QRectF(rect)
        return rect


class MapViewBox(pg.ViewBox):
    """A left drag draws a zoom box; a middle drag, or a left drag with Space held, pans.

    ``space_held`` is set by the map view, which watches the Space key (a window shortcut
    also plays the sound on Space, so the key is only watched, never taken).
    """

    def __init__(self) -> None:
        super().__init__()
        self.setMouseMode(pg.ViewBox.RectMode)
        self.space_held = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001, N802 - pyqtgraph override
        pan = ev.button() == Qt.MouseButton.MiddleButton or (ev.button() == Qt.MouseButton.LeftButton and self.space_held)
        if not pan:
            super().mouseDragEvent(ev, axis)
            return
        self.setMouseMode(pg.ViewBox.PanMode)
        try:
            super().mouseDragEvent(ev, axis)
        finally:
            self.setMouseMode(pg.ViewBox.RectMode)


class _SpaceWatcher(QObject):
    """Tells a view box whether Space is held (application-wide; the event goes on)."""

    def __init__(self, vb: MapViewBox, parent: QObject) -> None:
        super().__init__(parent)
        self.vb = vb

    # a key bound to a shortcut arrives as ShortcutOverride (then the shortcut takes it), not as a press
    _PRESS = frozenset({QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride})
    _KEYS = _PRESS | {QEvent.Type.KeyRelease}

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        # every event of the application comes here (mouse moves, paints, timers): one set lookup
        # for them, the old tuple of enums built per event cost ~40 us each on a loaded machine
        t = ev.type()
        if t not in self._KEYS:
            return False
        press = self._PRESS
        if ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
            self.vb.space_held = t in press
        return False


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class MapView(QWidget):
    """Scatter + legend. Emits intents; reads what to draw from the controller."""

    point_clicked = Signal(int)
    position_clicked = Signal(float, float)
    class_toggled = Signal(str)
    #: the pointer came onto a sound (index into the map's points): play-on-hover listens
    point_hovered = Signal(int)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        # what is drawn, for hover and click: a KD-tree over the points and their visibility
        self._hits = HitIndex()
        self._hit_visible = np.zeros(0, dtype=bool)
        self.plot = pg.PlotWidget(background=BACKGROUND, viewBox=MapViewBox())
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for ax in ("left", "bottom"):  # a map's axes mean nothing, and their ticks cost ~7 ms a frame
            self.plot.getPlotItem().hideAxis(ax)
        self.plot.getPlotItem().showGrid(x=False, y=False)
        self.vb = self.plot.getPlotItem().getViewBox()
        self.scatter = MapScatter(pxMode=True, size=POINT_SIZE, pen=None, hoverable=False)
        # the spots are drawn once into a device pixmap and blitted: a hover ring, marker or label that
        # changes repaints its small rect from that pixmap, not 10,000 fragments (a new layout, pan or
        # zoom redraws it, as before)
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # hollow rings with a dark halo (a wider ring below): they read over points and hide none
        self.centres_halo = MapScatter(pxMode=True, size=CENTRE_PX, symbol="o",
                                               pen=pg.mkPen(BACKGROUND, width=3.5), brush=None)
        self.centres = MapScatter(pxMode=True, size=CENTRE_PX, symbol="o", pen=pg.mkPen("#ffffff", width=1.5),
                                          brush=None)
        self.matches = MapScatter(pxMode=True, size=MATCH_PX, pen=pg.mkPen(MATCH_PEN, width=2), brush=None)
        self.marker = MapScatter(pxMode=True, size=16, pen=pg.mkPen("#ffffff", width=2), brush=None)
        self.hover = MapScatter(pxMode=True, size=13, pen=pg.mkPen("#ffffffa0", width=1.5), brush=None)
        # at far zoom with many sounds, an image of them replaces the scatter (level of detail)
        self.density = DensityItem()
        self.density.setZValue(-1)  # under everything else: centres, marks and paths stay on top
        self.density.setVisible(False)
        for item in (self.density, self.scatter, self.centres_halo, self.centres, self.matches, self.hover,
                     self.marker):
            self.plot.addItem(item)
        self._lod_points: int | None = LOD_POINTS
        self._shown_xy = np.zeros((0, 2))  # the shown sounds' positions, counted in the view on each range change
        self._shown_mask = np.zeros(0, bool)
        self._scatter_stale = False  # the scatter's data waits for the zoom to come back to spots
        self._scatter_region: tuple[float, float, float, float] | None = None  # (x0, x1, y0, y1) it holds; None: all
        self._scatter_rows = np.zeros(0, np.intp)  # the points the scatter's spots are, in its order
        self._scatter_brushes: np.ndarray | None = None  # the brush array its spots were made with
        self._point_class = np.zeros(0, np.intp)  # each point's class, an index into _class_names
        self._class_brushes: list[pg.QtGui.QBrush] = []  # each class's brush, in _class_names order
        self._class_names: list[str] = []
        self._class_rgb = np.zeros((0, 3), np.uint8)  # the legend's colours, for the density image
        self.match_mask = np.zeros(0, bool)
        self._space = _SpaceWatcher(self.vb, self)
        QApplication.instance().installEventFilter(self._space)
        for keys, slot in ((("Left",), lambda: self.step("left")),
                           (("Right",), lambda: self.step("right")), (("Up",), lambda: self.step("up")),
                           (("Down",), lambda: self.step("down"))):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self.plot)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)
        self.plot.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._centre_labels: dict[str, pg.TextItem] = {}
        self._centre_pos: dict[str, np.ndarray] = {}
        self._label_font = QFont()
        self._label_font.setPointSizeF(max(7.0, self._label_font.pointSizeF() - 1))
        # labels are re-placed when the zoom changes (their pixel overlaps do), batched
        self._label_timer = QTimer(self)
        self._label_timer.setSingleShot(True)
        self._label_timer.setInterval(40)
        self._label_timer.timeout.connect(self._layout_centre_labels)
        self.vb.sigRangeChanged.connect(self._on_vb_geometry_changed)
        self.vb.sigResized.connect(self._on_vb_geometry_changed)
        self.vb.sigRangeChanged.connect(self._update_level_of_detail)
        self.vb.sigResized.connect(self._update_level_of_detail)
        self._brushes: dict[str, pg.QtGui.QBrush] = {}
        self._point_brushes = np.array([], dtype=object)

        self.legend = QListWidget()
        self.legend.setMaximumWidth(190)
        self.legend.setToolTip("Untick a class to hide it")
        self.legend.itemChanged.connect(self._on_legend_item_changed)
        self.hint = QLabel(EMPTY_HINT, self.plot)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #aaaaaa; font-size: 15px; background: transparent;")

        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        side = QVBoxLayout()
        self.legend_title = QLabel("")
        side.addWidget(self.legend_title)
        side.addWidget(self.legend, 1)
        lay.addLayout(side)

        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_scene_moved)
        self._hover_index: int | str | None = None

    # --- drawing ----------------------------------------------------------------------------------
    def resizeEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        super().resizeEvent(ev)
        self.hint.setGeometry(0, 0, self.plot.width(), self.plot.height())

    def set_hint(self, text: str | None) -> None:
        self.hint.setText(text or "")
        self.hint.setVisible(bool(text))
        self.hint.setGeometry(0, 0, self.plot.width(), self.plot.height())

    def refresh(self, *, auto_range: bool = True) -> None:
        """Redraw everything from the controller: points, colours, legend, centres, marks."""
        c = self.controller
        pts = c.points
        if len(pts) == 0 or c.dataset is None:
            self.scatter.setData(pos=np.zeros((0, 2)))
            self._shown_xy, self._shown_mask, self._scatter_stale = np.zeros((0, 2)), np.zeros(0, bool), False
            self.density.set_data(np.zeros((0, 2)), np.zeros(0, np.intp), np.zeros((0, 3), np.uint8))
            self._update_level_of_detail()
            self.centres.setData(pos=np.zeros((0, 2)))
            self.centres_halo.setData(pos=np.zeros((0, 2)))
            self._clear_centre_labels()
            self.legend.clear()
            self.marker.setData(pos=np.zeros((0, 2)))
            self.hover.setData(pos=np.zeros((0, 2)))
            self.matches.setData(pos=np.zeros((0, 2)))
            return
        classes = c.classes()
        colours = class_colours(classes)
        if self._brushes.keys() != colours.keys() or any(self._brushes[k].color() != q for k, q in colours.items()):
            self._brushes = {k: pg.mkBrush(col) for k, col in colours.items()}
        pc = c.point_classes()  # each point's class as an index into the classes: brushes by numpy indexing
        point_class = np.asarray(pc.index, dtype=np.intp)
        class_brushes = [self._brushes[k] for k in pc.names]
        # the same brush for every point (a final t-SNE layout after its partials): the same array, so
        # the scatter moves its spots in place instead of a setData with a brush per spot
        same = (np.array_equal(point_class, self._point_class) and len(class_brushes) == len(self._class_brushes)
                and all(a is b for a, b in zip(class_brushes, self._class_brushes)))
        self._point_class, self._class_brushes = point_class, class_brushes
        self._class_names = list(pc.names)
        self._class_rgb = np.array([[colours[k].red(), colours[k].green(), colours[k].blue()]
                                    for k in self._class_names], dtype=np.uint8).reshape(-1, 3)
        if not same:
            self._point_brushes = np.array(class_brushes, dtype=object)[self._point_class]
        self._rebuild_legend(classes, colours)
        if auto_range:
            self._fit_new_layout()
        self._draw_points()
        self._draw_centres()
        self.show_selection()

    def update_positions(self, *, auto_range: bool = True) -> None:
        """Move the points (a partial t-SNE layout) keeping colours and legend.

        With the same classes and visibility the spots are moved in place (``_fill_scatter``):
        a few ms of GUI-thread work at 10,000 points, where a ``setData`` with a brush per spot
        cost ~100 ms; the runner hands the map at most one layout per 66 ms.
        """
        if len(self._point_brushes) != len(self.controller.points):
            self.refresh(auto_range=auto_range)
            return
        if auto_range:
            self._fit_new_layout()
        self._draw_points()
        self._draw_centres()

    def redraw_visibility(self) -> None:
        """Hidden classes changed: redraw points and centres, keep the legend (its item is live)."""
        if len(self._point_brushes) == len(self.controller.points):
            self._draw_points()
            self._draw_centres()

    def _draw_points(self) -> None:
        visible = self.controller.visible_mask()
        pts = self.controller.points
        self._shown_xy, self._shown_mask = np.asarray(pts[visible], dtype=np.float64), visible
        if self._lod_points is not None and len(self._shown_xy) > self._lod_points:
            warm_up()  # the image's compiled loops load off this thread before the first far frame
        self.density.set_data(pts, self._point_class, self._class_rgb, visible)
        self._scatter_stale = True  # filled now when spots are shown, else when the zoom comes back
        self._update_level_of_detail()
        self._hits.set_points(pts)
        self._hit_visible = visible
        self._draw_matches()

    def _fit_new_layout(self) -> None:
        """Fit the view to a layout about to be drawn: spots or the density image are chosen for its range.

        What was drawn is forgotten first, so the range change draws nothing old (at 100,000 points,
        filling the scatter for the range before the fit cost seconds, for an image it then hid).
        """
        self._shown_xy, self._shown_mask, self._scatter_stale = np.zeros((0, 2)), np.zeros(0, bool), False
        self.fit_view()

    def set_level_of_detail(self, max_points: int | None) -> None:
        """Draw a density image when more than ``max_points`` shown sounds are in the view; None: spots always."""
        self._lod_points = None if max_points is None else int(max_points)
        self._scatter_stale = len(self._shown_xy) > 0  # the scatter may hold a region only: refill it
        self._update_level_of_detail()

    @property
    def density_shown(self) -> bool:
        """Whether the map shows its sounds as the density image (far zoom) rather than spots."""
        return self.density.isVisible()

    def _update_level_of_detail(self, *_: object) -> None:
        """Spots or the density image, by how many shown sounds the view holds (numpy, no loop).

        With more shown sounds than the limit, the scatter holds only those around the view (the
        view and SCATTER_MARGIN of it on each side): pyqtgraph maps and culls every point it holds
        on every frame, some 20 ms for 100,000 on a loaded machine even when 60 are in the view.
        It is refilled when the view leaves that region. Fewer sounds: it holds them all.
        """
        far = False
        limit = self._lod_points
        xy = self._shown_xy
        many = limit is not None and len(xy) > limit * LOD_BACK
        (x0, x1), (y0, y1) = self.vb.viewRange()
        if many:
            inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
            far = int(np.count_nonzero(inside)) > limit * (LOD_BACK if self.density.isVisible() else 1.0)
        if not far:
            r = self._scatter_region
            left = r is None or not (r[0] <= x0 and x1 <= r[1] and r[2] <= y0 and y1 <= r[3])
            if many and (self._scatter_stale or left):
                mx, my = SCATTER_MARGIN * (x1 - x0), SCATTER_MARGIN * (y1 - y0)
                r = (x0 - mx, x1 + mx, y0 - my, y1 + my)
                near = (xy[:, 0] >= r[0]) & (xy[:, 0] <= r[1]) & (xy[:, 1] >= r[2]) & (xy[:, 1] <= r[3])
                self._fill_scatter(xy[near], np.flatnonzero(self._shown_mask)[near])
                self._scatter_region, self._scatter_stale = r, False
            elif not many and self._scatter_stale:
                self._fill_scatter(xy, np.flatnonzero(self._shown_mask))
                self._scatter_region, self._scatter_stale = None, False
        self.scatter.setVisible(not far)
        self.density.setVisible(far)

    def _fill_scatter(self, xy: np.ndarray, rows: np.ndarray) -> None:
        """Put spots for points ``rows`` (indices into the map's points) at ``xy`` [shape=(len(rows), 2)].

        When the scatter already holds exactly these rows with these brushes (a t-SNE frame: same
        classes, visibility and region), the spots are moved in place: ``setData`` with a brush per
        spot cost ~100 ms at 10,000 points (a ``_mkBrush`` and an atlas lookup per spot); writing
        the positions into pyqtgraph's record array keeps each spot's brush and atlas fragment.
        """
        s = self.scatter
        if (self._scatter_brushes is self._point_brushes and len(rows) == len(s.data)
                and np.array_equal(rows, self._scatter_rows)):
            s.data["x"] = xy[:, 0]
            s.data["y"] = xy[:, 1]
            # what setData does after new positions: new bounds for the scene and the view's auto-range
            s.prepareGeometryChange()
            s.bounds = [None, None]
            s.informViewBoundsChanged()
            s.invalidate()
            return
        s.setData(pos=xy, brush=self._point_brushes[rows], size=POINT_SIZE, pen=None)
        self._scatter_rows, self._scatter_brushes = rows, self._point_brushes

    # --- navigation -------------------------------------------------------------------------------
    def fit_view(self) -> None:
        """Zoom to the shown sounds (F, Home), with a margin; all points when none is shown."""
        pts = self.controller.points
        if len(pts) == 0:
            return
        shown = self.controller.visible_mask() if len(self._point_brushes) == len(pts) else np.ones(len(pts), bool)
        self._fit(pts[shown] if shown.any() else pts)

    def _fit(self, pts: np.ndarray) -> None:
        lo, hi = pts.min(0), pts.max(0)
        span = np.maximum(hi - lo, 1e-9 + 0.05 * max(float(np.max(hi - lo)), 1e-6))
        self.vb.setRange(xRange=(lo[0], lo[0] + span[0]), yRange=(lo[1], lo[1] + span[1]), padding=0.08)

    def step(self, direction: str) -> int | None:
        """Arrow keys: go to the nearest shown sound that way, as a click on it would (and play it)."""
        c = self.controller
        if len(c.points) == 0:
            return None
        sel = c.selection
        start = sel.index if sel is not None and sel.kind == "point" and sel.index is not None else None
        (x0, x1), (y0, y1) = self.vb.viewRange()
        target = step_towards(c.points, start, direction, pixel_size=self.vb.viewPixelSize(),
                              visible=c.visible_mask(), centre=((x0 + x1) / 2, (y0 + y1) / 2))
        if target is None:
            return None
        x, y = c.points[target]
        if not (x0 <= x <= x1 and y0 <= y <= y1):  # keep the new sound on screen
            self.vb.translateBy(x=x - (x0 + x1) / 2 if not x0 <= x <= x1 else 0.0,
                                y=y - (y0 + y1) / 2 if not y0 <= y <= y1 else 0.0)
        self.point_clicked.emit(int(target))
        return int(target)

    def set_search(self, query: str) -> int:
        """Light up the sounds whose name or labels match ``query``; returns how many (shown) match."""
        c = self.controller
        self.match_mask = search_mask(c.dataset, c.point_clip, query) if len(c.points) else np.zeros(0, bool)
        self._draw_matches()
        return int(self._shown_matches().sum())

    def _shown_matches(self) -> np.ndarray:
        c = self.controller
        if len(self.match_mask) != len(c.points):
            return np.zeros(len(c.points), bool)
        return self.match_mask & c.visible_mask()

    def _draw_matches(self) -> None:
        m = self._shown_matches()
        self.matches.setData(pos=self.controller.points[m] if m.any() else np.zeros((0, 2)))

    def jump_to_matches(self) -> bool:
        """Fit the view to the search matches (Enter in the search box); False when there are none."""
        m = self._shown_matches()
        if not m.any():
            return False
        self._fit(self.controller.points[m])
        return True

    def _on_vb_geometry_changed(self, *_: object) -> None:
        self._label_timer.start()

    def _clear_centre_labels(self) -> None:
        for t in self._centre_labels.values():
            self.plot.removeItem(t)
        self._centre_labels.clear()
        self._centre_pos = {}

    def _draw_centres(self) -> None:
        centres = self.controller.class_centres_2d()
        if not centres or len(centres) > 24:
            self._clear_centre_labels()
            self.centres.setData(pos=np.zeros((0, 2)))
            self.centres_halo.setData(pos=np.zeros((0, 2)))
            return
        pos = np.array(list(centres.values()))
        self.centres_halo.setData(pos=pos)
        self.centres.setData(pos=pos)
        for name in [n for n in self._centre_labels if n not in centres]:
            self.plot.removeItem(self._centre_labels.pop(name))
        for name in centres:  # text items are reused: a t-SNE animation moves them every frame
            if name not in self._centre_labels:
                t = pg.TextItem(name, color="#f0f0f0", fill=pg.mkBrush(CENTRE_LABEL_FILL))
                t.setFont(self._label_font)
                for part in (t, t.textItem):  # a drag that starts on a label still pans or zooms
                    part.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
                    part.setAcceptHoverEvents(False)
                t.setZValue(26.5)  # over a morph path's line (names stay readable), under its handles
                self.plot.addItem(t)
                self._centre_labels[name] = t
        self._centre_pos = centres
        self._layout_centre_labels()
        self._label_timer.stop()  # laid out for the current range: a fit just before needs no second pass

    def _layout_centre_labels(self) -> None:
        """Put each centre's label where it overlaps no other (bigger classes first); hide the rest."""
        centres = self._centre_pos
        if not centres:
            return
        names = list(centres)
        sx, sy = (max(abs(float(v)), 1e-300) for v in self.vb.viewPixelSize())
        xy = np.array([centres[n] for n in names], dtype=float)
        anchors = np.c_[xy[:, 0] / sx, xy[:, 1] / sy]
        sizes = np.array([[self._centre_labels[n].textItem.boundingRect().width(),
                           self._centre_labels[n].textItem.boundingRect().height()] for n in names])
        counts = self._class_counts()
        sides = place_labels(anchors, sizes, np.array([counts.get(n, 0) for n in names]),
                             gap=LABEL_GAP_PX, marker=CENTRE_PX / 2)
        for n, (x, y), side in zip(names, xy, sides):
            t = self._centre_labels[n]
            t.setVisible(side is not None)
            if side is None:
                continue
            dx = {"right": LABEL_GAP_PX, "left": -LABEL_GAP_PX}.get(side, 0.0) * sx
            dy = {"above": LABEL_GAP_PX, "below": -LABEL_GAP_PX}.get(side, 0.0) * sy
            t.setAnchor(LABEL_ANCHORS[side])
            t.setPos(float(x + dx), float(y + dy))

    def _class_counts(self) -> dict[str, int]:
        return self.controller.class_counts()  # cached with the classes: no per-point work on a hover or frame

    def centre_under(self, x: float, y: float, *, radius_px: float = CENTRE_PX / 2 + 3) -> str | None:
        """The class centre within ``radius_px`` screen pixels of data point ``(x, y)``, or None."""
        if not self._centre_pos:
            return None
        sx, sy = (max(abs(float(v)), 1e-300) for v in self.vb.viewPixelSize())
        names = list(self._centre_pos)
        xy = np.array([self._centre_pos[n] for n in names], dtype=float)
        d = np.hypot((xy[:, 0] - x) / sx, (xy[:, 1] - y) / sy)
        k = int(np.argmin(d))
        return names[k] if d[k] <= radius_px else None

    def _rebuild_legend(self, classes: list[str], colours: dict[str, QColor]) -> None:
        self.legend.blockSignals(True)
        self.legend.clear()
        self.legend_title.setText(field_display_name(self.controller.colour_field or ""))
        self.legend_title.setToolTip(f"label field: {self.controller.colour_field}" if self.controller.colour_field else "")
        for name in classes:
            item = QListWidgetItem(name)
            pm = QPixmap(12, 12)
            pm.fill(colours[name])
            item.setIcon(QIcon(pm))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if name in self.controller.hidden else Qt.CheckState.Checked)
            self.legend.addItem(item)
        self.legend.blockSignals(False)

    def show_selection(self) -> None:
        sel = self.controller.selection
        pts = self.controller.points
        if sel is None:
            self.marker.setData(pos=np.zeros((0, 2)))
        elif sel.kind == "point" and sel.index is not None and sel.index < len(pts):
            self.marker.setData(pos=pts[[sel.index]], symbol="o")
        elif sel.kind == "position" and sel.xy is not None:
            self.marker.setData(pos=np.array([sel.xy]), symbol="x")

    # --- coordinates ---------------------------------------------------------------------------------
    def data_to_viewport(self, x: float, y: float) -> QPoint:
        """Viewport pixel of a data point: what a test (or a screenshot script) clicks on."""
        scene = self.vb.mapViewToScene(QPointF(float(x), float(y)))
        return self.plot.mapFromScene(scene)

    # --- events ------------------------------------------------------------------------------------------
    def _hit_test(self, x: float, y: float) -> int | None:
        """The shown point under ``(x, y)`` (data units) within HIT_RADIUS_PX pixels, or None.

        Searches what was last drawn (positions and visibility kept by ``_draw_points``) with a
        KD-tree: microseconds at 100,000 points, where measuring every point and rebuilding
        the visibility took milliseconds on each hover move. Before the first drawing of a
        layout the controller's own test answers.
        """
        if len(self._hits) != len(self.controller.points):
            return self.controller.hit_test(x, y, pixel_size=self.vb.viewPixelSize(), radius_px=HIT_RADIUS_PX)
        return self._hits.nearest(x, y, pixel_size=self.vb.viewPixelSize(), radius_px=HIT_RADIUS_PX,
                                  visible=self._hit_visible)

    def _on_scene_clicked(self, ev) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        pos = ev.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos) or len(self.controller.points) == 0:
            return
        p = self.vb.mapSceneToView(pos)
        i = self._hit_test(p.x(), p.y())
        if i is None:
            self.position_clicked.emit(float(p.x()), float(p.y()))
        else:
            self.point_clicked.emit(i)

    def _on_scene_moved(self, args) -> None:  # noqa: ANN001 - SignalProxy packs the args
        pos = args[0]
        if len(self.controller.points) == 0 or not self.vb.sceneBoundingRect().contains(pos):
            return
        p = self.vb.mapSceneToView(pos)
        i = self._hit_test(p.x(), p.y())
        centre = self.centre_under(p.x(), p.y()) if i is None else None
        key = i if centre is None else f"centre:{centre}"
        if key == self._hover_index:
            return
        self._hover_index = key
        if i is None:
            self._show_hover_ring(None)
            if centre is None:
                QToolTip.hideText()
            else:  # the name of a centre, also one whose label was hidden to avoid an overlap
                n = self._class_counts().get(centre, 0)
                global_pos = self.plot.viewport().mapToGlobal(self.plot.mapFromScene(pos))
                QToolTip.showText(global_pos, f"centre of {centre} ({n} sounds)", self.plot)
            return
        self._show_hover_ring(self.controller.points[i])
        self.point_hovered.emit(int(i))
        global_pos = self.plot.viewport().mapToGlobal(self.plot.mapFromScene(pos))
        QToolTip.showText(global_pos, self.controller.describe_point(i), self.plot)

    def _show_hover_ring(self, xy: np.ndarray | None) -> None:
        """Put the hover ring on ``xy`` (data units), or hide it: one spot at the item's origin, the item moved.

        A ``setData`` per hover move rebuilt the item's spots (milliseconds each on a loaded
        machine, on the GUI thread); moving the item is a transform change.
        """
        if xy is None:
            self.hover.setVisible(False)
            return
        if len(self.hover.data) != 1:  # emptied by a refresh: one spot at the origin again
            self.hover.setData(pos=np.zeros((1, 2)))
        self.hover.setPos(float(xy[0]), float(xy[1]))
        self.hover.setVisible(True)

    def _on_legend_item_changed(self, item: QListWidgetItem) -> None:
        self.class_toggled.emit(item.text())
