"""models.realtime.position: the code under a cursor is smooth, and is a click's blend."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import DatasetError
from models.morphing import sources
from models.realtime.position import PositionField


def _map(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-5, 5, size=(n, 2)), rng.normal(size=(n, d))


def test_code_is_continuous_along_a_fine_line():
    pts, codes = _map()
    f = PositionField(pts, codes)
    xs = np.linspace(-6, 6, 24001)  # steps of 5e-4 map units, crossing many neighbour changes
    z = np.stack([f.code_at((x, 0.3 * x)) for x in xs])
    steps = np.linalg.norm(np.diff(z, axis=0), axis=1)
    # a jump would be of the size of a code difference (~4); a smooth field moves ~ step size
    assert steps.max() < 0.05
    # and it really moves: the line passes many sounds
    assert np.linalg.norm(z[0] - z[-1]) > 1.0


def test_a_point_plays_its_own_code_and_matches_a_click():
    pts, codes = _map()
    f = PositionField(pts, codes)
    assert np.allclose(f.code_at(pts[7]), codes[7])
    rng = np.random.default_rng(1)
    for q in rng.uniform(-5, 5, size=(20, 2)):
        rows, w = f.members_at(q)
        r2, w2 = sources.position_members(pts, q)
        assert np.array_equal(rows, r2) and np.allclose(w, w2) and np.isclose(w.sum(), 1.0)


def test_hidden_points_take_no_part_and_all_hidden_means_all():
    pts, codes = _map()
    visible = np.zeros(len(pts), bool)
    visible[:10] = True
    f = PositionField(pts, codes, visible=visible)
    for q in np.random.default_rng(2).uniform(-5, 5, size=(10, 2)):
        assert set(f.members_at(q)[0]) <= set(range(10))
    everyone = PositionField(pts, codes, visible=np.zeros(len(pts), bool))
    assert len(everyone.rows) == len(pts)


def test_two_sounds_blend_at_the_midpoint_without_a_jump():
    f = PositionField(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0], [1.0]]))
    z = np.array([f.code_at((x, 0.0))[0] for x in np.linspace(0, 1, 1001)])
    assert np.isclose(z[0], 0.0) and np.isclose(z[-1], 1.0) and np.isclose(z[500], 0.5)
    assert np.abs(np.diff(z)).max() < 0.01 and (np.diff(z) >= -1e-12).all()


def test_normalised_is_the_bounding_box_and_unit_inverts_it():
    pts, codes = _map()
    f = PositionField(pts, codes)
    assert f.normalised(0, 0) == pytest.approx(tuple(pts.min(axis=0)))
    assert f.normalised(1, 1) == pytest.approx(tuple(pts.max(axis=0)))
    x, y = f.normalised(0.25, 0.75)
    assert f.unit(x, y) == pytest.approx((0.25, 0.75))
    assert f.normalised(2.0, -1.0) == pytest.approx((pts[:, 0].max(), pts[:, 1].min()))  # clipped


def test_pitch_is_the_heaviest_labelled_member_and_levels_blend():
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    f = PositionField(pts, np.eye(3), k=2, pitches=np.array([48, np.nan, 60]), levels=np.array([0.1, 0.3, 0.5]))
    assert f.pitch_at((0.9, 0.0)) == 48  # the nearest is unlabelled: the labelled one counts
    assert f.pitch_at((5.0, 5.0)) == 60
    assert 0.1 < f.level_at((0.5, 0.0)) < 0.3
    assert PositionField(pts, np.eye(3)).pitch_at((0, 0)) is None


def test_empty_map_is_refused():
    with pytest.raises(DatasetError):
        PositionField(np.full((2, 2), np.nan), np.zeros((2, 3)))
