"""Trajectory math of the morphs (models.morphing.trajectory): pure numpy, no model."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.morphing import trajectory as tj
from models.morphing.morph import step_locations
from models.morphing.trajectory import Trajectory

HOP = 10


def frames(n_samples: int) -> tuple[int, int]:
    """A frame model's grid: one item and one envelope frame per 10 samples."""
    n = 1 + n_samples // HOP
    return n, n


def whole(n_samples: int) -> tuple[int, None]:
    return 1, None


def ramp(n_samples: int, d: int = 3, *, start: float = 0.0, stop: float = 1.0, level: float = 1.0) -> Trajectory:
    n, _ = frames(n_samples)
    codes = np.linspace(start, stop, n)[:, None] * np.arange(1, d + 1)[None]
    return Trajectory(codes, n_samples, {"frame_max": np.full(n, level)})


# --- resampling ----------------------------------------------------------------------------------------
def test_resample_keeps_ends_and_is_exact_at_its_own_length():
    x = np.random.default_rng(0).standard_normal((7, 2))
    assert np.array_equal(tj.resample(x, 7), x)
    y = tj.resample(x, 19)
    assert np.array_equal(y[0], x[0]) and np.array_equal(y[-1], x[-1])
    # a linear ramp stays a linear ramp at any length (time-normalised, not cropped or padded)
    r = tj.resample(np.linspace(0, 1, 5)[:, None], 9)
    assert np.allclose(r[:, 0], np.linspace(0, 1, 9))
    assert np.array_equal(tj.resample(x[:1], 4), np.repeat(x[:1], 4, axis=0))


def test_a_trajectory_at_its_own_length_is_itself():
    t = ramp(200)
    assert t.resampled(200, frames) is t
    longer = t.resampled(400, frames)
    assert longer.n_items == 41 and len(longer.envelope) == 41
    assert np.allclose(longer.codes[[0, -1]], t.codes[[0, -1]])


def test_trajectories_are_checked_and_round_trip():
    with pytest.raises(ConfigError):
        Trajectory(np.zeros((0, 3)), 100)
    with pytest.raises(ConfigError):
        Trajectory(np.full((2, 3), np.nan), 100)
    with pytest.raises(ConfigError):
        Trajectory.from_dict({"codes": [[0.0]]})
    t = Trajectory(ramp(120).codes, 120, {"frame_max": ramp(120).envelope, "ref_db": [-20.0], "phase": [1.0]})
    assert set(t.side) == {"frame_max", "ref_db"}  # a clip's phase never travels with its codes
    back = Trajectory.from_dict(t.to_dict())
    assert np.array_equal(back.side["ref_db"], [-20.0])
    assert np.array_equal(back.codes, t.codes) and np.array_equal(back.envelope, t.envelope)
    assert back.n_samples == t.n_samples
    with pytest.raises(ValueError):
        t.codes[0, 0] = 5.0  # read-only: a waypoint's trajectory cannot change under its renders


# --- centres and positions -------------------------------------------------------------------------------
def test_barycentre_is_the_time_normalised_mean():
    a, b = ramp(200, start=0, stop=1), ramp(400, start=1, stop=3, level=3.0)
    c = tj.barycentre([a, b], frames)
    assert c.n_samples == 300 and c.n_items == 31
    ra, rb = a.resampled(300, frames), b.resampled(300, frames)
    assert np.allclose(c.codes, 0.5 * (ra.codes + rb.codes))
    assert np.allclose(c.envelope, 2.0)
    # the mean follows time: the centre of two rising notes rises too, it is not one held code
    assert c.codes[-1, 0] > c.codes[0, 0] + 1.0


def test_one_weight_returns_that_trajectory_exactly():
    a, b = ramp(200), ramp(300, start=2, stop=0)
    assert tj.mix([a, b], [0.0, 1.0], frames) is b


def test_medoid_is_the_member_nearest_to_all_others():
    ts = [ramp(200, start=s, stop=s + 1) for s in (0.0, 1.0, 1.2, 5.0)]
    assert tj.medoid(ts, frames) == 2
    d = tj.distances(ts, frames)
    assert np.allclose(d, d.T) and np.allclose(np.diag(d), 0.0, atol=1e-6)


def test_neighbour_weights_are_one_hot_on_a_clip_and_continuous_across_a_swap():
    assert np.array_equal(tj.neighbour_weights(np.array([0.0, 1.0, 2.0])), [1.0, 0.0])
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.5]])
    k = 2

    def full(xy):
        d = np.linalg.norm(pts - xy, axis=1)
        order = np.argsort(d)[: k + 1]
        w = np.zeros(len(pts))
        w[order[:k]] = tj.neighbour_weights(d[order])
        return w

    # walk across the map in small steps: the weight of every clip changes by little each step,
    # although the set of nearest clips changes on the way
    xs = np.linspace(-0.5, 3.5, 801)
    ws = np.array([full(np.array([x, 0.3])) for x in xs])
    assert np.allclose(ws.sum(axis=1), 1.0)
    assert np.abs(np.diff(ws, axis=0)).max() < 0.05
    assert len({tuple(np.flatnonzero(w)) for w in ws}) >= 3


