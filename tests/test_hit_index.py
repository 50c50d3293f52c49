"""explorer.core.hit_index: the map's hit test, by KD-tree, in screen distance, visible points only."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.hit_index import HitIndex


def reference(points: np.ndarray, x: float, y: float, pixel_size: tuple[float, float], radius_px: float,
              visible: np.ndarray) -> int | None:
    """The plain statement: every visible point's screen distance, the smallest if close enough."""
    best, best_d2 = None, np.inf
    for i, (px, py) in enumerate(points):
        d2 = ((px - x) / pixel_size[0]) ** 2 + ((py - y) / pixel_size[1]) ** 2
        if visible[i] and d2 < best_d2:
            best, best_d2 = i, d2
    return best if best_d2 <= radius_px**2 else None


def test_same_answers_as_every_distance_before_and_after_the_tree() -> None:
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 0.5, (300, 2)) for c in ((0, 0), (4, 1), (1, 5))])
    visible = rng.random(len(pts)) > 0.3
    queries = rng.uniform(-2, 6, (200, 2))
    index = HitIndex(pts)
    answers = []
    for k, (x, y) in enumerate(queries):
        pixel = (0.01, 0.03) if k % 2 else (0.05, 0.02)  # the view's x and y scales differ
        got = index.nearest(x, y, pixel_size=pixel, radius_px=8.0, visible=visible)
        assert got == reference(pts, x, y, pixel, 8.0, visible)
        answers.append(got)
    assert index.indexed  # built on the second query
    assert sum(a is not None for a in answers) > 50 and None in answers  # both outcomes were tested


def test_radius_is_in_screen_pixels_along_each_axis() -> None:
    index = HitIndex(np.array([[0.5, 0.0], [0.0, 0.5]]))
    # one pixel is 0.1 data units wide and 1.0 high: (0.5, 0) is 5 px right, (0, 0.5) half a pixel up
    assert index.nearest(0.0, 0.0, pixel_size=(0.1, 1.0), radius_px=6.0) == 1
    only_right = np.array([True, False])
    assert index.nearest(0.0, 0.0, pixel_size=(0.1, 1.0), radius_px=6.0, visible=only_right) == 0
    assert index.nearest(0.0, 0.0, pixel_size=(0.1, 1.0), radius_px=4.9, visible=only_right) is None
    # zoomed out ten times: both are within half a pixel, the nearer on screen wins
    assert index.nearest(0.0, 0.0, pixel_size=(1.0, 10.0), radius_px=1.0) == 1


def test_hidden_points_are_passed_over_and_ties_go_to_the_lowest_index() -> None:
    pts = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    index = HitIndex(pts)
    for _ in range(2):  # the direct search, then the tree: the same answers
        assert index.nearest(0.0, 0.0, pixel_size=(0.1, 0.1), radius_px=20.0) == 0
        assert index.nearest(0.0, 0.0, pixel_size=(0.1, 0.1), radius_px=20.0,
                             visible=np.array([False, True, True, True])) == 1
        assert index.nearest(0.0, 0.0, pixel_size=(0.1, 0.1), radius_px=20.0,
                             visible=np.array([False, False, False, True])) is None  # 30 px away
        assert index.nearest(0.0, 0.0, pixel_size=(0.1, 0.1), radius_px=20.0, visible=np.zeros(4, bool)) is None
    assert index.indexed


def test_new_points_drop_the_tree_and_bad_input() -> None:
    index = HitIndex(np.array([[0.0, 0.0], [1.0, 1.0]]))
    index.nearest(0, 0, pixel_size=(1, 1), radius_px=1)
    index.nearest(0, 0, pixel_size=(1, 1), radius_px=1)
    assert index.indexed
    index.set_points(np.array([[5.0, 5.0]]))
    assert not index.indexed and len(index) == 1
    assert index.nearest(5.2, 5.0, pixel_size=(0.1, 0.1), radius_px=3) == 0
    assert index.nearest(0.0, 0.0, pixel_size=(0.1, 0.1), radius_px=3) is None
    with pytest.raises(ValueError, match="visible"):
        index.nearest(0, 0, pixel_size=(1, 1), radius_px=1, visible=np.ones(3, bool))
    assert HitIndex().nearest(0, 0, pixel_size=(1, 1), radius_px=5) is None
    assert not index.points.flags.writeable
