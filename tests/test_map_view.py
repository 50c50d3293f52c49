"""The map's fast path for partial t-SNE layouts moves the drawn spots, not only the data."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_explorer_window import dataset_dir, window  # noqa: F401  (fixtures)


@pytest.mark.gui
def test_partial_layout_moves_spots_in_place(window):  # noqa: F811
    w, _ = window
    c, view = w.controller, w.map_view
    records_before = view.scatter.data
    rng = np.random.default_rng(0)
    c.points = c.points + rng.normal(scale=5.0, size=c.points.shape)
    view.update_positions(auto_range=True)
    visible = c.points[c.visible_mask()]
    np.testing.assert_allclose(view.scatter.data["x"], visible[:, 0])
    np.testing.assert_allclose(view.scatter.data["y"], visible[:, 1])
    # the spots were moved, not rebuilt, and the view's range follows the moved points
    assert view.scatter.data is records_before
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert x0 <= visible[:, 0].min() and visible[:, 0].max() <= x1
    assert y0 <= visible[:, 1].min() and visible[:, 1].max() <= y1
    # the hit test sees the new positions: a click on a moved point finds it
    assert c.visible_mask().all()
    k = 3
    assert c.hit_test(*c.points[k], radius_px=6, pixel_size=view.vb.viewPixelSize()) == k
