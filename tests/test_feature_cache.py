"""The feature cache: hit the second time, miss when the data or the parameters change,
one consistent entry when two processes build it at once, clean cancel."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from models.audio import save_wav
from models.datasets import BuildCancelled, open_dataset
from models.datasets.feature_cache import FORMAT_VERSION, FeatureCache
from models.representations.stft import spectral_convergence, stft

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


class FakeFrames:
    """Stands in for a models.representations object: framed |y| with per-frame maxima."""

    def __init__(self, frame: int = 100, sample_rate: int = 8000) -> None:
        self.frame = frame
        self.sample_rate = sample_rate
        self.calls = 0

    def to_dict(self) -> dict:
        return {"kind": "fake_frames", "frame": self.frame, "sample_rate": self.sample_rate}

    def analyze(self, y: np.ndarray) -> SimpleNamespace:
        self.calls += 1
        n = len(y) // self.frame
        frames = np.abs(y[: n * self.frame]).reshape(n, self.frame)
        peak = frames.max(axis=1)
        return SimpleNamespace(features=frames / np.maximum(peak[:, None], 1e-9), side={"frame_max": peak},
                               n_samples=len(y))


def _folder(root: Path) -> Path:
    for k, (label, seconds) in enumerate([("a", 0.1), ("a", 0.2), ("b", 0.15)]):
        t = np.arange(int(8000 * seconds)) / 8000
        save_wav(root / label / f"{k}.wav", 0.5 * np.sin(2 * np.pi * (200 + 100 * k) * t), sr=8000)
    (root / "b" / "broken.wav").write_bytes(b"RIFF????WAVEjunk")  # rejected at open, header unreadable
    return root


def test_second_call_is_a_hit(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path / "data"))
    cache = FeatureCache(tmp_path / "fc")
    rep = FakeFrames()
    reports: list[tuple[int, int]] = []
    fs = cache.features(ds, rep, progress=lambda d, t: reports.append((d, t)))
    assert rep.calls == 3 and reports == [(1, 3), (2, 3), (3, 3)]
    assert len(fs) == 3 and fs.names == ["a/0.wav", "a/1.wav", "b/2.wav"]
    assert [fs[j].shape for j in range(3)] == [(8, 100), (16, 100), (12, 100)]
    assert fs.n_samples == [800, 1600, 1200]
    np.testing.assert_allclose(fs[1], rep.analyze(ds.load(1, sr=8000)).features, atol=1e-7)
    np.testing.assert_allclose(fs.side(2)["frame_max"], np.abs(ds.load(2)[:1200]).reshape(12, 100).max(1), atol=1e-7)
    rep.calls = 0

    again = FeatureCache(tmp_path / "fc").features(open_dataset(tmp_path / "data"), rep)
    assert rep.calls == 0  # nothing computed: read from disk
    assert again.key == fs.key
    np.testing.assert_array_equal(again[2], fs[2])
    assert cache.lookup(ds, rep) is not None


def test_changed_parameters_or_file_miss(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    cache = FeatureCache(tmp_path / "fc")
    first = cache.features(open_dataset(data), FakeFrames(frame=100))
    other = FakeFrames(frame=50)
    second = cache.features(open_dataset(data), other)
    assert other.calls == 3 and second.key != first.key and second[0].shape == (16, 50)

    t = np.arange(800) / 8000
    save_wav(data / "a" / "0.wav", 0.25 * np.sin(2 * np.pi * 900 * t), sr=8000)  # same size, new sound
    rep = FakeFrames(frame=100)
    third = cache.features(open_dataset(data), rep)
    assert rep.calls == 3 and third.key != first.key
    assert not np.allclose(third[0], first[0])
    assert len(list((tmp_path / "fc" / "features").glob("[!.]*"))) == 3
    assert cache.prune(keep={third.key}) == 2
    assert cache.features(open_dataset(data), rep).key == third.key and rep.calls == 3


def test_decode_failure_is_recorded_not_fatal(tmp_path: Path) -> None:
    import soundfile as sf

    data = _folder(tmp_path / "data")
    sf.write(data / "b" / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    ds = open_dataset(data)
    assert len(ds) == 4 and [r.path.name for r in ds.rejected] == ["broken.wav"]
    fs = FeatureCache(tmp_path / "fc").features(ds, FakeFrames())
    assert len(fs) == 3 and list(fs.indices) == [0, 1, 2]
    assert [(r.path.name, r.reason) for r in fs.rejected] == [("nan.wav", "contains NaN or infinite samples")]
    again = FeatureCache(tmp_path / "fc").features(ds, FakeFrames())
    assert [r.path.name for r in again.rejected] == ["nan.wav"]  # kept in the manifest


def test_cancel_leaves_nothing(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path / "data"))
    cache = FeatureCache(tmp_path / "fc")
    rep = FakeFrames()
    with pytest.raises(BuildCancelled):
        cache.features(ds, rep, should_stop=lambda: rep.calls >= 2)
    assert [p.name for p in (tmp_path / "fc" / "features").iterdir() if not p.name.endswith(".lock")] == []
    assert cache.lookup(ds, rep) is None


def test_stacked_equal_shapes_and_default_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for k in range(4):
        save_wav(data / f"{k}.wav", np.full(400, 0.1 * (k + 1), np.float32), sr=8000)
    fs = FeatureCache().features(open_dataset(data), FakeFrames())  # root from $LATENT_EXPLORER_CACHE
    assert fs.path.parent == tmp_path / "cache" / "features"
    stacked = fs.stack()
    assert stacked.shape == (4, 4, 100)
    np.testing.assert_allclose([fs.side(j)["frame_max"][0] for j in range(4)], [0.1, 0.2, 0.3, 0.4], atol=1e-4)


WORKER = textwrap.dedent(
    """
    import json, sys
    from types import SimpleNamespace
    import numpy as np
    from models.datasets import open_dataset
    from models.datasets.feature_cache import FeatureCache

    class Rep:
        sample_rate = 8000
        calls = 0
        def to_dict(self):
            return {"kind": "fake_frames", "frame": 100}
        def analyze(self, y):
            Rep.calls += 1
            n = len(y) // 100
            f = np.abs(y[: n * 100]).reshape(n, 100)
            return SimpleNamespace(features=f, side={}, n_samples=len(y))

    sys.stdin.readline()  # both workers wait here until the test releases them together
    fs = FeatureCache(sys.argv[2]).features(open_dataset(sys.argv[1]), Rep())
    print(json.dumps({"key": fs.key, "calls": Rep.calls, "sum": float(sum(fs[j].sum() for j in range(len(fs))))}))
    """
)


def test_two_processes_build_one_consistent_entry(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(data), str(tmp_path / "fc")], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert results[0]["key"] == results[1]["key"]
    assert results[0]["sum"] == results[1]["sum"] > 0
    assert sorted(r["calls"] for r in results) == [0, 3]  # the lock: one computed, one read
    entries = [p.name for p in (tmp_path / "fc" / "features").iterdir() if not p.name.startswith(".")]
    assert entries == [results[0]["key"]]
    leftovers = [p.name for p in (tmp_path / "fc" / "features").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_real_representation_through_the_cache(tmp_path: Path) -> None:
    from models.representations import StftFrames

    data = _folder(tmp_path / "data")
    rep = StftFrames(sample_rate=8000, n_fft=256, hop_length=64)
    ds = open_dataset(data)
    fs = FeatureCache(tmp_path / "fc").features(ds, rep)
    assert fs.manifest["key_inputs"]["representation"] == rep.to_dict()
    for j in range(len(fs)):
        y = ds.load(int(fs.indices[j]), sr=8000)
        fresh = rep.analyze(y)
        np.testing.assert_array_equal(fs[j], fresh.features)
        side = fs.side(j)
        # the level per frame is kept, the phase (as large as the features) is not
        assert set(side) == {"frame_max"}
        np.testing.assert_array_equal(side["frame_max"], fresh.side["frame_max"])
        # what is kept is enough to give the clip back at its level, by phase reconstruction
        out = rep.synthesize(fs[j], side=side, n_samples=fs.n_samples[j])
        assert out.shape == y.shape
        assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(y**2)), rel=0.1)
        mag = np.abs(stft(y, params=rep.stft_params))
        assert spectral_convergence(mag, out, params=rep.stft_params) < 0.2
    # beyond the features, a few bytes per frame: 4 per frame_max value
    n_frames = sum(fs[j].shape[0] for j in range(len(fs)))
    assert (fs.path / "side.f32").stat().st_size == 4 * n_frames
    other = FeatureCache(tmp_path / "fc").features(ds, rep.replace(hop_length=128))
    assert other.key != fs.key and other[0].shape == (800 // 128 + 1, 129)


def test_damaged_entry_is_rebuilt_in_place(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path / "data"))
    cache = FeatureCache(tmp_path / "fc")
    first = cache.features(ds, FakeFrames())
    (first.path / "features.f32").write_bytes(b"\0" * 12)  # e.g. a disk that filled up
    assert cache.lookup(ds, FakeFrames()) is None
    rep = FakeFrames()
    again = cache.features(ds, rep)
    assert rep.calls == 3 and again.key == first.key and again.path == first.path
    np.testing.assert_allclose(again[0].max(axis=1), 1.0, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "fc" / "features").iterdir() if not p.name.endswith(".lock")) == [first.key]


class PhaseKeeping(FakeFrames):
    """A representation that can keep a phase as large as its features (as spectral kinds do)."""

    side_keys = frozenset({"frame_max", "phase"})

    def __init__(self) -> None:
        super().__init__()
        self.keep_phase: list[bool] = []

    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> SimpleNamespace:  # type: ignore[override]
        self.keep_phase.append(keep_phase)
        out = super().analyze(y)
        if keep_phase:
            out.side["phase"] = np.ones_like(out.features)
        return out


def test_phase_is_neither_computed_nor_kept(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path / "data"))
    rep = PhaseKeeping()
    fs = FeatureCache(tmp_path / "fc").features(ds, rep)
    assert rep.keep_phase == [False, False, False]
    assert all(set(fs.side(j)) == {"frame_max"} for j in range(len(fs)))
    # a representation that returns a phase anyway does not get it cached either
    rep.analyze = lambda y, **_: PhaseKeeping.analyze(rep, y, keep_phase=True)  # type: ignore[method-assign]
    fs2 = FeatureCache(tmp_path / "fc2").features(ds, rep)
    assert all(set(fs2.side(j)) == {"frame_max"} for j in range(len(fs2)))
    assert (fs2.path / "side.f32").stat().st_size == 4 * (8 + 16 + 12)
    # side arrays are the caller's own copies: changing one does not change the cache
    s = fs2.side(0)["frame_max"]
    s[:] = -1.0
    assert fs2.side(0)["frame_max"][0] > 0


def test_entry_of_an_older_format_is_rebuilt(tmp_path: Path) -> None:
    ds = open_dataset(_folder(tmp_path / "data"))
    cache = FeatureCache(tmp_path / "fc")
    first = cache.features(ds, FakeFrames())
    expected = first.side(1)["frame_max"]
    manifest = json.loads((first.path / "manifest.json").read_text())
    manifest["format"] = FORMAT_VERSION - 1
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    assert cache.lookup(ds, FakeFrames()) is None
    manifest["format"] = FORMAT_VERSION
    (first.path / "manifest.json").write_text(json.dumps(manifest))
    del first  # its memory map would read the truncated file below
    assert cache.lookup(ds, FakeFrames()) is not None
    (cache.dir / cache.key(ds, FakeFrames()) / "side.f32").write_bytes(b"")  # damaged like the features can be
    assert cache.lookup(ds, FakeFrames()) is None
    rep = FakeFrames()
    again = cache.features(ds, rep)
    assert rep.calls == 3
    np.testing.assert_array_equal(again.side(1)["frame_max"], expected)
