"""Morph paths, rendering, export and render specs, without Qt."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import soundfile as sf
from explorer_tiny import N_SAMPLES, SR, FrameRep, TinyAE, TinyAEConfig, make_dataset_folder

from models.inference import engine
from models.morphing import morph, render, sources
from models.errors import CheckpointError, ConfigError
from models.morphing.export_audio import (
    ExportOptions,
    export_names,
    export_stem,
    finish_signals,
    free_stem,
    morph_spec,
    model_record,
    render_from_spec,
    slug,
    write_export,
)
from models.morphing.morph import MorphParams, MorphPath, Waypoint
from models.mapping.projection import PCAProjector


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from models.datasets import open_dataset

    return open_dataset(make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=6))


@pytest.fixture(scope="module")
def tiny(dataset):
    model, rep = TinyAE(TinyAEConfig()), FrameRep()
    enc = engine.encode_dataset(model, rep, dataset)
    emb = PCAProjector().fit(enc.clip_codes)
    return model, rep, enc, emb


def two_point_path(enc, emb, i=0, j=-1, **params):
    wps = [Waypoint.make("point", enc.clip_codes[k], emb.points[k], label=f"c{k}", clip=k % len(enc.clip_codes))
           for k in (i, j)]
    return MorphPath(waypoints=wps, params=MorphParams(**params))


# --- interpolation --------------------------------------------------------------------------------
def test_linear_steps_are_even_and_end_on_the_waypoints():
    codes = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 1.0]])
    steps = morph.interpolate_path(codes, 5, method="linear")
    assert np.array_equal(steps[0], codes[0]) and np.array_equal(steps[-1], codes[-1])
    # total length 4, five steps: one unit apart along the path, the corner at s = 3
    assert np.allclose(steps, [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1]])
    xy = morph.path_positions(codes, codes * 10, 5)
    assert np.allclose(xy, steps * 10)


def test_slerp_keeps_the_radius_and_its_ends():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    mid = morph.slerp(a, b, 0.5)
    assert np.allclose(mid, [np.sqrt(0.5), np.sqrt(0.5)])  # on the circle, not the chord
    assert np.allclose(morph.slerp(a + 5, b + 5, 0.5, centre=np.array([5.0, 5.0])), mid + 5)
    steps = morph.interpolate_path(np.stack([a, b]), 7, method="spherical")
    assert np.allclose(np.linalg.norm(steps, axis=1), 1.0)
    assert np.array_equal(steps[0], a) and np.array_equal(steps[-1], b)
    # parallel directions fall back to the chord
    assert np.allclose(morph.slerp(a, 2 * a, 0.5), 1.5 * a)


def test_params_are_checked_and_round_trip():
    with pytest.raises(ConfigError):
        MorphParams(n_steps=1)
    with pytest.raises(ConfigError):
        MorphParams(interpolation="cubic")
    with pytest.raises(ConfigError):
        MorphParams(crossfade=1.0)
    p = MorphParams(n_steps=5, interpolation="spherical", step_duration=0.5, crossfade=0.25)
    assert MorphParams.from_dict(p.to_dict()) == p
    path = MorphPath(waypoints=[Waypoint.make("centre", [1, 2], [0, 0], label="flute"),
                                Waypoint.make("position", [3, 4], [1, 1], label="brass")], params=p)
    back = MorphPath.from_dict(json.loads(json.dumps(path.to_dict())))
    assert back.waypoints == path.waypoints and back.params == p and back.title() == "flute-to-brass"


def test_simplify_polyline_keeps_corners():
    t = np.linspace(0, 1, 50)
    line = np.concatenate([np.stack([t, 0 * t], 1), np.stack([1 + 0 * t, t], 1)])
    out = morph.simplify_polyline(line, 0.01)
    assert len(out) == 3 and np.allclose(out[[0, -1]], [[0, 0], [1, 1]])
    wiggle = np.stack([np.linspace(0, 1, 400), 0.1 * np.sin(np.linspace(0, 60, 400))], 1)
    assert len(morph.simplify_polyline(wiggle, 1e-6, max_points=8)) <= 8


def test_crossfade_is_equal_power_and_has_the_expected_length():
    L, c = 100, 40
    steps = [np.ones(L, np.float32), np.ones(L, np.float32), np.ones(L, np.float32)]
    out = morph.crossfade_concat(steps, c)
    assert len(out) == L + 2 * (L - c)
    # the fades are quarter periods of sin (in) and cos (out)
    t = (np.arange(c) + 0.5) / c
    assert np.allclose(out[L - c: L], np.sin(np.pi / 2 * t) + np.cos(np.pi / 2 * t), atol=1e-6)
    assert out[0] == 1.0 and out[-1] == 1.0
    assert len(morph.crossfade_concat(steps, 0)) == 3 * L
    # equal power: through the overlap of two uncorrelated sounds the loudness holds, where a
    # linear crossfade would dip to half the power in the middle
    L, c = 4000, 1600
    rng = np.random.default_rng(0)
    noise = [rng.standard_normal(L).astype(np.float32) for _ in range(2)]
    out = morph.crossfade_concat(noise, c)
    hop = L - c
    np.testing.assert_array_equal(out[:hop], noise[0][:hop])  # each sound alone is left as it is
    np.testing.assert_array_equal(out[L:], noise[1][c:])
    quarters = np.mean(out[hop:L].reshape(4, -1) ** 2, axis=1)
    assert np.allclose(quarters, 1.0, atol=0.25), quarters
    linear = np.linspace(0, 1, c)
    dip = np.mean(((1 - linear) * noise[0][hop:] + linear * noise[1][:c])[c * 3 // 8: c * 5 // 8] ** 2)
    assert dip < 0.7  # the check above tells the two apart


# --- rendering ------------------------------------------------------------------------------------
def render_tiny(model, rep, enc, dataset, path, **kw):
    book = sources.TrajectoryBook(enc, rep, dataset, input_shape=model.input_shape)
    trajectories = [sources.waypoint_trajectory(book, w) for w in path.waypoints]
    return render.render_path(model, rep, path, latent_shape=enc.latent_shape, layout=enc.layout,
                              trajectories=trajectories, **kw)


def test_render_path_ends_are_the_decodings_of_its_end_points(tiny, dataset):
    model, rep, enc, emb = tiny
    path = two_point_path(enc, emb, 0, 20, n_steps=6, crossfade=0.5)
    r = render_tiny(model, rep, enc, dataset, path, embedding=emb)
    assert len(r.steps) == 6 and all(len(s) == N_SAMPLES for s in r.steps)
    for k, clip in ((0, 0), (-1, 20)):
        ref = engine.render_clip(model, rep, dataset, enc, clip, phase=engine.ESTIMATED_PHASE).y
        assert np.array_equal(r.steps[k], ref)
    assert np.sqrt(np.mean(r.steps[3] ** 2)) > 0.01  # the middle is not silence
    hop = N_SAMPLES - N_SAMPLES // 2
    assert r.hop_samples == hop and len(r.morph) == N_SAMPLES + 5 * hop
    # placed back: the ends land near where they were picked (the tiny AE is nearly lossless on sines)
    assert r.placed.shape == (6, 2)
    scale = np.ptp(emb.points, axis=0).max()
    assert np.linalg.norm(r.placed[0] - emb.points[0]) < 0.1 * scale


def test_step_duration_stretches_the_steps(tiny, dataset):
    model, rep, enc, emb = tiny
    path = two_point_path(enc, emb, 0, 20, n_steps=3, step_duration=0.5, crossfade=0.0)
    r = render_tiny(model, rep, enc, dataset, path)
    assert r.step_samples == SR // 2 and len(r.morph) == 3 * (SR // 2) and r.placed is None
    assert all(len(s) == SR // 2 for s in r.steps)
    assert len(r.trajectories[0].envelope) == rep.feature_shape(SR // 2)[0]


def test_render_stops_when_asked(tiny, dataset):
    model, rep, enc, emb = tiny
    from explorer_tiny import FakeState

    state = FakeState(stop_after=0)
    state.should_stop = lambda: True
    assert render_tiny(model, rep, enc, dataset, two_point_path(enc, emb), state=state) is None


# --- export ----------------------------------------------------------------------------------------
def test_names_say_what_they_are(tmp_path):
    o = ExportOptions(what="steps")
    stem = export_stem(o, title="Flute-to-Brass", model="colonel hybrid (deep_ae)", n_steps=16)
    assert stem == "morph_flute-to-brass_16steps_colonel-hybrid-deep-ae"
    names = export_names(o, stem, 16)
    assert names[0].endswith("_step01.wav") and names[-1].endswith("_step16.wav")
    assert slug("Brass (decoded)") == "brass-decoded"
    (tmp_path / f"{stem}.json").write_text("{}")
    assert free_stem(tmp_path, stem, lambda s: export_names(o, s, 16)) == stem + "-2"


def test_finish_normalises_jointly_and_resamples():
    a, b = np.full(800, 0.5, np.float32), np.full(800, 0.25, np.float32)
    out, sr = finish_signals([a, b], 8000, ExportOptions(sample_rate=16000, normalize=True))
    assert sr == 16000 and len(out[0]) == 1600
    peak = 10 ** (-1 / 20)
    assert np.isclose(np.abs(out[0]).max(), peak, atol=2e-2) and np.isclose(out[1][800], out[0][800] / 2, rtol=1e-3)


def test_write_export_is_all_or_nothing(tmp_path, monkeypatch):
    files = [("a.wav", np.zeros(100, np.float32)), ("b.wav", np.zeros(100, np.float32))]
    real_replace = os.replace
    calls = []

    def full_disk(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space"):
        write_export(out, files, sr=8000, subtype="pcm16", spec={"x": 1}, spec_name="a.json")
    assert list(out.iterdir()) == []
    monkeypatch.setattr(os, "replace", real_replace)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):  # a "folder" under a regular file cannot be made
        write_export(tmp_path / "file" / "sub", files, sr=8000, subtype="pcm16")
    written = write_export(out, files, sr=8000, subtype="pcm24", spec={"x": 1}, spec_name="a.json")
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.wav", "b.wav"] and len(written) == 3
    assert sf.info(out / "a.wav").subtype == "PCM_24"


# --- a real checkpoint: spec -> identical audio -------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory, dataset):
    from explorer.core.controller import load_model
    from models.checkpoints.checkpoint import save_checkpoint
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset("colonel-hybrid")
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    torch_model = build_model(p.model, {**p.model_config, **p.tiny_model})
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "colonel.safetensors", torch_model,
                           preset="colonel-hybrid", representation=rep.to_dict(), dataset_fingerprint=dataset.fingerprint)
    lm = load_model(path)
    enc = engine.encode_dataset(lm.model, lm.representation, dataset)
    emb = PCAProjector().fit(enc.clip_codes)
    return lm, enc, emb


def export_path(lm, enc, emb, dataset, out_dir, options, *, n_steps=4):
    path = two_point_path(enc, emb, 1, 22, n_steps=n_steps, interpolation="spherical", step_duration=0.1)
    centre = np.nanmean(enc.clip_codes, axis=0)
    r = render_tiny(lm.model, lm.representation, enc, dataset, path, centre=centre)
    signals, sr = finish_signals([r.morph] if options.what == "morph" else r.steps, r.sr, options)
    stem = export_stem(options, title=path.title(), model="colonel", n_steps=n_steps)
    names = export_names(options, stem, n_steps)
    spec = morph_spec(model=model_record(lm.checkpoint, label=lm.label), representation=lm.representation,
                      dataset={"path": str(dataset.root), "fingerprint": dataset.fingerprint},
                      latent_shape=enc.latent_shape, layout=enc.layout, path=path, trajectories=r.waypoints, centre=centre,
                      options=options, files=names)
    write_export(out_dir, list(zip(names, signals)), sr=sr, subtype=options.subtype, spec=spec, spec_name=stem + ".json")
    return stem, names, signals, sr


@pytest.mark.parametrize("what", ["morph", "steps"])
def test_spec_renders_identical_audio(real, dataset, tmp_path, what):
    lm, enc, emb = real
    options = ExportOptions(what=what, subtype="float32", sample_rate=16000, normalize=True)
    stem, names, signals, sr = export_path(lm, enc, emb, dataset, tmp_path, options)
    spec = json.loads((tmp_path / f"{stem}.json").read_text())
    assert spec["model"]["weights_sha256"] and spec["dataset"]["fingerprint"] == dataset.fingerprint
    assert spec["path"]["params"]["n_steps"] == 4 and len(spec["path"]["waypoints"][0]["code"]) == enc.latent_shape[0]
    again = render_from_spec(spec)
    assert again.names == names and again.sr == sr == 16000
    for n, a, b in zip(names, signals, again.signals):
        assert np.array_equal(a, b)
        on_disk, file_sr = sf.read(tmp_path / n, dtype="float32")
        assert file_sr == 16000 and np.array_equal(on_disk, a)
    if what == "steps":
        assert len(names) == 4 and all(len(s) == 1600 for s in signals)  # 0.1 s at 16 kHz
    else:
        assert len(signals[0]) == round((800 + 3 * 400) * 2)  # 0.1 s steps, half overlapping, 8 -> 16 kHz


def test_spec_refuses_other_weights(real, dataset, tmp_path):
    lm, enc, emb = real
    stem, *_ = export_path(lm, enc, emb, dataset, tmp_path, ExportOptions())
    spec = json.loads((tmp_path / f"{stem}.json").read_text())
    spec["model"]["weights_sha256"] = "0" * 64
    with pytest.raises(CheckpointError, match="not the model"):
        render_from_spec(spec)
    with pytest.raises(ConfigError):
        render_from_spec({"kind": "something else"})


def test_cli_renders_the_same_audio(real, dataset, tmp_path):
    from trainer_helpers import run_cli

    lm, enc, emb = real
    options = ExportOptions(what="steps", subtype="pcm16")
    stem, names, signals, sr = export_path(lm, enc, emb, dataset, tmp_path / "export", options, n_steps=3)
    res = run_cli("render", str(tmp_path / "export" / f"{stem}.json"), "--out", str(tmp_path / "again"))
    assert res.returncode == 0, res.stderr
    for n in names:
        a, sr_a = sf.read(tmp_path / "export" / n, dtype="int16")
        b, sr_b = sf.read(tmp_path / "again" / n, dtype="int16")
        assert sr_a == sr_b == sr and len(a) == 800 and np.array_equal(a, b)
    # rendering beside the spec never overwrites the export
    res = run_cli("render", str(tmp_path / "export" / f"{stem}.json"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "export" / names[0].replace(stem, stem + "-2")).exists()


def test_old_sessions_migrate_to_paths():
    from explorer.core.session import SCHEMA_VERSION, migrate

    s = migrate({"schema_version": 1, "dataset": "x"})
    assert SCHEMA_VERSION == 3 and s["schema_version"] == 3 and s["paths"] == [] and s["dataset"] == "x"


def test_a_waveform_model_morphs_by_overlapping_decoded_windows(dataset):
    """A whole-clip waveform model (Lionello): one code per clip, the continuous morph overlap-adds grains."""
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset("lionello-ccvae-digits-small")
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    enc = engine.encode_dataset(model, rep, dataset)
    assert enc.layout == "clips"
    path = MorphPath(waypoints=[Waypoint.make("point", enc.clip_codes[i], (i, 0), clip=i) for i in (0, 7)],
                     params=MorphParams(n_steps=4))
    r = render_tiny(model, rep, enc, dataset, path)
    assert r.made == "model waveform" and all(len(s) == rep.config.n_samples for s in r.steps)
    assert len(r.morph) == r.step_samples + 3 * r.hop_samples and np.isfinite(r.morph).all()
    assert np.abs(r.morph).max() > 0  # an untrained decoder still makes a sound, not silence
    assert np.array_equal(r.steps[-1], engine.render_clip(model, rep, dataset, enc, 7, phase=engine.ESTIMATED_PHASE).y)


def test_waypoints_keep_the_sounds_they_stand_for_and_old_ones_load():
    w = Waypoint.make("position", np.zeros(3), (1.0, 2.0), members=[(4, -1), (9, -1)], weights=[0.75, 0.25])
    c = Waypoint.make("centre", np.ones(3), (0.0, 0.0), label="flute medoid", clip=9, members=[(4, -1), (9, -1)],
                      statistic="medoid")
    p = MorphPath(waypoints=[w, c], params=MorphParams(mode="freeze"))
    back = MorphPath.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back.waypoints == p.waypoints and back.params.mode == "freeze"
    # a path saved before trajectories: no members, no statistic, no mode
    old = {"waypoints": [{"kind": "centre", "code": [0.0, 0.0, 0.0], "xy": [0, 0], "label": "flute"}],
           "params": {"n_steps": 4, "interpolation": "linear", "step_duration": None, "crossfade": 0.5}}
    p_old = MorphPath.from_dict(old)
    assert p_old.params.mode == "trajectory" and p_old.waypoints[0].members == ()
    assert p_old.waypoints[0].statistic == "barycentre"
    with pytest.raises(ConfigError):
        MorphParams(mode="held")
    with pytest.raises(ConfigError):
        Waypoint.make("position", np.zeros(3), (0, 0), members=[(1, -1)], weights=[0.5, 0.5])
