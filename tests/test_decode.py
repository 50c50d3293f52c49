"""models.inference.decode: the one path from codes to sound, with the phase method explicit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explorer_tiny import FRAME, TinyAE, TinyAEConfig

from models.audio import save_wav
from models.datasets import open_dataset
from models.errors import ConfigError
from models.inference import decode, layout
from models.inference.encode import analyse_clip, encode_dataset
from models.morphing import morph
from models.nets.registry import build_model
from models.representations import StftFrames, Waveform

SR = 8000
N = 4000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("notes")
    t = np.arange(N) / SR
    for k, f in enumerate((220.0, 330.0, 440.0)):
        (root / "tone").mkdir(exist_ok=True)
        y = 0.4 * np.sin(2 * np.pi * f * t) * np.linspace(1.0, 0.2, N)
        save_wav(root / "tone" / f"tone_{k}.wav", y.astype(np.float32), sr=SR)
    return open_dataset(root)


@pytest.fixture(scope="module")
def frames_model(dataset):
    rep = StftFrames(sample_rate=SR, n_fft=128, hop_length=32)
    torch.manual_seed(0)
    model = build_model("deep_ae", {"input_shape": [65], "hidden": [32], "latent_dim": 8}).eval()
    return model, rep, encode_dataset(model, rep, dataset)


def _finished(y: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(np.asarray(y, dtype=np.float32).reshape(-1))
    peak = float(np.max(np.abs(y)))
    return y / peak if peak > 1.0 else y


def test_a_clip_with_its_original_phase_is_what_render_clip_made_before(frames_model, dataset):
    model, rep, enc = frames_model
    i = 1
    sound = decode.render_clip(model, rep, dataset, enc, i, phase="original")
    # the previous render_clip: decoded frames with the clip's whole side information, phase "default"
    _, analysis = analyse_clip(dataset, i, rep)
    items = decode.decode_codes(model, enc.trajectory(i), enc.latent_shape)
    feats = layout.from_items(items, "frames", analysis.features.shape)
    with decode.fixed_threads():
        before = rep.synthesize(feats, side=analysis.side, phase="default", n_samples=analysis.n_samples)
    assert np.array_equal(sound.y, _finished(before)) and len(sound.y) == N
    assert np.sqrt(np.mean(sound.y ** 2)) > 1e-3  # not silence
    assert sound.phase == "original" and sound.made == "model magnitude, original phase"
    assert sound.clip_index == i and sound.spectrogram is not None


def test_the_phase_method_is_respected(frames_model, dataset):
    model, rep, enc = frames_model
    original = decode.render_clip(model, rep, dataset, enc, 0, phase="original")
    estimated = decode.render_clip(model, rep, dataset, enc, 0, phase="pghi+gla")
    assert estimated.phase == "pghi+gla"
    assert estimated.made == "model magnitude, estimated phase (PGHI + 8 Griffin-Lim)"
    assert not np.allclose(original.y, estimated.y, atol=1e-3)
    # the estimated decoding uses the clip's envelope and no phase: the representation's own pghi+gla
    _, analysis = analyse_clip(dataset, 0, rep)
    feats = decode.decode_features(model, rep, enc.trajectory(0), latent_shape=enc.latent_shape,
                                   feature_shape=analysis.features.shape)
    with decode.fixed_threads():
        y = rep.synthesize(feats, side={"frame_max": analysis.side["frame_max"]}, phase="pghi+gla", n_samples=N)
    assert np.array_equal(estimated.y, _finished(y))
    gla = decode.render_clip(model, rep, dataset, enc, 0, phase="gla")
    assert gla.phase == "gla" and not np.allclose(gla.y, estimated.y, atol=1e-3)


def test_a_code_of_no_clip_has_no_original_phase(frames_model, dataset):
    model, rep, enc = frames_model
    code = enc.clip_codes[2]
    with pytest.raises(ConfigError, match='phase "original" needs the phase of the clip'):
        decode.render_code(model, rep, dataset, enc, code, template_clip=2, phase="original")
    held = decode.render_code(model, rep, dataset, enc, code, template_clip=2)
    assert held.phase == decode.ESTIMATED_PHASE == "pghi+gla" and held.estimated and len(held.y) == N
    # a morph step of the same code against the same clip is the same decoding
    tpl = morph.template_from_clip(rep, dataset, 2, layout=enc.layout)
    step = morph.decode_step(model, rep, code, latent_shape=enc.latent_shape, template=tpl)
    assert np.array_equal(step, held.y)
    with pytest.raises(ConfigError, match="phase must be one of"):
        decode.render_code(model, rep, dataset, enc, code, template_clip=2, phase="default")


def test_side_information_a_representation_cannot_take_is_refused(frames_model, dataset):
    rep = Waveform(sample_rate=SR, n_samples=FRAME)
    model = TinyAE(TinyAEConfig())
    ctx = decode.DecodeContext(n_samples=FRAME, feature_shape=(FRAME,), side={"frame_max": np.ones(3, np.float32)})
    with pytest.raises(ConfigError, match="waveform representation takes no side information frame_max"):
        decode.decode_to_sound(model, rep, np.zeros((1, 12)), latent_shape=(12,), context=ctx, phase="pghi+gla")
    plain = decode.decode_to_sound(model, rep, np.ones((1, 12)), latent_shape=(12,),
                                   context=decode.DecodeContext(n_samples=FRAME, feature_shape=(FRAME,)),
                                   phase="original")
    assert plain.phase == "none" and plain.made == "model waveform" and np.abs(plain.y).max() > 0
    # an envelope of another length is an error, not a silent retry without it (a morph step once did that)
    fmodel, frep, enc = frames_model
    tpl = morph.template_from_clip(frep, dataset, 0, layout=enc.layout)
    bad = morph.Template(n_samples=tpl.n_samples, feature_shape=tpl.feature_shape, frame_max=tpl.frame_max[:3])
    with pytest.raises(ConfigError, match="frame maxima"):
        morph.decode_step(fmodel, frep, enc.clip_codes[0], latent_shape=enc.latent_shape, template=bad)


def test_a_trajectory_decodes_frame_by_frame(frames_model, dataset):
    model, rep, enc = frames_model
    traj = enc.trajectory(0)
    assert traj.shape == (rep.feature_shape(N)[0], 8)
    assert np.array_equal(traj, enc.frame_codes[enc.frame_clip == 0])
    ctx = decode.clip_context(rep, dataset, 0).envelope(rep)
    assert set(ctx.side) == {"frame_max"}
    moving = decode.decode_to_sound(model, rep, traj, latent_shape=enc.latent_shape, context=ctx, phase="pghi")
    held = decode.decode_to_sound(model, rep, traj[:1], latent_shape=enc.latent_shape, context=ctx, phase="pghi")
    assert moving.phase == "pghi" and len(moving.y) == len(held.y) == N
    assert not np.allclose(moving.y, held.y, atol=1e-4)
    # features decoded (or assembled) elsewhere take the same second half of the path
    feats = decode.decode_features(model, rep, traj, latent_shape=enc.latent_shape, feature_shape=ctx.feature_shape)
    again = decode.sound_from_features(rep, feats, context=ctx, phase="pghi")
    assert np.array_equal(again.y, moving.y) and again.made == moving.made
