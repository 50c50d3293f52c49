"""The map's level of detail: a density image of the sounds at far zoom, the spots close in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explorer.map.density import DOT_BINS, REFINE_MS, ZOOM_SLACK, density_rgba

N_CLASSES = 4
PER_CLASS = 600
#: blobs this far apart and this tight never share a bin at the whole-map zoom
CENTRES = np.array([[-30.0, -20.0], [30.0, -20.0], [-30.0, 20.0], [30.0, 20.0]])
SPREAD = 1.5


# --- the image (no Qt) ----------------------------------------------------------------------------------
def test_a_lone_point_is_a_dot_of_its_class_colour_and_mixed_bins_average_by_count() -> None:
    colours = np.array([[255, 0, 0], [0, 0, 200]], np.uint8)
    pts = np.array([[0.5, 0.5], [5.5, 5.5], [5.5, 5.5], [6.5, 5.5]])
    cls = np.array([0, 1, 1, 0])
    img = density_rgba(pts, cls, colours, x_range=(0, 10), y_range=(0, 10), shape=(10, 10), dot=3)
    assert img.shape == (10, 10, 4) and img.dtype == np.uint8
    # row 0 is the bottom (y = 0..1): the lone red point at (0.5, 0.5) covers the 3 x 3 box around bin (0, 0)
    assert (img[:2, :2, :3] == [255, 0, 0]).all() and (img[:2, :2, 3] > 0).all()
    assert (img[2:, :, 3][:, :2] == 0).all() and img[0, 2, 3] == 0
    # bin (5, 6) is reached by the two blue points and the red one: the mean colour weighted by count
    assert np.allclose(img[5, 6, :3], np.rint([255 / 3, 0, 400 / 3]), atol=1)
    # bin (5, 4) by the two blue ones alone
    assert (img[5, 4, :3] == [0, 0, 200]).all()
    # more sounds, more opaque
    assert img[5, 6, 3] > img[5, 4, 3] > img[0, 0, 3] > 0


def test_hidden_points_add_nothing_and_points_far_outside_are_left_out() -> None:
    colours = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    pts = np.array([[2.5, 2.5], [7.5, 7.5], [1e300, -1e300], [np.inf, 3.0]])
    cls = np.array([0, 1, 1, 1])
    img = density_rgba(pts, cls, colours, x_range=(0, 10), y_range=(0, 10), shape=(10, 10),
                       visible=np.array([True, False, True, True]))
    assert (img[..., 3] > 0).sum() == DOT_BINS**2  # the red dot alone
    assert set(map(tuple, img[img[..., 3] > 0][:, :3])) == {(255, 0, 0)}


# --- the map ----------------------------------------------------------------------------------------------
def _controller(n_per_class: int = PER_CLASS):
    """A controller showing tight, far-apart blobs, one class per blob, through its public setters."""
    from explorer.core.controller import Controller
    from models.datasets.base import Clip, Dataset
    from models.inference.encode import Encoding
    from models.mapping.projection import Embedding

    class Layout(Embedding):
        method = "pca"

    rng = np.random.default_rng(0)
    cls = np.repeat(np.arange(N_CLASSES), n_per_class)
    pts = CENTRES[cls] + rng.normal(scale=SPREAD, size=(len(cls), 2))
    clips = [Clip(path=Path(f"/synthetic/{i}.wav"), name=f"{i}.wav", labels={"kind": f"kind {c}"})
             for i, c in enumerate(cls)]
    ds = Dataset(root=Path("/synthetic"), kind="folder", clips=clips, label_fields=("kind",),
                 default_label="kind", group_key=None, sample_rate=16000)
    c = Controller()
    c.set_dataset(ds)
    codes = np.c_[pts, np.zeros(len(pts))]
    c.show_descriptors(Encoding(clip_codes=codes, frame_codes=codes, frame_clip=np.arange(len(pts)),
                                frame_index=np.zeros(len(pts), int), latent_shape=(3,), layout="clips"))
    c.set_embedding(Layout(pts, codes))
    return c


@pytest.fixture
def view(qtbot):
    from explorer.map.map_view import MapView

    c = _controller()
    v = MapView(c)
    v.resize(900, 650)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    v.set_level_of_detail(1000)  # 2400 sounds: the whole map is "many", one blob is not
    v.refresh()
    c.hidden_classes_changed.connect(v.redraw_visibility)
    c.embedding_changed.connect(lambda final: v.update_positions(auto_range=False))
    return v


def _assert_scatter_holds_the_view(v, expected: np.ndarray) -> None:  # noqa: ANN001 - MapView
    """The scatter draws every one of ``expected`` (the shown points) in the view, and nothing else."""
    sx, sy = v.scatter.getData()
    held = {tuple(p) for p in np.c_[sx, sy].round(9)}
    (x0, x1), (y0, y1) = v.vb.viewRange()
    x, y = expected[:, 0], expected[:, 1]
    in_view = expected[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
    assert len(in_view) > 0 and {tuple(p) for p in in_view.round(9)} <= held
    assert held <= {tuple(p) for p in expected.round(9)}


def _palette(v) -> dict[str, tuple[int, int, int]]:  # noqa: ANN001 - MapView
    from explorer.map.map_view import class_colours

    return {k: (q.red(), q.green(), q.blue()) for k, q in class_colours(v.controller.classes()).items()}


def _drawn_classes(v) -> set[str]:  # noqa: ANN001 - MapView
    """The classes whose legend colour the density image shows; it shows no other colour."""
    v.grab()  # paints: the density image is made when it is drawn
    img = v.density.image
    drawn = img[img[..., 3] > 0][:, :3].astype(float)
    names = list(_palette(v))
    pal = np.array([_palette(v)[n] for n in names], float)
    d = np.abs(drawn[:, None, :] - pal[None]).max(-1)
    assert d.min(1).max() <= 3  # premultiplied storage rounds a channel by a unit or two, no more
    return {names[j] for j in np.unique(d.argmin(1))}


@pytest.mark.gui
def test_far_zoom_draws_the_density_image_and_close_in_the_spots_come_back(view, qtbot):
    v, c = view, view.controller
    assert v.density_shown and not v.scatter.isVisible()
    assert _drawn_classes(v) == set(c.classes())  # every class, in its legend colour, nothing else
    # the image is on screen: a blob's middle has its class colour (the density there is saturated)
    shot = v.plot.grab().toImage()
    k = 1
    centre = CENTRES[k] + [2.0 * SPREAD, 0.0]  # beside the hollow centre ring, inside the blob
    q = v.data_to_viewport(*centre)
    got = shot.pixelColor(q.x(), q.y())
    assert np.allclose([got.red(), got.green(), got.blue()], _palette(v)[f"kind {k}"], atol=40)
    # close in on one blob: the spots, exactly the shown points in view
    x, y = CENTRES[0]
    v.vb.setRange(xRange=(x - 4, x + 4), yRange=(y - 3, y + 3), padding=0)
    assert not v.density_shown and v.scatter.isVisible()
    _assert_scatter_holds_the_view(v, c.points[c.visible_mask()])
    assert len(v.scatter.getData()[0]) == PER_CLASS  # many sounds: only those around the view (this blob)
    # a pan out of the region it holds refills it
    v.vb.setRange(xRange=(x - 4, x + 4), yRange=(y + 36, y + 42), padding=0)  # onto the blob above
    _assert_scatter_holds_the_view(v, c.points[c.visible_mask()])
    # and back out
    v.fit_view()
    assert v.density_shown and not v.scatter.isVisible()


@pytest.mark.gui
def test_a_hidden_class_vanishes_from_the_density_image(view):
    v, c = view, view.controller
    pal = _palette(v)
    c.toggle_class("kind 2")
    assert v.density_shown  # 1800 shown sounds are still many
    assert _drawn_classes(v) == {"kind 0", "kind 1", "kind 3"}
    c.toggle_class("kind 2")
    assert _drawn_classes(v) == set(pal)


@pytest.mark.gui
def test_few_shown_sounds_are_spots_even_at_far_zoom(view):
    v, c = view, view.controller
    for k in (1, 2):
        c.toggle_class(f"kind {k}")
    assert v.density_shown  # 1200 shown, over the limit of 1000
    c.toggle_class("kind 3")
    assert not v.density_shown and v.scatter.isVisible()  # 600 shown
    assert len(v.scatter.getData()[0]) == PER_CLASS
    v.set_level_of_detail(None)  # spots always
    c.toggle_class("kind 3")
    assert not v.density_shown and len(v.scatter.getData()[0]) == 2 * PER_CLASS
    x, y = CENTRES[0]
    v.vb.setRange(xRange=(x - 4, x + 4), yRange=(y - 3, y + 3), padding=0)
    v.set_level_of_detail(1000)  # many sounds: the scatter keeps those around the view...
    assert len(v.scatter.getData()[0]) == PER_CLASS
    v.set_level_of_detail(None)  # ...and all of them again when the limit goes
    assert len(v.scatter.getData()[0]) == 2 * PER_CLASS


@pytest.mark.gui
def test_a_layout_moved_at_far_zoom_reaches_the_spots_when_zooming_in(view):
    v, c = view, view.controller
    moved = c.points + [0.5, -0.25]
    c.set_partial_points(moved)  # a t-SNE frame while the density image is shown
    assert v.density_shown
    x, y = moved[0]
    v.vb.setRange(xRange=(x - 3, x + 3), yRange=(y - 2, y + 2), padding=0)
    assert v.scatter.isVisible()
    _assert_scatter_holds_the_view(v, moved)


@pytest.mark.gui
def test_a_pan_reuses_the_image_and_a_stopped_zoom_remakes_it_at_the_exact_scale(view, qtbot):
    v = view
    v.grab()
    first = v.density.extent
    (x0, x1), (y0, y1) = v.vb.viewRange()
    dx = 0.1 * (x1 - x0)  # within the image's margin
    v.vb.setRange(xRange=(x0 + dx, x1 + dx), yRange=(y0, y1), padding=0)
    v.grab()
    assert v.density.extent == first  # drawn shifted, not remade
    qtbot.wait(3 * REFINE_MS)
    v.grab()
    assert v.density.extent == first  # nor once the pan has stopped: its scale is exact
    s = (1 + ZOOM_SLACK) / 2  # zoom in by less than the slack
    cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2
    v.vb.setRange(xRange=(cx - (x1 - x0) / 2 / s, cx + (x1 - x0) / 2 / s),
                  yRange=(cy - (y1 - y0) / 2 / s, cy + (y1 - y0) / 2 / s), padding=0)
    v.grab()
    assert v.density.extent == first  # drawn scaled while the view moves...

    def remade() -> bool:
        v.grab()
        return v.density.extent != first

    qtbot.waitUntil(remade, timeout=3000)  # ...and made again at the new scale once it stops
