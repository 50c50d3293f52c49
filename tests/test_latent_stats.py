"""Latent statistics kept in checkpoints: values on hand-made codes, the cap on stored axes."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.checkpoints.latent_stats import latent_statistics


def test_latent_statistics_rejects_bad_codes():
    with pytest.raises(ConfigError, match="at least 2"):
        latent_statistics(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        latent_statistics(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_latent_statistics_values_on_a_hand_made_case():
    t = np.array([-1.0, 0.0, 1.0, 2.0])
    codes = np.stack([t, 2 * t], axis=1)  # four points on the line y = 2x
    stats = latent_statistics(codes)
    np.testing.assert_allclose(stats.mean, [0.5, 1.0])
    np.testing.assert_allclose(stats.std, codes.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(np.abs(stats.components[0]), np.array([1, 2]) / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(stats.explained_variance_ratio, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(stats.explained_variance[0], 5 * t.var(ddof=1), rtol=1e-6)
    coords = stats.transform(codes, n_components=1)
    np.testing.assert_allclose(stats.inverse_transform(coords), codes, atol=1e-5)
    # 3-D codes keep their shape through the round trip
    cube = np.random.default_rng(0).normal(size=(10, 2, 3))
    full = latent_statistics(cube)
    assert full.latent_shape == (2, 3) and full.components.shape == (6, 6)
    np.testing.assert_allclose(full.inverse_transform(full.transform(cube, n_components=6)), cube, atol=1e-5)


def test_stored_axes_are_capped_and_match_the_full_pca():
    rng = np.random.default_rng(5)
    d = 100
    a1, a2 = np.zeros(d), np.zeros(d)
    a1[:50], a2[50:] = 1 / np.sqrt(50), 1 / np.sqrt(50)
    t = rng.normal(size=(300, 2)) * [5.0, 2.0]
    codes = t[:, :1] * a1 + t[:, 1:] * a2 + rng.normal(scale=0.05, size=(300, d))
    full = latent_statistics(codes, max_components=None)
    capped = latent_statistics(codes, max_components=5)
    assert full.components.shape == (100, d) and capped.components.shape == (5, d)
    # the two planted directions, in order (up to the sample's own correlation of t1 and t2),
    # and the very axes and variances of the full PCA
    np.testing.assert_allclose(np.abs(capped.components[:2] @ np.stack([a1, a2]).T), np.eye(2), atol=0.05)
    np.testing.assert_allclose(np.abs(np.sum(capped.components[:2] * full.components[:2], axis=1)), 1, atol=1e-5)
    np.testing.assert_allclose(capped.explained_variance[:2], full.explained_variance[:2], rtol=1e-4)
    # ratios stay fractions of the total variance, not of the 5 kept axes
    # (the noise axes 3-5 are approximate: randomized SVD, which is fine for a map)
    np.testing.assert_allclose(capped.explained_variance_ratio[:2], full.explained_variance_ratio[:2], rtol=1e-5)
    np.testing.assert_allclose(capped.explained_variance_ratio, full.explained_variance_ratio[:5], atol=1e-5)
    assert capped.explained_variance_ratio.sum() < 1.0
    again = latent_statistics(codes, max_components=5)
    np.testing.assert_array_equal(again.components, capped.components)  # seeded: deterministic
    # default cap: 64 axes of a 100-unit latent
    assert latent_statistics(codes).components.shape == (64, d)
    np.testing.assert_allclose(capped.inverse_transform(capped.transform(codes, n_components=2)),
                               full.inverse_transform(full.transform(codes, n_components=2)), atol=1e-3)
    with pytest.raises(ConfigError, match="max_components"):
        latent_statistics(codes, max_components=0)
