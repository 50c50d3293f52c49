"""Audio I/O and the bad-input folder: the good files load, the bad ones are listed with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.audio import audio_info, load_audio, save_wav
from models.datasets import open_dataset
from models.errors import AudioLoadError, ConfigError
from models.datasets.feature_cache import FeatureCache


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def _tone(sr: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_bad_folder(root: Path) -> Path:
    """The issue's folder: empty, truncated, text-as-wav, NaN, one sample, 96k/24/stereo, 10 min."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.wav").write_bytes(b"")
    save_wav(root / "full.wav", _tone(16000, 1.0), sr=16000)
    data = (root / "full.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[: len(data) // 2])
    (root / "full.wav").unlink()
    (root / "text.wav").write_text("this is not audio\n" * 20)
    nan = _tone(16000, 0.5)
    nan[:] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(root / "one_sample.wav", np.zeros(1, np.float32), 16000, subtype="PCM_16")
    stereo = np.stack([_tone(96000, 0.5, 440.0), _tone(96000, 0.5, 440.0)], axis=1)
    sf.write(root / "hires_stereo.wav", stereo, 96000, subtype="PCM_24")
    ten_min = np.zeros(8000 * 600, np.float32)
    ten_min[:8000] = _tone(8000, 1.0)
    sf.write(root / "ten_minutes.wav", ten_min, 8000, subtype="PCM_16")
    return root


BAD = {"empty.wav", "truncated.wav", "text.wav", "nan.wav", "one_sample.wav"}
GOOD = {"hires_stereo.wav", "ten_minutes.wav"}


def test_bad_folder_opens_with_reasons(tmp_path: Path) -> None:
    folder = make_bad_folder(tmp_path / "bad")
    ds = open_dataset(folder)
    assert ds.kind == "folder"
    # Headers are checked at open; NaN samples only show when decoding.
    reasons = {r.path.name: r.reason for r in ds.rejected}
    assert set(reasons) == BAD - {"nan.wav"}
    assert reasons["empty.wav"] == "empty file"
    assert reasons["truncated.wav"].startswith("truncated")
    assert "not a readable audio file" in reasons["text.wav"]
    assert reasons["one_sample.wav"].startswith("too short (1 sample")
    assert {c.name for c in ds.clips} == GOOD | {"nan.wav"}

    failed = ds.validate(sr=16000)
    assert [r.path.name for r in failed] == ["nan.wav"]
    assert "NaN" in failed[0].reason
    assert {r.path.name for r in ds.rejected} == BAD
    assert {c.name for c in ds.clips} == GOOD


def test_bad_folder_good_files_load(tmp_path: Path) -> None:
    ds = open_dataset(make_bad_folder(tmp_path / "bad"))
    by_name = {c.name: i for i, c in enumerate(ds.clips)}
    hires = ds.load(by_name["hires_stereo.wav"], sr=16000)
    assert hires.ndim == 1 and hires.dtype == np.float32
    assert abs(len(hires) - 8000) <= 1  # 0.5 s resampled from 96 kHz to 16 kHz, mono
    spectrum = np.abs(np.fft.rfft(hires))
    assert abs(np.argmax(spectrum) * 16000 / len(hires) - 440.0) < 3.0
    assert 0.45 < np.max(np.abs(hires)) < 0.55  # channels averaged, not summed
    ten = ds.load(by_name["ten_minutes.wav"], sr=8000)
    assert len(ten) == 30 * 8000  # capped at DEFAULT_MAX_DURATION = 30 s
    assert np.max(np.abs(ten[:8000])) > 0.4
    whole = open_dataset(tmp_path / "bad", max_duration=None)
    j = [c.name for c in whole.clips].index("ten_minutes.wav")
    assert len(whole.load(j, sr=8000)) == 600 * 8000


class _Peak:
    """A stand-in representation: one feature, the clip's peak."""

    sample_rate = 16000

    def to_dict(self) -> dict:
        return {"kind": "peak"}

    def analyze(self, y: np.ndarray):
        from types import SimpleNamespace

        return SimpleNamespace(features=np.array([np.max(np.abs(y))], np.float32), side={}, n_samples=len(y))


def test_bad_folder_decode_errors_reported_by_feature_cache(tmp_path: Path) -> None:
    ds = open_dataset(make_bad_folder(tmp_path / "bad"))
    fs = FeatureCache(tmp_path / "cache").features(ds, _Peak())
    assert [r.path.name for r in fs.rejected] == ["nan.wav"]
    assert sorted(fs.names) == sorted(GOOD)
    assert all(0.4 < fs[j][0] <= 1.0 for j in range(len(fs)))
    entries = sorted(p.name for p in (tmp_path / "cache" / "features").iterdir() if not p.name.endswith(".lock"))
    assert entries == [fs.key]  # one complete entry, nothing half-written beside it


def test_load_audio_errors(tmp_path: Path) -> None:
    make_bad_folder(tmp_path)
    for name, needle in [("empty.wav", "empty"), ("truncated.wav", "truncated"),
                         ("text.wav", "not a readable"), ("nan.wav", "NaN"), ("one_sample.wav", "too short")]:
        with pytest.raises(AudioLoadError, match=needle):
            load_audio(tmp_path / name, sr=16000)
    with pytest.raises(AudioLoadError, match="no such file"):
        load_audio(tmp_path / "missing.wav", sr=None)


def test_streamed_wav_placeholder_size_is_not_truncation(tmp_path: Path) -> None:
    # espeak-ng --stdout writes 0x7ffff000 as the data size; libsndfile reads it and so must we.
    save_wav(tmp_path / "a.wav", _tone(8000, 0.25), sr=8000)
    data = bytearray((tmp_path / "a.wav").read_bytes())
    at = data.index(b"data") + 4
    data[at: at + 4] = (0x7FFFF000).to_bytes(4, "little")
    (tmp_path / "streamed.wav").write_bytes(bytes(data))
    y = load_audio(tmp_path / "streamed.wav", sr=None)
    assert len(y) == 2000
    assert audio_info(tmp_path / "streamed.wav").frames == 2000


@pytest.mark.parametrize("subtype,tol", [("pcm16", 1e-4), ("pcm24", 1e-6), ("float32", 0.0)])
def test_save_wav_round_trip(tmp_path: Path, subtype: str, tol: float) -> None:
    y = _tone(22050, 0.2, 1000.0)
    save_wav(tmp_path / "x.wav", y, sr=22050, subtype=subtype)
    back = load_audio(tmp_path / "x.wav", sr=None)
    info = audio_info(tmp_path / "x.wav")
    assert (info.sample_rate, info.subtype) == (22050, {"pcm16": "PCM_16", "pcm24": "PCM_24", "float32": "FLOAT"}[subtype])
    assert np.max(np.abs(back - y)) <= tol
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]  # no temporary left behind


