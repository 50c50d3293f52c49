"""Drawing and editing morph paths on the map, and drawing them (pyqtgraph items).

In path mode an event filter on the map's viewport takes the left mouse button from the map:

- a click on a point, a class centre or empty space adds that waypoint to the selected path
  (or starts a path);
- a drag from empty space draws a free polyline, which becomes a new path of position
  waypoints (its corners, Ramer-Douglas-Peucker);
- a drag that starts on a waypoint of the selected path moves it (dropped on a point or a
  centre, it snaps to it).

Every edit is a :class:`PathEdit` on a QUndoStack (snapshots before and after: paths are small).
Outside path mode the filter lets everything through, so the map pans and plays as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from explorer.core.path_book import PathBook
from explorer.map.map_view import HIT_RADIUS_PX
from models.errors import LatentExplorerError
from models.morphing import morph

# Two lines the eye must tell apart over hundreds of coloured points on a dark map: the path the
# user drew (thick, light, solid, round handles) and where its decoded steps really land (dashed,
# another hue, diamonds). Each gets a dark halo drawn beneath it, so it reads over any point.
#: colours, also used by the panel's legend
PATH_COLOUR = "#f4f1e8"
WAYPOINT_COLOUR = "#ffd166"
PLACED_COLOUR = "#ff5fa2"
HALO = "#14151a"
PATH_PEN = pg.mkPen(PATH_COLOUR, width=4)
PATH_HALO_PEN = pg.mkPen(HALO + "c0", width=8)
OTHER_PEN = pg.mkPen("#ffffff60", width=1.5, style=Qt.PenStyle.DashLine)
DRAW_PEN = pg.mkPen(WAYPOINT_COLOUR, width=3)
PLACED_PEN = pg.mkPen(PLACED_COLOUR, width=2.5, style=Qt.PenStyle.DashLine)
PLACED_HALO_PEN = pg.mkPen(HALO + "a0", width=5.5)
PLACED_BRUSH = pg.mkBrush(PLACED_COLOUR)
LINK_PEN = pg.mkPen(PLACED_COLOUR + "38", width=1, style=Qt.PenStyle.DotLine)
WAYPOINT_PX = 10.0  # grab radius of a waypoint, pixels
DRAG_START_PX = 5.0


class PathEdit(QUndoCommand):
    """One edit of the paths: restores the snapshot before or after."""

    def __init__(self, book: PathBook, before, after, text: str, on_change: Callable[[], None]) -> None:  # noqa: ANN001
        super().__init__(text)
        self.book, self.before, self.after, self.on_change = book, before, after, on_change

    def redo(self) -> None:
        self.book.restore(self.after)
        self.on_change()

    def undo(self) -> None:
        self.book.restore(self.before)
        self.on_change()


class PathTool(QObject):
    """Mouse handling for path mode plus the path's drawing on the map."""

    #: the paths changed (an edit, an undo): the panel re-renders
    paths_edited = Signal()
    #: a click or stroke that makes no waypoint, with the reason (for the status bar)
    waypoint_refused = Signal(str)

    def __init__(self, map_view, book: PathBook, parent: QObject | None = None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.map_view, self.book = map_view, book
        self.undo_stack = QUndoStack(self)
        #: parameters a new path starts with (the panel's current settings)
        self.default_params: Callable[[], morph.MorphParams] = morph.MorphParams
        self.active = False
        self._press: QPointF | None = None
        self._stroke: list[tuple[float, float]] = []
        self._drag_wp: int | None = None
        plot = map_view.plot
        self.others = pg.PlotDataItem(pen=OTHER_PEN, connect="finite")
        self.line_halo = pg.PlotDataItem(pen=PATH_HALO_PEN)
        self.line = pg.PlotDataItem(pen=PATH_PEN)
        self.waypoints = pg.ScatterPlotItem(pxMode=True, size=15, symbol="o", pen=pg.mkPen(HALO, width=2.5),
                                            brush=pg.mkBrush(WAYPOINT_COLOUR))
        # dark ticks on the light line: they read as marks along it, not as map points
        self.steps = pg.ScatterPlotItem(pxMode=True, size=7, symbol="o", pen=pg.mkPen(PATH_COLOUR, width=1.5),
                                        brush=pg.mkBrush(HALO))
        self.links = pg.PlotDataItem(pen=LINK_PEN, connect="pairs")
        self.placed_halo = pg.PlotDataItem(pen=PLACED_HALO_PEN)
        self.placed_line = pg.PlotDataItem(pen=PLACED_PEN)
        self.placed = pg.ScatterPlotItem(pxMode=True, size=11, symbol="d", pen=pg.mkPen(HALO, width=1.5),
                                         brush=PLACED_BRUSH)
        self.drawing = pg.PlotDataItem(pen=DRAW_PEN)
        self.playhead = pg.ScatterPlotItem(pxMode=True, size=22, symbol="o", pen=pg.mkPen("#00e5ff", width=3), brush=None)
        # bottom to top: where the steps land under the drawn path, whose handles stay on top to grab
        layers = (self.others, self.links, self.placed_halo, self.placed_line, self.placed, self.line_halo,
                  self.line, self.steps, self.waypoints, self.drawing, self.playhead)
        for z, item in enumerate(layers):
            item.setZValue(20 + z)
            plot.addItem(item)
        plot.viewport().installEventFilter(self)

    def detach(self) -> None:
        """Stop filtering the map's mouse events (the window is closing)."""
        self.active = False
        self.map_view.plot.viewport().removeEventFilter(self)

    # --- mode -------------------------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        self.active = bool(on)
        self.map_view.plot.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def push(self, before, text: str) -> None:  # noqa: ANN001
        """Record an edit already made on the book (redo on push re-applies the same state)."""
        self.undo_stack.push(PathEdit(self.book, before, self.book.snapshot(), text, self._edited))

    def _edited(self) -> None:
        self.redraw()
        self.paths_edited.emit()

    # --- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        book = self.book
        current = book.path
        other_xy = [np.vstack([p.xy, [[np.nan, np.nan]]]) for i, p in book.visible_paths()
                    if p is not current and len(p.waypoints)]
        if other_xy:
            xy = np.vstack(other_xy)
            self.others.setData(xy[:, 0], xy[:, 1], connect="finite")
        else:
            self.others.setData([], [])
        if current is None or current.model_key not in (None, book.c.current_key):
            for item in (self.line, self.line_halo, self.links, self.placed_line, self.placed_halo):
                item.setData([], [])
            for item in (self.waypoints, self.steps, self.placed):
                item.setData(pos=np.zeros((0, 2)))
            return
        self._draw_line(current.xy)
        r = book.render_of(current)
        if r is None:
            self.steps.setData(pos=np.zeros((0, 2)))
            self._draw_placed(None, None)
            return
        self.steps.setData(pos=r.xy)
        self._draw_placed(r.xy, r.placed)

    def _draw_line(self, xy: np.ndarray) -> None:
        """The user's path through its waypoints [shape=(n, 2)]."""
        for item in (self.line_halo, self.line):
            item.setData(xy[:, 0], xy[:, 1])
        self.waypoints.setData(pos=xy)

    def _draw_placed(self, xy: np.ndarray | None, placed: np.ndarray | None) -> None:
        """Where the decoded steps land [shape=(n_steps, 2)], joined in step order, with faint
        connectors to the steps on the drawn path they came from."""
        if placed is None or xy is None or len(placed) == 0:
            for item in (self.placed_line, self.placed_halo, self.links):
                item.setData([], [])
            self.placed.setData(pos=np.zeros((0, 2)))
            return
        for item in (self.placed_halo, self.placed_line):
            item.setData(placed[:, 0], placed[:, 1])
        self.placed.setData(pos=placed)
        pairs = np.empty((2 * len(xy), 2))
        pairs[0::2], pairs[1::2] = xy, placed
        self.links.setData(pairs[:, 0], pairs[:, 1], connect="pairs")

    def show_playhead(self, xy: np.ndarray | None) -> None:
        self.playhead.setData(pos=np.zeros((0, 2)) if xy is None else np.asarray(xy, dtype=float).reshape(1, 2))

    # --- mouse ------------------------------------------------------------------------------------
    def _data(self, pos: QPointF) -> tuple[float, float]:
        p = self.map_view.vb.mapSceneToView(self.map_view.plot.mapToScene(pos.toPoint()))
        return float(p.x()), float(p.y())

    def _waypoint_under(self, pos: QPointF) -> int | None:
        path = self.book.path
        if path is None or not path.waypoints:
            return None
        px = np.array([[self.map_view.data_to_viewport(*w.xy).x(), self.map_view.data_to_viewport(*w.xy).y()]
                       for w in path.waypoints], dtype=float)
        d = np.hypot(px[:, 0] - pos.x(), px[:, 1] - pos.y())
        i = int(np.argmin(d))
        return i if d[i] <= WAYPOINT_PX else None

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        if not self.active or self.book.c.embedding is None:
            return False
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            self._press = ev.position()
            self._stroke = [self._data(ev.position())]
            self._drag_wp = self._waypoint_under(ev.position())
            return True
        if t == QEvent.Type.MouseMove and self._press is not None:
            d = ev.position() - self._press
            if self._drag_wp is not None:
                path = self.book.path
                xy = path.xy.copy()
                xy[self._drag_wp] = self._data(ev.position())
                self._draw_line(xy)
            elif len(self._stroke) > 1 or np.hypot(d.x(), d.y()) >= DRAG_START_PX:
                self._stroke.append(self._data(ev.position()))
                s = np.array(self._stroke)
                self.drawing.setData(s[:, 0], s[:, 1])
            return True
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton and self._press is not None:
            pos, press = ev.position(), self._press
            self._press = None
            moved = np.hypot((pos - press).x(), (pos - press).y()) >= DRAG_START_PX
            try:
                if self._drag_wp is not None and moved:
                    self._move_waypoint(self._drag_wp, pos)
                elif len(self._stroke) > 1 and (moved or len(self._stroke) > 2):
                    self._stroke.append(self._data(pos))
                    self._finish_stroke()
                else:
                    self._click(pos)
            except LatentExplorerError as exc:  # e.g. no sound near enough to stand for this spot
                self.waypoint_refused.emit(f"No waypoint here: {exc}")
            finally:
                self._stroke, self._drag_wp = [], None
                self.drawing.setData([], [])
            return True
        return t in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick) \
            and ev.button() == Qt.MouseButton.LeftButton

    def _waypoint_at(self, pos: QPointF) -> morph.Waypoint:
        """A class centre, a point, or a map position under the pixel ``pos``."""
        x, y = self._data(pos)
        c, vb = self.book.c, self.map_view.vb
        px = vb.viewPixelSize()
        label = self.book.centre_near(x, y, pixel_size=px, radius_px=HIT_RADIUS_PX + 3)
        i = c.hit_test(x, y, pixel_size=px, radius_px=HIT_RADIUS_PX)

        def dist(q) -> float:  # noqa: ANN001 - in screen pixels
            return float(np.hypot((q[0] - x) / px[0], (q[1] - y) / px[1]))

        if label is not None and (i is None or dist(c.class_centres_2d()[label]) <= dist(c.points[i])):
            return self.book.waypoint_at_centre(label)
        if i is not None:
            return self.book.waypoint_at_point(i)
        return self.book.waypoint_at_position(x, y)

    def _click(self, pos: QPointF) -> None:
        before = self.book.snapshot()
        wp = self._waypoint_at(pos)
        path = self.book.path
        if path is None or path.drawn or path.model_key not in (None, self.book.c.current_key):
            self.book.new_path([wp], params=self.default_params())
            self.push(before, "new path")
        else:
            path.waypoints.append(wp)
            self.push(before, "add waypoint")

    def _move_waypoint(self, k: int, pos: QPointF) -> None:
        before = self.book.snapshot()
        wp = self._waypoint_at(pos)
        self.book.path.waypoints[k] = wp
        self.push(before, "move waypoint")

    def _finish_stroke(self) -> None:
        self.add_stroke(np.array(self._stroke))

    def add_stroke(self, s: np.ndarray) -> None:
        """A drawn path through the positions ``s`` [shape=(n, 2)] (a mouse stroke, a scrub gesture), undoable."""
        px = self.map_view.vb.viewPixelSize()
        # simplify in pixel units, so "a few pixels off the line" means the same at any zoom
        scaled = s / np.array(px)
        corners = morph.simplify_polyline(scaled, 3.0) * np.array(px)
        before = self.book.snapshot()
        wps = [self.book.waypoint_at_position(float(x), float(y)) for x, y in corners]
        self.book.new_path(wps, params=self.default_params(), drawn=True)
        self.push(before, "draw path")
