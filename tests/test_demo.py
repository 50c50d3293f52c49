"""The bundled demo (resources/demo, built by scripts/build_demo.py) opens, encodes and plays."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import paths
from explorer.core.controller import check_fit, load_model
from models.inference import engine
from models.inference.decode import decode_features
from models.datasets import open_dataset

DEMOS = [(paths.DEMO_DATASET, p) for p in paths.demo_checkpoints()] + [
    (paths.DEMO_DIGITS_DATASET, p) for p in sorted(paths.DEMO_DIGITS_CHECKPOINTS.glob("*.safetensors"))
]
#: feature RMSE of a decoded clip; the bundled models reach 0.029 (Colonel) and 0.10 (Natsiou)
#: on average, the same networks untrained 0.48 and 0.34 (resources/demo/quality.json)
MAX_FEATURE_RMSE = 0.25


@pytest.fixture(scope="module")
def datasets():
    return {path: open_dataset(path) for path in (paths.DEMO_DATASET, paths.DEMO_DIGITS_DATASET)}


def test_demo_is_bundled():
    assert paths.demo_available()
    names = {p.stem for _, p in DEMOS}
    assert {"natsiou-notes", "colonel-notes"} <= names
    licence = (paths.DEMO_DIR / "LICENSE-FluidR3_GM.txt").read_text(encoding="utf-8")
    assert "MIT license" in licence and "Frank Wen" in licence
    total = sum(f.stat().st_size for f in paths.DEMO_DIR.rglob("*") if f.is_file())
    assert total < 40e6, f"resources/demo is {total / 1e6:.1f} MB: keep it lean"


def test_demo_datasets(datasets):
    notes, digits = datasets[paths.DEMO_DATASET], datasets[paths.DEMO_DIGITS_DATASET]
    assert notes.kind == "nsynth" and notes.sample_rate == 16000 and not notes.rejected
    families = {c.labels["instrument_family_str"] for c in notes.clips}
    assert len(families) == 10 and 150 <= len(notes.clips) <= 250
    assert digits.kind == "fsdd" and digits.sample_rate == 8000 and not digits.rejected
    assert {c.labels["digit"] for c in digits.clips} == set(range(10))
    assert len({c.labels["speaker"] for c in digits.clips}) == 8


@pytest.mark.parametrize("dataset_path, ckpt", DEMOS, ids=[p.stem for _, p in DEMOS])
def test_demo_checkpoint_encodes_and_decodes(datasets, dataset_path, ckpt):
    ds = datasets[dataset_path]
    lm = load_model(ckpt)
    check_fit(lm, ds)  # raises if the app would refuse the pair
    assert lm.checkpoint.info.dataset_fingerprint == ds.fingerprint
    params = sum(p.numel() for p in lm.model.parameters())
    assert ckpt.stat().st_size < 4e6 and params < 1e6

    enc = engine.encode_dataset(lm.model, lm.representation, ds)
    assert enc.ok.all() and not enc.failed
    assert np.isfinite(enc.clip_codes).all()
    assert np.median(enc.clip_codes.std(axis=0)) > 1e-4  # clips land on different points

    i = len(ds.clips) // 3
    rep = lm.representation
    original = ds.load(i, sr=rep.sample_rate)
    analysis = rep.analyze(original)
    sound = engine.render_clip(lm.model, rep, ds, enc, i)
    assert sound.sr == rep.sample_rate == ds.sample_rate
    assert len(sound.y) == analysis.n_samples == len(original)
    assert np.isfinite(sound.y).all() and np.sqrt(np.mean(sound.y**2)) > 1e-3
    # a trained model, not a random one: the clip's codes decode to features near its own
    rec = decode_features(lm.model, rep, enc.trajectory(i), latent_shape=enc.latent_shape,
                          feature_shape=analysis.features.shape)
    rmse = float(np.sqrt(np.mean((np.clip(rec, 0, 1) - analysis.features) ** 2)))
    assert rmse < MAX_FEATURE_RMSE
