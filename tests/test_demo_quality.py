"""resources/demo/quality.json (written by scripts/build_demo.py) covers what the demo ships.

Every bundled checkpoint has its measured quality next to the same network untrained: its
feature RMSE is at most half the untrained figure, and the sound the app plays (estimated phase)
is measured against the representation's own floor. At least one shipped model is a VAE.
"""

from __future__ import annotations

import json

import pytest

from explorer.core import paths
from explorer.core.controller import load_model

QUALITY = paths.DEMO_DIR / "quality.json"
SHIPPED = list(paths.demo_checkpoints()) + sorted(paths.DEMO_DIGITS_CHECKPOINTS.glob("*.safetensors"))


@pytest.fixture(scope="module")
def quality() -> dict:
    return json.loads(QUALITY.read_text(encoding="utf-8"))


def test_every_shipped_checkpoint_is_measured(quality):
    assert {p.stem for p in SHIPPED} <= set(quality)


@pytest.mark.parametrize("ckpt", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_features_far_from_untrained(quality, ckpt):
    trained, untrained = quality[ckpt.stem]["trained"], quality[ckpt.stem]["untrained"]
    assert trained["feature_rmse"] <= 0.5 * untrained["feature_rmse"]
    assert trained["feature_rmse_test"] <= 0.5 * untrained["feature_rmse_test"]


#: Natsiou's log-mel model plays, with the estimated phase, a blur no closer to the clips than the
#: untrained network's (1.03 against 1.00; floor 0.60): docs/demo.md
SOUND_KNOWN_BAD = {"natsiou-notes"}


@pytest.mark.parametrize("ckpt", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="the log-mel model's sound is not better "
                                            "than untrained")) if p.stem in SOUND_KNOWN_BAD else p
    for p in SHIPPED], ids=[p.stem for p in SHIPPED])
def test_sound_closer_than_untrained(quality, ckpt):
    # the sound the app plays, with the phase it estimates, is at most halfway from what
    # analysis-synthesis alone gives to what the untrained network gives
    q = quality[ckpt.stem]
    floor, untrained = q["resynthesis"]["spectral_convergence"], q["untrained"]["spectral_convergence"]
    assert floor - 0.02 <= q["trained"]["spectral_convergence"] <= (floor + untrained) / 2


def test_a_vae_is_shipped(quality):
    vaes = [p.stem for p in SHIPPED if load_model(p).model.variational]
    assert vaes, "the demo ships no VAE"
    assert not SOUND_KNOWN_BAD & set(vaes)
