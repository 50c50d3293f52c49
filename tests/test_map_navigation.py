"""Moving around the map: pan, fit, wheel/box zoom, search, arrow keys, filter, hover (offscreen)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from explorer_tiny import make_dataset_folder
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication
from own_window import TIMEOUT, window_on

from explorer.map.navigation import search_mask, step_towards

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=10)


@pytest.fixture
def window(qtbot, tmp_path, dataset_dir):
    w, sink = window_on(qtbot, tmp_path, dataset_dir, 40)
    yield w, sink
    w.runner.cancel_all()
    w.runner.wait(5000)


def _centre(w) -> np.ndarray:
    (x0, x1), (y0, y1) = w.map_view.vb.viewRange()
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


def _span(w) -> np.ndarray:
    (x0, x1), (y0, y1) = w.map_view.vb.viewRange()
    return np.array([x1 - x0, y1 - y0])


def _drag(qtbot, widget, button, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(widget, button, pos=start)
    for k in range(1, 6):  # a few moves: pyqtgraph starts a drag after the first
        qtbot.mouseMove(widget, pos=start + (end - start) * (k / 5))
    qtbot.mouseRelease(widget, button, pos=end)


# --- Qt-free --------------------------------------------------------------------------------------------
def test_step_towards_prefers_straight_ahead() -> None:
    pts = np.array([[0, 0], [10, 0], [3, 3], [0, 10], [-5, 0.5]], float)
    px = (1.0, 1.0)
    assert step_towards(pts, 0, "right", pixel_size=px) == 1  # (3, 3) is nearer but 45 degrees off
    assert step_towards(pts, 0, "up", pixel_size=px) == 3
    assert step_towards(pts, 0, "left", pixel_size=px) == 4
    assert step_towards(pts, 1, "right", pixel_size=px) is None
    hidden = np.array([True, False, True, True, True])
    assert step_towards(pts, 0, "right", pixel_size=px, visible=hidden) == 2
    # screen pixels, not data units: a map squeezed 10x along y steps the way it looks
    assert step_towards(np.array([[0, 0], [5, 0], [0, 1]], float), 0, "up", pixel_size=(1.0, 0.1)) == 2
    assert step_towards(pts, None, "right", pixel_size=px, centre=(9, 1)) == 1


def test_search_mask_matches_every_word_anywhere(tmp_path) -> None:
    from models.datasets import open_dataset

    ds = open_dataset(make_dataset_folder(tmp_path / "s", per_class=2))
    names = [c.name for c in ds.clips]
    m = search_mask(ds, np.arange(len(names)), "LOW 01")
    assert [n for n, hit in zip(names, m) if hit] == ["low/low_01.wav"]
    assert not search_mask(ds, np.arange(len(names)), "  ").any()


# --- the window ------------------------------------------------------------------------------------------
class _Drag:
    """Just what ViewBox.mouseDragEvent reads of pyqtgraph's MouseDragEvent: one step of a drag."""

    def __init__(self, button, last: QPointF, pos: QPointF, *, finish: bool = False) -> None:  # noqa: ANN001
        self._button, self._last, self._pos, self._finish = button, last, pos, finish

    def accept(self) -> None:
        pass

    def button(self):  # noqa: ANN201
        return self._button

    def pos(self) -> pg.Point:
        return pg.Point(self._pos)

    def lastPos(self) -> pg.Point:  # noqa: N802 - pyqtgraph's name
        return pg.Point(self._last)

    def isFinish(self) -> bool:  # noqa: N802
        return self._finish

    def isStart(self) -> bool:  # noqa: N802
        return False

    def buttonDownPos(self, button=None) -> pg.Point:  # noqa: ANN001, N802
        return pg.Point(self._last)


def _pan(mv, button, dx: float, dy: float) -> None:  # noqa: ANN001
    """A drag of (dx, dy) view-box pixels with ``button``, in one step."""
    c = mv.vb.boundingRect().center()
    mv.vb.mouseDragEvent(_Drag(button, c, c + QPointF(dx, dy), finish=True))


