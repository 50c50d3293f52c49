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
