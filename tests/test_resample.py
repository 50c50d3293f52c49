"""models.audio.resample: the one resampler of loading, playback and exports."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.sound import audio_out
from models import audio
from models.audio import load_audio, resample, save_wav
from models.errors import ConfigError
from models.morphing import export_audio


def test_one_resampler_everywhere():
    assert audio_out.resample is resample and export_audio.resample is resample


@pytest.mark.parametrize("sr, target", [(16000, 44100), (48000, 16000), (22050, 8000)])
def test_resample_keeps_length_pitch_and_level(sr, target):
    t = np.arange(sr // 2) / sr
    y = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    r = resample(y, sr, target)
    assert r.dtype == np.float32 and len(r) == int(np.ceil(len(y) * target / sr))
    spec = np.abs(np.fft.rfft(r * np.hanning(len(r))))
    assert abs(np.argmax(spec) * target / len(r) - 440.0) < 3.0
    mid = r[len(r) // 4: 3 * len(r) // 4]
    assert np.isclose(np.sqrt(np.mean(mid ** 2)), 0.5 / np.sqrt(2), rtol=1e-2)
    assert np.array_equal(resample(y, sr, target), r)  # deterministic: a spec renders the same samples
    assert np.array_equal(resample(y, sr, sr), y)


def test_loading_resamples_through_it(tmp_path):
    rng = np.random.default_rng(0)
    y = (0.2 * rng.standard_normal(9600)).astype(np.float32)
    save_wav(tmp_path / "x.wav", y, sr=48000, subtype="float32")
    assert np.array_equal(load_audio(tmp_path / "x.wav", sr=16000), resample(y, 48000, 16000))


def test_bad_rates_are_refused():
    with pytest.raises(ConfigError, match="sample rates must be > 0"):
        audio.resample(np.zeros(10, np.float32), 0, 16000)
