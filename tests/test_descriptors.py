"""A map without a model: per-clip audio descriptors as codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.audio import save_wav
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.mapping.descriptors import COLUMNS, DESCRIPTOR_RATE, Descriptors, describe_dataset, standardize
from models.mapping.projection import PCAProjector


def _folder(root: Path) -> Path:
    """Tones at 16 kHz and noise at 44.1 kHz: two timbres, two rates, one silent clip."""
    rng = np.random.default_rng(0)
    for k in range(5):
        t = np.arange(16000) / 16000
        save_wav(root / "tone" / f"t{k}.wav", (0.3 * np.sin(2 * np.pi * (220 + 40 * k) * t)).astype(np.float32), sr=16000)
        save_wav(root / "noise" / f"n{k}.wav", (0.2 * rng.standard_normal(44100)).astype(np.float32), sr=44100)
    save_wav(root / "noise" / "silent.wav", np.zeros(8000, np.float32), sr=16000)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(_folder(tmp_path_factory.mktemp("desc")))


def test_a_vector_describes_timbre() -> None:
    d, sr = Descriptors(), DESCRIPTOR_RATE
    t = np.arange(sr) / sr
    low, high = d.vector(0.3 * np.sin(2 * np.pi * 220 * t)), d.vector(0.3 * np.sin(2 * np.pi * 3520 * t))
    col = {name: k for k, name in enumerate(COLUMNS)}
    assert low.shape == (len(COLUMNS),) and np.all(np.isfinite(low))
    # four octaves up moves the centroid by about four octaves
    assert high[col["centroid_oct_mean"]] - low[col["centroid_oct_mean"]] == pytest.approx(4.0, abs=0.3)
    noise = d.vector(0.3 * np.random.default_rng(1).standard_normal(sr))
    assert noise[col["flatness_db_mean"]] > low[col["flatness_db_mean"]] + 20  # noise is flat, a sine is not
    assert np.all(np.isfinite(d.vector(np.zeros(sr))))  # silence has descriptors too


def test_standardize() -> None:
    X = np.c_[np.arange(5.0), 100 + 10 * np.arange(5.0), np.full(5, 3.0)]
    Z = standardize(X)
    assert np.allclose(Z.mean(0), 0) and np.allclose(Z[:, :2].std(0), 1) and np.all(Z[:, 2] == 0)


def test_the_descriptor_map_separates_tones_from_noise(dataset, tmp_path: Path) -> None:
    enc = describe_dataset(dataset)
    assert enc.clip_codes.shape == (11, len(COLUMNS)) and enc.ok.all() and enc.layout == "clips" and not enc.has_time
    assert np.allclose(np.nanmean(enc.clip_codes, axis=0), 0, atol=1e-9)
    pts = PCAProjector().fit(enc.clip_codes[enc.ok]).points
    labels = np.array(dataset.labels("label"))
    names = np.array([c.name for c in dataset.clips])
    tone, noise = pts[labels == "tone"], pts[(labels == "noise") & (names != "noise/silent.wav")]
    gap = np.linalg.norm(tone.mean(0) - noise.mean(0))
    spread = max(np.linalg.norm(tone - tone.mean(0), axis=1).max(), np.linalg.norm(noise - noise.mean(0), axis=1).max())
    assert gap > 2 * spread
    # the cache keeps the vectors: a second computation reads them and gives the same codes
    cache = FeatureCache(tmp_path / "cache")
    first = describe_dataset(dataset, cache=cache)
    assert np.allclose(first.clip_codes, enc.clip_codes, atol=1e-4)
    assert cache.lookup(dataset, Descriptors()) is not None