def test_fit_wheel_box_zoom_and_pan(qtbot, window) -> None:
    w, _ = window
    mv, vp = w.map_view, w.map_view.plot.viewport()
    mv.fit_view()
    fitted_centre, fitted_span = _centre(w), _span(w)
    pts = w.controller.points
    assert np.all(pts.min(0) >= fitted_centre - fitted_span / 2) and np.all(pts.max(0) <= fitted_centre + fitted_span / 2)
    # a left drag with the real mouse draws a zoom box: the view shrinks to it
    mid = QPoint(vp.width() // 2, vp.height() // 2)
    _drag(qtbot, vp, Qt.MouseButton.LeftButton, mid - QPoint(60, 40), mid + QPoint(60, 40))
    assert np.all(_span(w) < 0.6 * fitted_span)
    # F (or Home) fits again
    w.own_data.act_fit.trigger()
    assert np.allclose(_centre(w), fitted_centre) and np.allclose(_span(w), fitted_span)
    # a middle drag pans: the view moves against the drag, its size stays
    _pan(mv, Qt.MouseButton.MiddleButton, 80, 0)
    assert _centre(w)[0] < fitted_centre[0] - 0.05 * fitted_span[0] and np.allclose(_span(w), fitted_span)
    w.own_data.act_fit.trigger()
    # Space held + left drag pans too (the window's Space shortcut still plays: the key is only watched)
    QApplication.sendEvent(vp, QKeyEvent(QKeyEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    assert mv.vb.space_held
    _pan(mv, Qt.MouseButton.LeftButton, 0, 60)
    QApplication.sendEvent(vp, QKeyEvent(QKeyEvent.Type.KeyRelease, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    assert not mv.vb.space_held and mv.vb.state["mouseMode"] == mv.vb.RectMode
    assert _centre(w)[1] > fitted_centre[1] + 0.05 * fitted_span[1] and np.allclose(_span(w), fitted_span)
    # without Space the same left drag is a zoom box again, not a pan
    w.own_data.act_fit.trigger()
    _pan(mv, Qt.MouseButton.LeftButton, 0, 60)
    assert np.allclose(_centre(w)[0], fitted_centre[0], rtol=0.3) and not np.allclose(_span(w), fitted_span)
    # the wheel zooms around the pointer
    w.own_data.act_fit.trigger()
    mv.vb.scaleBy(s=(0.5, 0.5))  # what a wheel step does (pyqtgraph's wheelEvent calls scaleBy)
    assert np.allclose(_span(w), 0.5 * fitted_span, rtol=1e-6)


def test_search_lights_up_matches_and_jumps_to_them(qtbot, window) -> None:
    w, _ = window
    bar, mv, c = w.search_bar, w.map_view, w.controller
    bar.search.setText("high")
    assert bar.found.text() == "10 found"
    lit = mv.matches.getData()
    labels = c.point_labels()
    assert len(lit[0]) == 10
    assert np.allclose(np.sort(np.c_[lit[0], lit[1]], axis=0), np.sort(c.points[labels == "high"], axis=0))
    qtbot.keyClick(bar.search, Qt.Key.Key_Return)  # Enter: the view shows the matches
    (x0, x1), (y0, y1) = mv.vb.viewRange()
    hi = c.points[labels == "high"]
    assert np.all((hi[:, 0] >= x0) & (hi[:, 0] <= x1) & (hi[:, 1] >= y0) & (hi[:, 1] <= y1))
    bar.search.setText("")
    assert len(mv.matches.getData()[0]) == 0 and bar.found.text() == ""


def test_arrow_keys_step_to_the_nearest_sound_that_way_and_play_it(qtbot, window) -> None:
    w, sink = window
    c, mv = w.controller, w.map_view
    start = int(np.argmin(c.points[:, 0]))  # the leftmost sound
    c.select_point(start)
    mv.plot.setFocus()
    qtbot.keyClick(mv.plot, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    target = c.selection.index
    expected = step_towards(c.points, start, "right", pixel_size=mv.vb.viewPixelSize(), visible=c.visible_mask())
    assert target == expected and c.points[target, 0] > c.points[start, 0]
    assert c.decoded.decoded.clip_index == int(c.point_clip[target])
    qtbot.keyClick(mv.plot, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: len(sink.played) == 2, timeout=TIMEOUT)
    assert c.points[c.selection.index, 0] < c.points[target, 0]


def test_filter_shows_one_value_independent_of_the_colour(qtbot, window, tmp_path) -> None:
    w, _ = window
    c, bar = w.controller, w.search_bar
    assert c.colour_field == "label"
    bar.choose("label", "mid")
    assert c.map_filter.describe() == "label = mid"
    assert c.visible_mask().sum() == 10 and len(w.map_view.scatter.getData()[0]) == 10
    assert c.colour_field == "label" and set(c.classes()) == {"low", "mid", "high", "noise"}
    # hit-testing and arrows only see the shown sounds
    hidden = int(np.flatnonzero(~c.visible_mask())[0])
    x, y = c.points[hidden]
    assert c.hit_test(x, y, pixel_size=w.map_view.vb.viewPixelSize()) in (None, *np.flatnonzero(c.visible_mask()))
    assert set(c.class_centres_2d()) == {"mid"}
    bar.clear_btn.click()
    assert c.visible_mask().all() and not c.map_filter.active


def test_play_on_hover(qtbot, window) -> None:
    w, sink = window
    c, mv = w.controller, w.map_view
    w.search_bar.hover_play.setChecked(True)
    mv.point_hovered.emit(5)  # what moving the pointer onto point 5 emits (the view's hover test)
    qtbot.waitUntil(lambda: len(sink.played) == 1, timeout=TIMEOUT)
    y, sr = sink.played[0]
    ref = c.dataset.load(int(c.point_clip[5]))
    assert sr == c.dataset.sample_rate and np.allclose(y, ref, atol=1e-4)
    assert c.selection is None  # hovering plays, it does not select
    w.search_bar.hover_play.setChecked(False)
    mv.point_hovered.emit(6)
    assert not w.runner.is_running("hover") and len(sink.played) == 1


def test_hovering_a_point_emits_it(qtbot, window) -> None:
    w, _ = window
    mv, c = w.map_view, w.controller
    got = []
    mv.point_hovered.connect(got.append)
    scene = mv.vb.mapViewToScene(QPointF(*c.points[7]))
    mv._on_scene_moved((scene,))
    assert got == [7]
