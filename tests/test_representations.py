"""Representations: features, presets, configs, and the way back to sound."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import ConfigError
from models.representations import (
    REPRESENTATION_PRESETS,
    LogMel,
    StftFrames,
    Waveform,
    get_representation_preset,
    representation_from_dict,
)
from models.representations.stft import stft


def tone(sr: int, seconds: float, f0: float = 220.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * np.exp(-1.5 * t)
    return (amp * y / np.abs(y).max()).astype(np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2)))


# ---------------------------------------------------------------- presets and configs


def test_presets_have_the_papers_parameters() -> None:
    col = get_representation_preset("colonel")
    assert isinstance(col, StftFrames)
    assert (col.sample_rate, col.config.n_fft, col.config.window, col.config.normalize) == (22050, 2048, "hann", "frame")
    assert col.feature_shape(22050)[1] == 1025
    nat = get_representation_preset("natsiou")
    assert isinstance(nat, LogMel)
    c = nat.config
    assert (c.n_mels, c.n_fft, c.win_length, c.window, c.sample_rate) == (128, 1024, 690, "blackman", 16000)
    assert nat.feature_shape(64000) == (128, 256)  # NSynth's 4 s: 251 frames padded to 256
    digits, drums = get_representation_preset("lionello-digits"), get_representation_preset("lionello-drums")
    assert (digits.sample_rate, digits.feature_shape(1)) == (8000, (4096,))
    assert (drums.sample_rate, drums.feature_shape(1)) == (22050, (16384,))
    assert get_representation_preset("roche").kind == "stft_frames"


@pytest.mark.parametrize("name", sorted(REPRESENTATION_PRESETS))
def test_to_dict_from_dict_round_trip(name: str) -> None:
    rep = get_representation_preset(name)
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["kind"] == rep.kind
    again = representation_from_dict(d)
    assert again == rep and again.to_dict() == rep.to_dict()


def test_configs_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="n_melz"):
        representation_from_dict({"kind": "logmel", "n_melz": 64})
    with pytest.raises(ConfigError, match="unknown representation kind"):
        representation_from_dict({"kind": "cqt"})
    with pytest.raises(ConfigError):
        representation_from_dict({"sample_rate": 16000})
    with pytest.raises(ConfigError):
        representation_from_dict({"kind": "stft_frames", "magnitude": "cubic"})
    with pytest.raises(ConfigError):
        representation_from_dict({"kind": "stft_frames", "n_fft": "big"})
    with pytest.raises(ConfigError):
        LogMel(hop_length=800)  # longer than the 690-sample window
    with pytest.raises(ConfigError):
        Waveform(peak=2.0)
    with pytest.raises(ConfigError):
        get_representation_preset("nsynth")
    assert get_representation_preset("natsiou", n_mels=64).feature_shape(64000) == (64, 256)


# ---------------------------------------------------------------- magnitude-STFT frames


def test_stft_frames_colonel_round_trip_with_original_phase() -> None:
    rep = get_representation_preset("colonel")
    y = tone(22050, 1.0)
    a = rep.analyze(y)
    assert a.features.shape == rep.feature_shape(len(y)) == (44, 1025)
    assert a.features.dtype == np.float32
    assert a.features.min() >= 0 and np.allclose(a.features.max(axis=1), 1.0)
    mag = np.abs(stft(y, params=rep.stft_params))
    np.testing.assert_allclose(a.side["frame_max"], mag.max(axis=0), rtol=1e-5)
    out = rep.synthesize(a.features, side=a.side, n_samples=a.n_samples)
    assert out.shape == y.shape
    assert snr_db(y, out) > 30


def test_stft_frames_log_and_clip_options() -> None:
    rep = StftFrames(sample_rate=16000, n_fft=1024, hop_length=256, magnitude="log", normalize="clip", top_db=80.0)
    y = tone(16000, 1.0)
    a = rep.analyze(y)
    assert np.ptp(a.side["frame_max"]) == 0 and a.features.max() == pytest.approx(1.0)
    # later frames of a decaying note are quieter: their peaks sit below 1 on the log scale
    assert a.features[-5].max() < a.features[2].max() < 1.0001
    mag = np.abs(stft(y, params=rep.stft_params)).T
    back = rep.magnitudes(a.features, a.side["frame_max"])
    loud = mag > mag.max() * 1e-3
    np.testing.assert_allclose(back[loud], mag[loud], rtol=1e-3)
    assert snr_db(y, rep.synthesize(a.features, side=a.side, n_samples=len(y))) > 30


def test_stft_frames_without_side_use_default_level_and_estimated_phase() -> None:
    rep = get_representation_preset("colonel")
    t = np.arange(22050) / 22050
    y = (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    a = rep.analyze(y)
    out = rep.synthesize(a.features, n_samples=len(y))  # decoded case: no frame_max, no phase
    mid = out[2048:-2048]
    assert np.abs(mid).max() == pytest.approx(0.25, rel=0.1)  # default_level
    spec = np.abs(np.fft.rfft(mid))
    assert np.argmax(spec) * 22050 / len(mid) == pytest.approx(440, rel=0.01)
    with pytest.raises(ConfigError):
        rep.synthesize(a.features, side={"frame_max": a.side["frame_max"]}, phase="original")


def test_stft_frames_batch() -> None:
    rep = StftFrames(sample_rate=8000, n_fft=256, hop_length=64)
    ys = [tone(8000, 0.5, f0=f) for f in (200.0, 300.0)]
    analyses = rep.analyze_batch(ys)
    feats = np.stack([an.features for an in analyses])
    out = rep.synthesize_batch(feats, sides=[an.side for an in analyses], n_samples=4000)
    assert out.shape == (2, 4000)
    for y, o in zip(ys, out):
        assert snr_db(y, o) > 30


# ---------------------------------------------------------------- log-mel


def test_logmel_natsiou_features_and_inversion() -> None:
    rep = get_representation_preset("natsiou")
    y = tone(16000, 4.0)
    a = rep.analyze(y)
    assert a.features.shape == (128, 256) and a.features.dtype == np.float32
    assert a.features.min() >= 0 and a.features.max() == pytest.approx(1.0)
    assert np.all(a.features[:, 251:] == 0)  # padding frames are silence
    # mel -> linear magnitudes: close to the true STFT where the energy is
    mag = np.abs(stft(y, params=rep.stft_params))
    est = rep.magnitudes(a.features, float(a.side["ref_db"][0]))[:, :251]
    rel = np.linalg.norm(est - mag) / np.linalg.norm(mag)
    print(f"\nlog-mel -> linear magnitude relative error {rel:.3f}")
    assert rel < 0.2
    # with the clip's phase the waveform comes back (mel smoothing is the only loss)
    out = rep.synthesize(a.features, side=a.side, n_samples=a.n_samples)
    assert out.shape == y.shape
    snr = snr_db(y, out)
    print(f"log-mel, original phase: SNR {snr:.1f} dB")
    assert snr > 15
    # decoded case (no side): estimated phase, analysing the result gives the features back
    dec = rep.synthesize(a.features, n_samples=a.n_samples)
    again = rep.analyze(dec).features
    assert np.abs(again - a.features).mean() < 0.05


def test_logmel_frame_rule_and_fixed_reference() -> None:
    free = LogMel(n_frames=None, frame_multiple=64)
    assert free.feature_shape(64000) == (128, 256)
    assert free.feature_shape(16000 * 5) == (128, 320)
    assert free.analyze(tone(16000, 1.0)).features.shape == free.feature_shape(16000)
    crop = LogMel(n_frames=32)
    assert crop.analyze(tone(16000, 1.0)).features.shape == (128, 32)
    fixed = LogMel(ref="fixed", ref_db=40.0, n_frames=None)
    y = tone(16000, 1.0, amp=0.5)
    loud, quiet = fixed.analyze(y), fixed.analyze(0.1 * y)
    assert loud.features.mean() > quiet.features.mean()  # level is in the features
    out_loud = fixed.synthesize(loud.features, phase="pghi+gla", n_samples=len(y))
    out_quiet = fixed.synthesize(quiet.features, phase="pghi+gla", n_samples=len(y))
    assert np.std(out_loud) / np.std(out_quiet) == pytest.approx(10.0, rel=0.15)


# ---------------------------------------------------------------- waveform


def test_waveform_preprocessing() -> None:
    rep = get_representation_preset("lionello-digits")
    sr = 8000
    body = 0.3 * np.sin(2 * np.pi * 300 * np.arange(2000) / sr)
    y = np.concatenate([np.zeros(1000), body]).astype(np.float32)
    f = rep.analyze(y).features
    assert f.shape == (4096,) and f.dtype == np.float32
    assert np.abs(f).max() == pytest.approx(1.0)
    # leading silence dropped in whole 128-sample blocks: 1000 zeros -> 7 blocks (896) go,
    # the 104 zeros of the block where the sound starts stay
    start = 1000 - 7 * 128
    assert np.all(np.abs(f[:start]) < 1e-3)
    expected = body / np.abs(body).max()
    np.testing.assert_allclose(f[start : start + 2000], expected, atol=1e-3)
    assert np.all(f[start + 2000 :] == 0)  # padded with zeros
    # the mean is removed before normalising
    dc = (0.3 * np.sin(2 * np.pi * 300 * np.arange(1000) / sr) + 0.2).astype(np.float32)
    g = rep.analyze(dc).features[:1000]
    assert abs(float(np.mean(g))) < 1e-3 and np.abs(g).max() == pytest.approx(1.0)
    # cut when too long
    long = np.sin(2 * np.pi * 300 * np.arange(10000) / sr).astype(np.float32)
    g = rep.analyze(long).features
    np.testing.assert_allclose(g, long[:4096] / np.abs(long).max(), atol=1e-4)
    # a silent clip stays silent (and finite)
    assert np.all(rep.analyze(np.zeros(3000, dtype=np.float32)).features == 0)
    # the inverse is the identity
    assert np.array_equal(rep.synthesize(f), f)
    assert rep.synthesize(f, n_samples=100).shape == (100,)


def test_waveform_options() -> None:
    rep = Waveform(sample_rate=8000, n_samples=512, trim_leading_silence=False, peak=0.5)
    y = np.concatenate([np.zeros(300), np.ones(100)]).astype(np.float32)
    f = rep.analyze(y).features
    assert np.abs(f).max() == pytest.approx(0.5)
    assert f[0] != 0  # not trimmed: the (mean-removed) silence is still there
    batch = rep.synthesize_batch(np.stack([f, f]))
    assert batch.shape == (2, 512)
