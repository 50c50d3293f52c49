"""The latent map: one scatter of every sound, coloured by a label, clickable everywhere.

Rendering follows pyqtgraph's fast path: one ``ScatterPlotItem`` (``pxMode=True``) updated with a
single ``setData`` and an array of reused brushes; selection and hover are a second, tiny item.
Hit-testing is the controller's (numpy), never ``points()``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QToolTip, QVBoxLayout, QWidget

from explorer.controller import Controller

#: Tableau-like categorical colours, readable on the dark background
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#fabfd2", "#b6992d", "#499894", "#a0cbe8",
]
POINT_SIZE = 7
HIT_RADIUS_PX = 7.0
EMPTY_HINT = "Open a dataset… (Ctrl+O), or drop a folder of sounds here"


def class_colours(classes: list[str]) -> dict[str, QColor]:
    """Categorical palette for few classes; a viridis ramp for many numeric ones (pitch)."""
    numeric = all(_is_number(c) for c in classes)
    if len(classes) <= len(PALETTE) and not (numeric and len(classes) > 12):
        return {c: QColor(PALETTE[k]) for k, c in enumerate(classes)}
    if numeric:
        cmap = pg.colormap.get("viridis")
        vals = np.array([float(c) for c in classes])
        t = (vals - vals.min()) / max(np.ptp(vals), 1e-12)
        return {c: cmap.map(float(v), mode="qcolor") for c, v in zip(classes, t)}
    return {c: pg.intColor(k, hues=len(classes), values=1, maxValue=230) for k, c in enumerate(classes)}


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

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.plot = pg.PlotWidget(background="#1e1f22")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for ax in ("left", "bottom"):
            self.plot.getPlotItem().getAxis(ax).setStyle(showValues=False)
        self.plot.getPlotItem().showGrid(x=False, y=False)
        self.vb = self.plot.getPlotItem().getViewBox()
        self.scatter = pg.ScatterPlotItem(pxMode=True, size=POINT_SIZE, pen=None, hoverable=False)
        self.centres = pg.ScatterPlotItem(pxMode=True, size=18, symbol="+", pen=pg.mkPen("w", width=2), brush=None)
        self.marker = pg.ScatterPlotItem(pxMode=True, size=16, pen=pg.mkPen("#ffffff", width=2), brush=None)
        self.hover = pg.ScatterPlotItem(pxMode=True, size=13, pen=pg.mkPen("#ffffffa0", width=1.5), brush=None)
        for item in (self.scatter, self.centres, self.hover, self.marker):
            self.plot.addItem(item)
        self._centre_labels: list[pg.TextItem] = []
        self._brushes: dict[str, pg.QtGui.QBrush] = {}
        self._point_brushes = np.array([], dtype=object)

        self.legend = QListWidget()
        self.legend.setMaximumWidth(150)
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
        self._hover_index: int | None = None

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
            self._clear_centre_labels()
            self.legend.clear()
            self.marker.setData(pos=np.zeros((0, 2)))
            self.hover.setData(pos=np.zeros((0, 2)))
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
            self.vb.autoRange(padding=0.05)

    def update_positions(self, *, auto_range: bool = True) -> None:
        """Move the points (a partial t-SNE layout) keeping colours; one setData."""
        if len(self._point_brushes) != len(self.controller.points):
            self.refresh(auto_range=auto_range)
            return
        self._draw_points()
        self._draw_centres()
        if auto_range:
            self.vb.autoRange(padding=0.05)

    def redraw_visibility(self) -> None:
        """Hidden classes changed: redraw points and centres, keep the legend (its item is live)."""
        if len(self._point_brushes) == len(self.controller.points):
            self._draw_points()
            self._draw_centres()

    def _draw_points(self) -> None:
        visible = self.controller.visible_mask()
        pts = self.controller.points
        self.scatter.setData(pos=pts[visible], brush=self._point_brushes[visible], size=POINT_SIZE, pen=None)

    def _clear_centre_labels(self) -> None:
        for t in self._centre_labels:
            self.plot.removeItem(t)
        self._centre_labels.clear()

    def _draw_centres(self) -> None:
        centres = self.controller.class_centres_2d()
        self._clear_centre_labels()
        if not centres or len(centres) > 24:
            self.centres.setData(pos=np.zeros((0, 2)))
            return
        pos = np.array(list(centres.values()))
        self.centres.setData(pos=pos)
        for name, p in centres.items():
            t = pg.TextItem(name, color="#eeeeee", anchor=(0.5, 1.3))
            t.setPos(float(p[0]), float(p[1]))
            self.plot.addItem(t)
            self._centre_labels.append(t)

    def _rebuild_legend(self, classes: list[str], colours: dict[str, QColor]) -> None:
        self.legend.blockSignals(True)
        self.legend.clear()
        self.legend_title.setText(self.controller.colour_field or "")
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
    def _on_scene_clicked(self, ev) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        pos = ev.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos) or len(self.controller.points) == 0:
            return
        p = self.vb.mapSceneToView(pos)
        i = self.controller.hit_test(p.x(), p.y(), pixel_size=self.vb.viewPixelSize(), radius_px=HIT_RADIUS_PX)
        if i is None:
            self.position_clicked.emit(float(p.x()), float(p.y()))
        else:
            self.point_clicked.emit(i)

    def _on_scene_moved(self, args) -> None:  # noqa: ANN001 - SignalProxy packs the args
        pos = args[0]
        if len(self.controller.points) == 0 or not self.vb.sceneBoundingRect().contains(pos):
            return
        p = self.vb.mapSceneToView(pos)
        i = self.controller.hit_test(p.x(), p.y(), pixel_size=self.vb.viewPixelSize(), radius_px=HIT_RADIUS_PX)
        if i == self._hover_index:
            return
        self._hover_index = i
        if i is None:
            self.hover.setData(pos=np.zeros((0, 2)))
            QToolTip.hideText()
            return
        self.hover.setData(pos=self.controller.points[[i]])
        global_pos = self.plot.viewport().mapToGlobal(self.plot.mapFromScene(pos))
        QToolTip.showText(global_pos, self.controller.describe_point(i), self.plot)

    def _on_legend_item_changed(self, item: QListWidgetItem) -> None:
        self.class_toggled.emit(item.text())
