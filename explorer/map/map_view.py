"""The latent map: one scatter of every sound, coloured by a label, clickable everywhere.

Rendering follows pyqtgraph's fast path: one ``ScatterPlotItem`` (``pxMode=True``) updated with a
single ``setData`` and an array of reused brushes; selection and hover are a second, tiny item.
Hit-testing is the controller's (numpy), never ``points()``.

Navigation is every map tool's: the wheel zooms, a left drag draws a zoom box, a middle drag (or
a left drag with Space held) pans, F or Home fits the view to the shown sounds, arrow keys step
to the nearest sound in that direction (:mod:`explorer.map.navigation`). Search matches light
up in a ring of their own. Class centres are hollow rings, so the sound under one shows through.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QApplication,
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


def class_colours(classes: list[str]) -> dict[str, QColor]:
    """Glasbey's distinct colours (:mod:`explorer.map.palette`); a viridis ramp for many numbers (pitch)."""
    numeric = all(_is_number(c) for c in classes)
    if numeric and len(classes) > 12:
        cmap = pg.colormap.get("viridis")
        vals = np.array([float(c) for c in classes])
        t = (vals - vals.min()) / max(np.ptp(vals), 1e-12)
        return {c: cmap.map(float(v), mode="qcolor") for c, v in zip(classes, t)}
    return {c: QColor(h) for c, h in zip(classes, categorical_palette(len(classes)))}


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

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        t = ev.type()
        # a key bound to a shortcut arrives as ShortcutOverride (then the shortcut takes it), not as a press
        press = (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
        if t in (*press, QEvent.Type.KeyRelease) and ev.key() == Qt.Key.Key_Space and not ev.isAutoRepeat():
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
        for ax in ("left", "bottom"):
            self.plot.getPlotItem().getAxis(ax).setStyle(showValues=False)
        self.plot.getPlotItem().showGrid(x=False, y=False)
        self.vb = self.plot.getPlotItem().getViewBox()
        self.scatter = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE, pen=None, hoverable=False)
        # hollow rings with a dark halo (a wider ring below): they read over points and hide none
        self.centres_halo = pg.ScatterPlotItem(pxMode=True, size=CENTRE_PX, symbol="o",
                                               pen=pg.mkPen(BACKGROUND, width=3.5), brush=None)
        self.centres = pg.ScatterPlotItem(pxMode=True, size=CENTRE_PX, symbol="o", pen=pg.mkPen("#ffffff", width=1.5),
                                          brush=None)
        self.matches = pg.ScatterPlotItem(pxMode=True, size=MATCH_PX, pen=pg.mkPen(MATCH_PEN, width=2), brush=None)
        self.marker = pg.ScatterPlotItem(pxMode=True, size=16, pen=pg.mkPen("#ffffff", width=2), brush=None)
        self.hover = pg.ScatterPlotItem(pxMode=True, size=13, pen=pg.mkPen("#ffffffa0", width=1.5), brush=None)
        for item in (self.scatter, self.centres_halo, self.centres, self.matches, self.hover, self.marker):
            self.plot.addItem(item)
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
        self._brushes = {k: pg.mkBrush(col) for k, col in colours.items()}
        labels = c.point_labels()
        self._point_brushes = np.array([self._brushes[k] for k in labels], dtype=object)
        self._rebuild_legend(classes, colours)
        self._draw_points()
        self._draw_centres()
        self.show_selection()
        if auto_range:
            self.fit_view()

    def update_positions(self, *, auto_range: bool = True) -> None:
        """Move the points (a partial t-SNE layout) keeping colours and legend.

        One ``setData`` with the reused brushes: about 4 ms for 2000 points (60 ms for 20000),
        well inside a t-SNE frame; the runner hands the map at most one layout per 66 ms.
        """
        if len(self._point_brushes) != len(self.controller.points):
            self.refresh(auto_range=auto_range)
            return
        self._draw_points()
        self._draw_centres()
        if auto_range:
            self.fit_view()

    def redraw_visibility(self) -> None:
        """Hidden classes changed: redraw points and centres, keep the legend (its item is live)."""
        if len(self._point_brushes) == len(self.controller.points):
            self._draw_points()
            self._draw_centres()

    def _draw_points(self) -> None:
        visible = self.controller.visible_mask()
        pts = self.controller.points
        self.scatter.setData(pos=pts[visible], brush=self._point_brushes[visible], size=POINT_SIZE, pen=None)
        self._hits.set_points(pts)
        self._hit_visible = visible
        self._draw_matches()

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
        names, counts = np.unique(self.controller.point_labels(), return_counts=True)
        return {str(n): int(k) for n, k in zip(names, counts)}

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
            self.hover.setData(pos=np.zeros((0, 2)))
            if centre is None:
                QToolTip.hideText()
            else:  # the name of a centre, also one whose label was hidden to avoid an overlap
                n = self._class_counts().get(centre, 0)
                global_pos = self.plot.viewport().mapToGlobal(self.plot.mapFromScene(pos))
                QToolTip.showText(global_pos, f"centre of {centre} ({n} sounds)", self.plot)
            return
        self.hover.setData(pos=self.controller.points[[i]])
        self.point_hovered.emit(int(i))
        global_pos = self.plot.viewport().mapToGlobal(self.plot.mapFromScene(pos))
        QToolTip.showText(global_pos, self.controller.describe_point(i), self.plot)

    def _on_legend_item_changed(self, item: QListWidgetItem) -> None:
        self.class_toggled.emit(item.text())
