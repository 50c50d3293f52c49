"""1-NN accuracy in latent space and the set-level aggregates."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.metrics import knn1, knn1_accuracy, reconstruction_metrics, rmse, ssim, summarize


def test_knn1_separable_clusters():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(size=(20, 3)), rng.normal(size=(20, 3)) + 50])
    assert knn1_accuracy(z, [0] * 20 + [1] * 20) == 1.0


def test_knn1_constructed_case():
    # points 0, 1, 3, 4 labelled a, a, b, a: 0 -> 1 ok, 1 -> 0 ok, 3 -> 4 wrong, 4 -> 3 wrong
    r = knn1(np.array([[0.0], [1.0], [3.0], [4.0]]), ["a", "a", "b", "a"])
    assert r.accuracy == 0.5
    assert r.neighbour.tolist() == [1, 0, 3, 2]
    assert r.correct.tolist() == [True, True, False, False]
    assert r.per_class == {"a": pytest.approx(2 / 3), "b": 0.0}


def test_knn1_leaves_each_point_out_even_with_duplicates():
    # 0 and 1 coincide with different labels: each must see the other, not itself
    r = knn1(np.array([[0.0], [0.0], [4.0], [5.0]]), ["a", "b", "b", "b"])
    assert r.neighbour.tolist()[:2] == [1, 0]
    assert r.accuracy == 0.5
    with pytest.raises(ConfigError):
        knn1(np.zeros((3, 2)), [0, 1])


def test_summarize_skips_non_finite():
    s = summarize([1.0, 3.0, np.nan])
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 2)
    assert np.isnan(summarize([np.nan]).mean)


def test_reconstruction_metrics_per_item_and_aggregates():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(4, 32, 12)) ** 3
    y = np.clip(x + rng.normal(scale=0.05, size=x.shape), 0, 1)
    freqs = np.linspace(50, 4000, 32)
    m = reconstruction_metrics(
        x,
        y,
        freqs=freqs,
        metrics=("rmse", "ssim", "harmonic", "spectral_convergence"),
        harmonic_kwargs={"kind": "db", "db_per_unit": 80},
    )
    assert set(m.values) == {"rmse", "ssim", "precision", "recall", "f1", "spectral_convergence"}
    for k, v in m.values.items():
        assert v.shape == (4,), k
    assert m.values["rmse"][2] == pytest.approx(rmse(x[2], y[2]))
    assert m.values["ssim"][1] == pytest.approx(ssim(x[1], y[1]))
    assert m.summary["rmse"].mean == pytest.approx(np.mean([rmse(a, b) for a, b in zip(x, y)]))
    assert m.summary["rmse"].std == pytest.approx(np.std(m.values["rmse"]))
    same = reconstruction_metrics(x, x, freqs=freqs, harmonic_kwargs={"kind": "db"}).means()
    expected = {"rmse": 0.0, "ssim": pytest.approx(1.0), "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert same == expected
    with pytest.raises(ConfigError, match="freqs"):
        reconstruction_metrics(x, y)
    with pytest.raises(ConfigError, match="unknown"):
        reconstruction_metrics(x, y, metrics=("mse",))