# --- steps -------------------------------------------------------------------------------------------------
def test_interpolation_ends_are_the_end_trajectories_and_steps_evolve():
    a, b = ramp(200, start=0, stop=1), ramp(200, start=1, stop=0, level=2.0)
    assert tj.interpolate(a, b, 0.0, frames) is a and tj.interpolate(a, b, 1.0, frames) is b
    mid = tj.interpolate(a, b, 0.25, frames)
    assert np.allclose(mid.codes, 0.75 * a.codes + 0.25 * b.codes)
    assert np.allclose(mid.envelope, 1.25)
    # a step is not one held code: its items differ over time as its ends' do
    assert np.ptp(mid.codes[:, 0]) > 0.4
    assert np.ptp(mid.frozen().codes, axis=0).max() == 0.0


def test_interpolated_length_moves_between_the_ends():
    a, b = ramp(200), ramp(400)
    assert tj.interpolate(a, b, 0.5, frames).n_samples == 300
    assert tj.interpolate(a, b, 0.5, frames, n_samples=1000).n_items == 101


def test_slerp_rows_keep_the_radius_about_the_centre():
    c = np.array([5.0, 5.0])
    a, b = np.array([[6.0, 5.0], [5.0, 7.0]]), np.array([[5.0, 6.0], [3.0, 5.0]])
    m = tj.slerp_rows(a, b, 0.5, centre=c)
    assert np.allclose(np.linalg.norm(m - c, axis=1), [1.0, 2.0])
    assert np.allclose(tj.slerp_rows(a, b, np.array([0.0, 1.0]), centre=c), [a[0], b[1]])
    # parallel directions: the chord
    assert np.allclose(tj.slerp_rows(a[:1], 2 * a[:1] - c, 0.5, centre=c), 1.5 * a[:1] - 0.5 * c)


def test_whole_clip_trajectories_are_plain_codes():
    a = Trajectory(np.array([[0.0, 2.0]]), 64000, {"ref_db": [-10.0]})
    b = Trajectory(np.array([[2.0, 0.0]]), 64000, {"ref_db": [-30.0]})
    mid = tj.interpolate(a, b, 0.5, whole)
    assert mid.n_items == 1 and np.allclose(mid.codes, [[1.0, 1.0]]) and mid.envelope is None
    assert np.allclose(mid.side["ref_db"], [-20.0])  # a level between the ends' levels


def test_locate_matches_the_step_spacing():
    codes = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
    idx, u = step_locations(codes, 5)
    j, v = tj.locate(tj.path_lengths(codes), np.linspace(0, 1, 5))
    assert np.array_equal(idx, j) and np.allclose(u, v)
    assert (j[-1], v[-1]) == (1, 1.0) and (j[0], v[0]) == (0, 0.0)


# --- the continuous morph ------------------------------------------------------------------------------------
def test_continuous_morph_moves_smoothly_from_one_end_to_the_other():
    a, b = ramp(200, start=0, stop=1, level=1.0), ramp(200, start=4, stop=5, level=2.0)
    n_steps, L, hop = 6, 200, 100
    n = L + (n_steps - 1) * hop

    def schedule(m):
        return tj.morph_schedule(m, n_samples=n, step_samples=L, hop_samples=hop, n_steps=n_steps)

    cum = tj.path_lengths(np.stack([a.mean, b.mean]))
    m = tj.continuous([a, b], cum, frames, n_samples=n, schedule=schedule)
    assert m.n_samples == n and m.n_items == frames(n)[0]
    s = schedule(m.n_items)
    assert s[0] == 0.0 and s[-1] == 1.0 and (np.diff(s) >= 0).all()
    # starts as A's first item and ends as B's last, with no jump between neighbouring items
    assert np.allclose(m.codes[0], a.codes[0]) and np.allclose(m.codes[-1], b.codes[-1])
    step = np.abs(np.diff(m.codes, axis=0)).max()
    assert step < 3 * np.abs(b.mean - a.mean).max() / (m.n_items * (1 - L / n))
    assert m.envelope.min() >= 1.0 - 1e-12 and m.envelope.max() <= 2.0 + 1e-12
    assert (np.diff(m.envelope) >= -1e-12).all()


def test_the_schedule_passes_each_step_in_the_middle_of_its_slot():
    n_steps, L, hop = 5, 400, 200
    n = L + (n_steps - 1) * hop
    s = tj.morph_schedule(n, n_samples=n, step_samples=L, hop_samples=hop, n_steps=n_steps)
    for k in range(n_steps):
        assert abs(s[k * hop + L // 2] - k / (n_steps - 1)) < 2 / n
