"""RMSE, SSIM, spectral convergence, log-spectral distance against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.metrics import log_spectral_distance, rmse, spectral_convergence, ssim


@pytest.fixture
def spec_pair():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 3, 16, 12))
    y = np.clip(x + rng.normal(scale=0.1, size=x.shape), 0, 1)
    return x, y


def test_rmse_hand_values():
    x = np.zeros((2, 2))
    assert rmse(x, x) == 0.0
    assert rmse(x, np.full((2, 2), 0.5)) == pytest.approx(0.5)
    y = np.array([[0.0, 0.0], [0.0, 2.0]])  # one error of 2 over 4 values: sqrt(4 / 4)
    assert rmse(x, y) == pytest.approx(1.0)
    assert isinstance(rmse(x, y), float)


def test_ssim_identical_is_one_and_constant_images_follow_the_formula():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(20, 20))
    assert ssim(x, x) == pytest.approx(1.0)
    # Two constant images a, b: contrast/structure terms are 1, the luminance term is
    # (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * data_range)^2.
    a, b, c1 = 0.2, 0.4, 1e-4
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(np.full((9, 9), a), np.full((9, 9), b)) == pytest.approx(expected, rel=1e-9)
    # data_range scales C1: with range 2, C1 = 4e-4
    c1 = 4e-4
    expected2 = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(np.full((9, 9), a), np.full((9, 9), b), data_range=2.0)
    assert got == pytest.approx(expected2, rel=1e-9)


def test_ssim_small_items_shrink_the_window_and_tiny_ones_fail():
    x = np.full((5, 40), 0.3)
    assert ssim(x, x) == pytest.approx(1.0)  # window 5 instead of 7
    with pytest.raises(ConfigError):
        ssim(np.zeros((2, 40)), np.zeros((2, 40)))


def test_spectral_convergence_hand_values():
    x = np.array([[3.0], [4.0]])
    assert spectral_convergence(x, x) == 0.0
    assert spectral_convergence(x, np.zeros_like(x)) == pytest.approx(1.0)
    assert spectral_convergence(x, np.array([[3.0], [0.0]])) == pytest.approx(4 / 5)
    assert spectral_convergence(np.zeros((2, 1)), x) == np.inf


def test_log_spectral_distance_hand_values():
    x = np.ones((4, 3))
    assert log_spectral_distance(x, x) == 0.0
    assert log_spectral_distance(x, 10 * x) == pytest.approx(20.0)  # 20 dB in every bin
    assert log_spectral_distance(x, 10 * x, kind="power") == pytest.approx(10.0)
    y = x.copy()
    y[:2] = 10.0  # half the bins 20 dB off: sqrt(mean([400, 400, 0, 0])) per frame
    assert log_spectral_distance(x, y) == pytest.approx(np.sqrt(200.0))
    # silence is floored at amin (-100 dB), so it gives a finite distance
    assert log_spectral_distance(x, np.zeros_like(x)) == pytest.approx(100.0)


@pytest.mark.parametrize("fn", [rmse, ssim, spectral_convergence, log_spectral_distance])
def test_batch_equals_items(fn, spec_pair):
    x, y = spec_pair
    batch = fn(x, y)
    assert batch.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert batch[i, j] == pytest.approx(fn(x[i, j], y[i, j]), rel=1e-12)
    assert np.all(batch > 0)


def test_torch_tensors_and_bad_input():
    torch = pytest.importorskip("torch")
    x = torch.rand(8, 8, requires_grad=True)
    assert rmse(x, x) == 0.0
    with pytest.raises(ConfigError, match="shape"):
        rmse(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ConfigError, match="NaN"):
        rmse(np.full((3, 3), np.nan), np.zeros((3, 3)))
    with pytest.raises(ConfigError):
        rmse(np.zeros(3), np.zeros(3))  # one item is 2-D by default
    assert rmse(np.zeros(3), np.ones(3), item_ndim=1) == pytest.approx(1.0)
