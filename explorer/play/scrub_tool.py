"""Scrubbing on the map: while the tool is on, a left-button drag is a gesture the sound follows.

It only turns mouse events into intents in map coordinates (``scrub_started``, ``scrub_moved``,
``scrub_ended``) and draws two things: the play cursor (where the sound is now, whoever moves
it: the mouse, MIDI, OSC or live input) and the gesture just played. What the gesture sounds
like is the play engine's business (:mod:`explorer.play.play_flow`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal

CURSOR_COLOUR = "#00e5ff"
GESTURE_PEN = pg.mkPen("#00e5ff80", width=2, style=Qt.PenStyle.DashLine)
#: a gesture keeps at most this many positions (a minute of dragging at 60 events a second)
MAX_GESTURE = 4000


class ScrubTool(QObject):
    """An event filter on the map's viewport, active only while scrubbing is on.

    ``map_view`` is an :class:`explorer.map.map_view.MapView`.
    """

    scrub_started = Signal(float, float)
    scrub_moved = Signal(float, float)
    #: the gesture as an array of positions [shape=(n, 2)], when the button is released
    scrub_ended = Signal(object)

    def __init__(self, map_view, parent: QObject | None = None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.map_view = map_view
        self.active = False
        self._gesture: list[tuple[float, float]] = []
        self._down = False
        self.cursor = pg.ScatterPlotItem(pxMode=True, size=18, symbol="+", pen=pg.mkPen(CURSOR_COLOUR, width=3),
                                         brush=pg.mkBrush(CURSOR_COLOUR))
        self.trail = pg.PlotDataItem(pen=GESTURE_PEN)
        for z, item in ((40, self.trail), (41, self.cursor)):
            item.setZValue(z)
            map_view.plot.addItem(item)
        map_view.plot.viewport().installEventFilter(self)

    def detach(self) -> None:
        """Stop filtering the map's mouse events (the window is closing)."""
        self.active = False
        self.map_view.plot.viewport().removeEventFilter(self)

    def set_active(self, on: bool) -> None:
        self.active = bool(on)
        self._down = False
        self.map_view.plot.viewport().setCursor(Qt.CursorShape.PointingHandCursor if on else Qt.CursorShape.ArrowCursor)

    @property
    def dragging(self) -> bool:
        return self._down

    def show_cursor(self, xy: tuple[float, float] | None) -> None:
        """Draw the play cursor at ``xy`` (map coordinates), or hide it."""
        if xy is None:
            self.cursor.setData([], [])
        else:
            self.cursor.setData([float(xy[0])], [float(xy[1])])

    def show_gesture(self, xy: np.ndarray | None) -> None:
        if xy is None or len(xy) < 2:
            self.trail.setData([], [])
        else:
            self.trail.setData(xy[:, 0], xy[:, 1])

    def cancel(self) -> None:
        """End a drag whose button release will not arrive (the window lost the mouse or the focus)."""
        if self._down:
            self._end(None)

    def _end(self, xy: tuple[float, float] | None) -> None:
        self._down = False
        if xy is not None and (not self._gesture or xy != self._gesture[-1]):
            self._gesture.append(xy)
        g = np.asarray(self._gesture, dtype=float).reshape(-1, 2)
        self._gesture = []
        self.show_gesture(g)
        self.scrub_ended.emit(g)

    def _data(self, pos: QPointF) -> tuple[float, float]:
        p = self.map_view.vb.mapSceneToView(self.map_view.plot.mapToScene(pos.toPoint()))
        return float(p.x()), float(p.y())

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.active or self.map_view.controller.embedding is None:
            return False
        t = ev.type()
        if self.map_view.vb.space_held and not self._down:  # Space + drag pans, as everywhere on the map
            return False
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            self._down = True
            xy = self._data(ev.position())
            self._gesture = [xy]
            self.scrub_started.emit(*xy)
            return True
        if self._down and t in (QEvent.Type.FocusOut, QEvent.Type.UngrabMouse, QEvent.Type.Hide):
            self._end(None)
            return False
        if t == QEvent.Type.MouseMove and self._down and not ev.buttons() & Qt.MouseButton.LeftButton:
            self._end(self._data(ev.position()))  # the release happened where we could not see it
            return True
        if t == QEvent.Type.MouseMove and self._down:
            xy = self._data(ev.position())
            if len(self._gesture) < MAX_GESTURE:
                self._gesture.append(xy)
                self.show_gesture(np.asarray(self._gesture))
            self.scrub_moved.emit(*xy)
            return True
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton and self._down:
            self._end(self._data(ev.position()))
            return True
        return t == QEvent.Type.MouseButtonDblClick and ev.button() == Qt.MouseButton.LeftButton
