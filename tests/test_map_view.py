"""The map follows a partial t-SNE layout: spots move, keep their class colours and stay hidden."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_explorer_window import dataset_dir, window  # noqa: F401  (fixtures)


def _drawn(view) -> tuple[np.ndarray, list[str]]:  # noqa: ANN001 - MapView
    """Where the scatter draws its spots, and each spot's fill colour."""
    x, y = view.scatter.getData()
    return np.c_[x, y], [p.brush().color().name() for p in view.scatter.points()]


@pytest.mark.gui
def test_a_partial_layout_moves_the_spots_and_keeps_their_colours(window):  # noqa: F811
    w, _ = window
    c, view = w.controller, w.map_view
    _, colours_before = _drawn(view)
    hidden = c.point_labels()[0]
    c.toggle_class(hidden)  # one class hidden before the layout moves
    keep = c.visible_mask()
    rng = np.random.default_rng(0)
    c.set_partial_points(c.points + rng.normal(scale=5.0, size=c.points.shape))
    pos, colours = _drawn(view)
    np.testing.assert_allclose(pos, c.points[keep])  # moved by the controller's signal alone
    assert colours == [col for col, k in zip(colours_before, keep) if k]  # each spot keeps its class colour
    assert len(set(colours)) == len(set(c.point_labels()[keep]))
    # the view's range follows the moved points
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert x0 <= pos[:, 0].min() and pos[:, 0].max() <= x1
    assert y0 <= pos[:, 1].min() and pos[:, 1].max() <= y1
    # the hit test sees the new positions: a click on a moved point finds it
    k = int(np.flatnonzero(keep)[3])
    assert c.hit_test(*c.points[k], radius_px=6, pixel_size=view.vb.viewPixelSize()) == k


def _colour_at(view, shot, xy) -> np.ndarray:  # noqa: ANN001 - MapView, QImage
    q = view.data_to_viewport(*xy)
    col = shot.pixelColor(q.x(), q.y())
    return np.array([col.red(), col.green(), col.blue()], float)


def _uncovered(view, px: np.ndarray, margin: float) -> np.ndarray:  # noqa: ANN001 - MapView
    """Which viewport pixels ``px`` [shape=(n, 2)] no centre ring or centre label draws over."""
    ok = np.ones(len(px), bool)
    for xy in view._centre_pos.values():
        q = view.data_to_viewport(*xy)
        ok &= np.hypot(px[:, 0] - q.x(), px[:, 1] - q.y()) > margin
    for t in view._centre_labels.values():
        if t.isVisible():
            r = view.plot.mapFromScene(t.sceneBoundingRect()).boundingRect()
            ok &= ~((px[:, 0] >= r.left() - margin) & (px[:, 0] <= r.right() + margin)
                    & (px[:, 1] >= r.top() - margin) & (px[:, 1] <= r.bottom() + margin))
    return ok


@pytest.mark.gui
def test_a_new_layout_with_the_same_classes_moves_the_drawn_spots_on_screen(window):  # noqa: F811
    w, _ = window
    c, view = w.controller, w.map_view
    from explorer.map.map_view import POINT_SIZE, class_colours

    rgb = {k: np.array([q.red(), q.green(), q.blue()], float) for k, q in class_colours(c.classes()).items()}
    labels = np.asarray(c.point_labels()).astype(str)
    brushes = list(view.scatter.data["brush"])
    range_before = view.vb.viewRange()
    view.plot.grab()  # the spots are drawn (and their cached pixmap made)
    # a t-SNE frame that swaps the sounds' places: same classes, visibility, extent and so view range
    perm = np.random.default_rng(1).permutation(len(c.points))
    old_points = c.points.copy()
    c.set_partial_points(old_points[perm])
    np.testing.assert_allclose(view.vb.viewRange(), range_before)
    x, y = view.scatter.getData()
    np.testing.assert_allclose(np.c_[x, y], c.points)
    assert all(a is b for a, b in zip(view.scatter.data["brush"], brushes))  # each spot keeps its class's brush
    shot = view.plot.grab().toImage()
    px = np.array([[p.x(), p.y()] for p in (view.data_to_viewport(*xy) for xy in c.points)], float)
    gap = np.hypot(*(px[:, None] - px[None]).transpose(2, 0, 1))
    np.fill_diagonal(gap, np.inf)
    # spots no other spot, centre ring or label touches, now of another class than the sound drawn there before
    lone = np.flatnonzero((gap.min(1) > 2 * POINT_SIZE) & _uncovered(view, px, 2 * POINT_SIZE)
                          & (labels != labels[perm]))
    assert len(lone) >= 3
    for i in lone:  # the screen shows the new layout, each spot in its own class colour
        assert np.abs(_colour_at(view, shot, c.points[i]) - rgb[labels[i]]).max() <= 40


@pytest.mark.gui
def test_the_map_items_bounding_rects_follow_their_data_and_the_view(window):  # noqa: F811
    import pyqtgraph as pg

    w, _ = window
    c, view = w.controller, w.map_view

    def check() -> None:
        for item in (view.scatter, view.centres, view.centres_halo, view.matches, view.marker, view.hover):
            got, want = item.boundingRect(), pg.ScatterPlotItem.boundingRect(item)  # cached vs worked out
            assert got == want, item
            assert item.boundingRect() == want  # asked again: the same

    check()
    c.set_partial_points(c.points * 3.0 + 7.0)  # the spots moved in place
    check()
    (x0, x1), (y0, y1) = view.vb.viewRange()
    view.vb.setRange(xRange=(x0, x0 + (x1 - x0) / 4), yRange=(y0, y0 + (y1 - y0) / 4), padding=0)  # a zoom
    check()
    view.vb.translateBy(x=(x1 - x0) / 10)  # a pan
    check()
    view.resize(view.width() - 50, view.height() - 30)
    check()
    c.toggle_class(c.point_labels()[0])  # fewer spots
    check()
