"""Morphs on the bundled demo models, as the app renders them: end steps, evolving steps, one continuous sound."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_tiny import FakeState

from explorer.core import paths
from explorer.core.controller import Controller, load_model
from explorer.core.path_book import PathBook
from models.datasets import open_dataset
from models.inference import engine
from models.morphing.morph import MorphParams

pytestmark = pytest.mark.skipif(not paths.demo_available(), reason="the bundled demo is not built")
FLUTE, BRASS = "flute_acoustic_073-062-127", "brass_acoustic_056-062-127"


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(paths.DEMO_DATASET)


def app_with(dataset, stem: str) -> Controller:
    """The controller as the window leaves it after opening the demo with one checkpoint: encoded, mapped."""
    c = Controller()
    c.set_dataset(dataset)
    c.add_model(load_model(next(p for p in paths.demo_checkpoints() if p.stem == stem)))
    c.set_encoding(c.current_key, c.encode_task()(FakeState()))
    c.set_embedding(c.project_task("pca")(FakeState()))
    return c


@pytest.fixture(scope="module")
def colonel(dataset):
    return app_with(dataset, "colonel-notes")


@pytest.fixture(scope="module")
def natsiou(dataset):
    return app_with(dataset, "natsiou-notes")


def point_of(c: Controller, name: str) -> int:
    clips = c.map_codes()[1]
    return int(np.flatnonzero(clips == [cl.name for cl in c.dataset.clips].index(name))[0])


def rendered(c: Controller, waypoints, **params):
    book = PathBook(c)
    p = book.new_path(waypoints, params=MorphParams(**params))
    path, _, r = book.render_task(p)(FakeState())
    return book, path, r


@pytest.mark.parametrize("app", ["colonel", "natsiou"])
def test_an_end_step_is_the_click_on_that_point_sample_for_sample(app, request):
    c = request.getfixturevalue(app)
    book = PathBook(c)
    a, b = point_of(c, FLUTE), point_of(c, BRASS)
    xy = 0.5 * (c.points[a] + c.points[b]) + np.array([0.0, 0.3]) * np.ptp(c.points, axis=0)
    _, _, r = rendered(c, [book.waypoint_at_point(a), book.waypoint_at_point(b)], n_steps=3)
    _, _, r2 = rendered(c, [book.waypoint_at_point(a), book.waypoint_at_position(*xy)], n_steps=2)
    for select, step in ((lambda: c.select_point(a), r.steps[0]), (lambda: c.select_point(b), r.steps[-1]),
                         (lambda: c.select_position(*xy), r2.steps[-1])):
        select()
        click = c.decode_task()(FakeState()).decoded
        assert np.array_equal(click.y, step)
        assert "estimated phase" in click.made  # one phase for every decoded sound
    # the original phase is a reference the user switches on; the steps never use it
    c.set_clip_phase("original")
    c.select_point(b)
    ref = c.decode_task()(FakeState()).decoded
    c.set_clip_phase(engine.ESTIMATED_PHASE)
    assert ref.made == "model magnitude, original phase" and not np.array_equal(ref.y, r.steps[-1])


def frame_correlation(c: Controller, y: np.ndarray, i: int, j: int) -> float:
    f = c.current.representation.analyze(y).features
    return float(np.corrcoef(f[i], f[j])[0, 1])


def test_a_frame_model_step_is_a_note_not_a_held_frame(colonel):
    c = colonel
    book = PathBook(c)
    wps = [book.waypoint_at_point(point_of(c, FLUTE)), book.waypoint_at_point(point_of(c, BRASS))]
    _, _, r = rendered(c, wps, n_steps=5)
    _, _, held = rendered(c, wps, n_steps=5, mode="freeze")
    # what the issue measured: frames 5 and 150 of a held step are the same spectrum (0.999)
    assert frame_correlation(c, held.steps[2], 5, 150) > 0.99
    assert frame_correlation(c, r.steps[2], 5, 150) < 0.95
    step = r.trajectories[2]
    assert np.ptp(step.codes, axis=0).max() > 10 * max(np.ptp(held.trajectories[2].codes, axis=0).max(), 1e-9)


def join_click_ratio(y: np.ndarray, joins: list[int], sr: int, *, order: int = 24) -> float:
    """How much a click stands out at the joins: the linear-prediction residual (what a declicker
    looks for: a discontinuity is what an all-pole model of the sound cannot predict) within 5 ms
    of a join, over its 99th percentile in the 50 ms around it. About 1 where nothing stands out."""
    import librosa
    from scipy.signal import lfilter

    w, ctx = int(0.005 * sr), int(0.05 * sr)
    worst = 0.0
    for t in joins:
        seg = y[t - ctx: t + ctx].astype(np.float64)
        e = np.abs(lfilter(librosa.lpc(seg, order=order), [1.0], seg))[order:]
        mid = ctx - order
        around = np.concatenate([e[: mid - w], e[mid + w:]])
        worst = max(worst, float(e[mid - w: mid + w].max() / np.percentile(around, 99)))
    return worst


@pytest.mark.parametrize("app", ["colonel", "natsiou"])
@pytest.mark.parametrize("crossfade", [0.0, 0.5])
def test_the_continuous_morph_has_no_joins_that_click(app, crossfade, request):
    c = request.getfixturevalue(app)
    book = PathBook(c)
    wps = [book.waypoint_at_point(point_of(c, FLUTE)), book.waypoint_at_point(point_of(c, BRASS))]
    _, _, r = rendered(c, wps, n_steps=4, crossfade=crossfade)
    joins = [r.step_start(k) for k in range(1, 4)]
    assert len(r.morph) == r.step_samples + 3 * r.hop_samples
    assert join_click_ratio(r.morph, joins, r.sr) < 2.0
    # the measure sees a click: a jump of 30 % of the peak at one join; and the old joins
    jump = r.morph.copy()
    jump[joins[1]:] += 0.3 * np.abs(r.morph).max()
    assert join_click_ratio(jump, joins, r.sr) > 3.0
    # one sound: its loudness never dips between the ends the way re-attacked steps did
    n = int(0.05 * r.sr)
    env = 20 * np.log10(np.sqrt(np.mean(r.morph[: len(r.morph) // n * n].reshape(-1, n) ** 2, axis=1)) + 1e-9)
    middle = env[len(env) // 8: len(env) * 5 // 8]
    assert middle.max() - middle.min() < 8.0


def test_a_centre_is_taken_over_the_visible_sounds_and_offers_its_medoid(colonel):
    c = colonel
    book = PathBook(c)
    c.map_filter.set("pitch", [62])  # one pitch: a centre over all four would be a chord of them
    try:
        members = book.centre_members("flute")
        bary = book.waypoint_at_centre("flute")
        med = book.waypoint_at_centre("flute", statistic="medoid")
    finally:
        c.map_filter.clear()
    assert len(members) == 4 and {c.dataset.clips[m].labels["pitch"] for m, _ in members} == {62}
    assert med.statistic == "medoid" and (med.clip, med.frame) in set(members) and med.members == bary.members
    _, _, r = rendered(c, [bary, med], n_steps=2)
    assert np.array_equal(r.waypoints[1].codes, c.encoding.trajectory(med.clip))  # the medoid is a real note
    # the barycentre is a time-aligned mean of the members' notes: it evolves over time too
    assert np.ptp(r.waypoints[0].codes, axis=0).max() > 0.1


def test_freeze_steps_of_an_older_spec_still_render(colonel, tmp_path):
    """A render spec written before trajectories (a template, no trajectories) renders in freeze mode."""
    from models.morphing import morph
    from models.morphing.export_audio import render_from_spec

    c = colonel
    book = PathBook(c)
    a, b = point_of(c, FLUTE), point_of(c, BRASS)
    p = book.new_path([book.waypoint_at_point(a), book.waypoint_at_point(b)], params=MorphParams(n_steps=3))
    tpl = morph.template_from_clip(c.current.representation, c.dataset, a, layout=c.encoding.layout)
    spec = {"schema_version": 1, "kind": "latent-explorer render", "model": {"path": c.current.key},
            "representation": c.current.representation.to_dict(), "dataset": {}, "latent_shape": [32],
            "layout": "frames", "output": {"what": "steps", "subtype": "float32", "sample_rate": None,
                                           "normalize": False, "files": ["s1.wav", "s2.wav", "s3.wav"]},
            "path": {**p.to_dict(), "params": {"n_steps": 3, "interpolation": "linear", "step_duration": None,
                                               "crossfade": 0.5}},
            "template": tpl.to_dict(), "centre": None}
    out = render_from_spec(spec)
    codes = morph.interpolate_path(p.codes, 3)
    edge = int(0.005 * c.current.representation.sample_rate)  # exports fade their first and last 5 ms
    for y, code in zip(out.signals, codes):
        held = morph.decode_step(c.current.model, c.current.representation, code, latent_shape=(32,), template=tpl)
        assert len(y) == len(held) and np.allclose(y[edge:-edge], held[edge:-edge], atol=1e-6)
