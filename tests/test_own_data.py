"""A user's own sounds and models, end to end, without a window: any rate, any folder.

The README's training command on a 16 kHz folder, then the app's controller on the same folder;
a 16 kHz model on 8 kHz and 96 kHz folders; what is still refused, and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from trainer_helpers import make_tones, run_cli, train_args

from explorer.core.controller import Controller, LoadedModel, load_model
from explorer.sound.audio_out import RecordingSink
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.errors import CheckpointError
from models.inference.encode import NullState
from models.inference.fit import check_fit


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(y, np.float64) ** 2)))


def _open_and_play(checkpoint: Path, folder: Path, cache: FeatureCache) -> tuple[np.ndarray, int, Controller]:
    """What the app does: open the folder, add the model, encode, map, click point 0, play it."""
    c = Controller(cache=cache)
    c.set_dataset(open_dataset(folder))
    lm = load_model(checkpoint)
    c.add_model(lm)
    enc = c.encode_task()(NullState())
    c.set_encoding(c.current_key, enc)
    c.set_embedding(c.project_task("pca")(NullState()))
    c.select_point(0)
    decoded = c.decode_task()(NullState())
    sink = RecordingSink()
    sink.play(decoded.decoded.y, decoded.decoded.sr)
    (y, sr), = sink.played
    return y, sr, c


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> FeatureCache:
    return FeatureCache(tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_readme_training_command_on_16khz_notes_opens_in_the_app(tmp_path: Path, cache: FeatureCache) -> None:
    notes = make_tones(tmp_path / "notes16k", per_label=4, sr=16000, seconds=0.5)
    run = tmp_path / "runs" / "colonel"
    # README: latent-trainer train --preset colonel-hybrid --data data/notes --run-dir runs/colonel
    done = run_cli("train", "--preset", "colonel-hybrid", "--data", str(notes), "--run-dir", str(run),
                   "--max-steps", "3", "--threads", "1", "--cache-dir", str(cache.root), timeout=300)
    assert done.returncode == 0, done.stderr
    ckpt = run / "best.safetensors"
    assert ckpt.is_file()
    y, sr, c = _open_and_play(ckpt, notes, cache)
    # the preset's 22.05 kHz model reads the 16 kHz notes: resampled, said so, and heard
    assert sr == 22050 == c.current.representation.sample_rate
    assert check_fit(c.current, c.dataset).notes == ("clips resampled from 16000 Hz to the model's 22050 Hz",)
    assert _rms(y) > 1e-3 and np.all(np.isfinite(y))
    assert abs(len(y) / sr - 0.5) < 0.05  # the clip's own length, at the model's rate


@pytest.fixture(scope="module")
def model16k(tmp_path_factory, cache: FeatureCache) -> Path:
    root = tmp_path_factory.mktemp("m16")
    data = make_tones(root / "tones16k", per_label=3, sr=16000, seconds=0.25)
    # the tiny roche-deep-ae (8 kHz) trained at 16 kHz: a 16 kHz model
    done = run_cli(*train_args(data, root / "run", "--max-steps", "2", "--set", "rep.sample_rate=16000"))
    assert done.returncode == 0, done.stderr
    return root / "run" / "last.safetensors"


@pytest.mark.parametrize("rate", [8000, 96000])
def test_a_16khz_model_plays_8khz_and_96khz_folders(tmp_path: Path, model16k: Path, cache: FeatureCache,
                                                    rate: int) -> None:
    folder = make_tones(tmp_path / f"tones{rate}", per_label=3, sr=rate, seconds=0.25)
    assert open_dataset(folder).sample_rate == rate
    y, sr, c = _open_and_play(model16k, folder, cache)
    assert sr == 16000 and _rms(y) > 1e-3
    assert abs(len(y) - 4000) <= 1  # 0.25 s at the model's rate
    assert check_fit(c.current, c.dataset).resampled_from == (rate,)


def test_features_are_cached_per_model_rate(tmp_path: Path, model16k: Path) -> None:
    folder = make_tones(tmp_path / "t8k", per_label=3, sr=8000, seconds=0.25)
    cache = FeatureCache(tmp_path / "c")
    _open_and_play(model16k, folder, cache)
    entries = sorted(p for p in (cache.root / "features").iterdir() if p.is_dir())
    _open_and_play(model16k, folder, cache)  # the second time reads what the first computed
    assert sorted(p for p in (cache.root / "features").iterdir() if p.is_dir()) == entries and len(entries) == 1


class _Model:
    """Just what check_fit reads of a model."""

    def __init__(self, input_shape: tuple[int, ...], consumes: str, sequence: bool = False) -> None:
        self.input_shape, self.consumes, self.sequence = input_shape, consumes, sequence


def _lm(model: _Model, rep_dict: dict) -> LoadedModel:
    from models.representations import representation_from_dict

    return LoadedModel(key="k", label="my model", model=model, representation=representation_from_dict(rep_dict))


def test_what_is_still_refused_says_why(tmp_path: Path) -> None:
    folder = make_tones(tmp_path / "t", per_label=3, sr=8000, seconds=0.5)
    ds = open_dataset(folder)
    logmel = {"kind": "logmel", "sample_rate": 16000, "n_fft": 512, "hop_length": 128, "win_length": 512,
              "window": "hann", "n_mels": 64, "n_frames": 32}
    # a whole-clip model taking 64 mel bands reads any rate; clips longer than its 32 frames are cut
    fit = check_fit(_lm(_Model((64, 32), "logmel"), logmel), ds)
    assert fit.layout == "clips" and fit.cropped == len(ds.clips)
    assert f"{len(ds.clips)} of {len(ds.clips)} clips are longer than the model's input and are cut" in fit.notes
    # ... but not a checkpoint whose model takes 128 bands: no padding fixes that
    with pytest.raises(CheckpointError, match="my model does not fit .* differ on more than the time axis"):
        check_fit(_lm(_Model((128, 32), "logmel"), logmel), ds)
    # a model that consumes another representation than its checkpoint carries
    with pytest.raises(CheckpointError, match="consumes 'waveform' features but carries a 'logmel'"):
        check_fit(_lm(_Model((64, 32), "waveform"), logmel), ds)


def test_clips_too_short_at_the_model_rate_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "short"
    folder.mkdir()
    for k in range(3):  # 70 samples at 96 kHz: 11 samples at 16 kHz
        sf.write(folder / f"c{k}.wav", 0.5 * np.sin(np.arange(70) * (0.2 + 0.1 * k)).astype(np.float32), 96000)
    ds = open_dataset(folder)
    frames = {"kind": "stft_frames", "sample_rate": 16000, "n_fft": 64, "hop_length": 16}
    with pytest.raises(CheckpointError, match="at its 16000 Hz the longest is 12 samples, at least 64"):
        check_fit(_lm(_Model((33,), "stft_frames"), frames), ds)