def test_save_wav_refuses_nan_and_leaves_no_file(tmp_path: Path) -> None:
    y = _tone(8000, 0.1)
    y[3] = np.nan
    with pytest.raises(ConfigError):
        save_wav(tmp_path / "x.wav", y, sr=8000)
    assert list(tmp_path.iterdir()) == []


# (extension, soundfile format, subtype, peak tolerance): lossy codecs move the level a little.
FORMATS = [
    ("wav", "WAV", "PCM_24", 1e-3),
    ("flac", "FLAC", "PCM_16", 1e-3),
    ("ogg", "OGG", "VORBIS", 0.03),
    ("aiff", "AIFF", "PCM_16", 1e-3),
    ("mp3", "MP3", "MPEG_LAYER_III", 0.03),
]


@pytest.mark.parametrize("ext,fmt,subtype,tol", FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_loads_as_mono_at_the_asked_rate(tmp_path: Path, ext: str, fmt: str, subtype: str,
                                                      tol: float) -> None:
    if fmt not in sf.available_formats():  # MP3 needs libsndfile >= 1.1 (the wheels bundle 1.2)
        pytest.skip(f"this libsndfile cannot write {fmt}")
    left = _tone(22050, 0.5, 440.0)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 22050, format=fmt, subtype=subtype)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.format) == (22050, 2, fmt)
    y = load_audio(path, sr=16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 2  # 0.5 s at 16 kHz
    mid = y[1000:7000]
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(len(mid)), n=1 << 16))
    assert np.argmax(spectrum) * 16000 / (1 << 16) == pytest.approx(440.0, rel=0.01)
    assert np.max(np.abs(mid)) == pytest.approx(0.375, abs=tol)  # (0.5 + 0.25) / 2: channels averaged
    native = load_audio(path, sr=None, max_duration=0.25)  # the file's own rate, capped
    assert abs(len(native) - 22050 // 4) <= 2


def test_save_wav_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = save_wav(tmp_path / "x.wav", _tone(8000, 0.1), sr=8000)
    before = target.read_bytes()

    def failing_write(f, *args, **kwargs) -> None:
        f.write(b"RIFF half a file")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_wav(target, _tone(8000, 0.2, 880.0), sr=8000)
    assert target.read_bytes() == before  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["x.wav"]  # and no temporary left behind


@pytest.mark.parametrize(("sr", "target"), [(16000, 48000), (22050, 48000), (48000, 44100), (8000, 8000)])
def test_stream_resampler_joins_into_the_offline_resampling_and_holds_little_back(sr, target):
    """Blocks of 128 come out in step with their input (the real-time player's latency: under 3 ms
    held back at any point) and, flushed, join into what ``resample`` gives for the whole sound."""
    from scipy import signal

    from models.audio import StreamResampler, resample

    rng = np.random.default_rng(0)
    y = signal.lfilter(*signal.butter(6, 0.3), rng.standard_normal(3000)).astype(np.float32) * 0.3  # band-limited
    r = StreamResampler(sr, target)
    parts, fed, got = [], 0, 0
    for i in range(0, len(y) - 128, 128):
        out = r.process(y[i: i + 128])
        parts.append(out)
        fed, got = fed + 128, got + len(out)
        assert fed * target / sr - got <= 0.003 * target + 1, (fed, got)
    parts.append(r.process(y[fed:], last=True))
    joined = np.concatenate(parts)
    want = resample(y, sr, target)
    assert joined.dtype == np.float32 and len(joined) == len(want)
    tail = int(0.005 * target)  # where the sound stops dead the two filters' edges differ a little
    assert np.abs(joined - want)[:-tail].max() < 2e-3 * np.abs(want).max()
    assert np.sqrt(np.mean((joined - want)[-tail:] ** 2)) < 2e-2 * np.abs(want).max()
