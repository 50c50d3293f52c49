"""DTW (against hand-worked cases and librosa) and the MFCC-DTW deviation on constructed classes."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from models.errors import ConfigError
from models.metrics import (
    ClassDTW,
    MFCCConfig,
    dtw_accumulated_cost,
    dtw_distance,
    dtw_distances,
    dtw_path,
    mfcc,
    mfcc_dtw_deviation,
    mfcc_dtw_deviation_table,
    mfcc_dtw_distance,
)


def seq(*values):
    """A 1-feature sequence [shape=(1, n)] (librosa layout)."""
    return np.array([values], dtype=float)


def test_hand_worked_dtw():
    # X = 0 1 2, Y = 0 2: C = [[0,2],[1,1],[2,0]]
    # D = [[0,2],[1,1],[3,1]]: D[1,1] = 1 + min(0, 2, 1), D[2,1] = 0 + min(1, 3, 1)
    X, Y = seq(0, 1, 2), seq(0, 2)
    np.testing.assert_array_equal(dtw_accumulated_cost(X, Y), [[0, 2], [1, 1], [3, 1]])
    assert dtw_distance(X, Y) == 1.0
    cost, path = dtw_path(X, Y)
    assert cost == 1.0
    assert path.tolist() == [[0, 0], [1, 0], [2, 1]]  # diagonal wins the tie at (2, 1)
    assert dtw_distance(X, Y, normalize=True) == pytest.approx(1 / 5)
    # Euclidean local cost on 2-D frames: (0,0) and (3,4) against (3,4) -> 5 + 0
    X2 = np.array([[0.0, 3.0], [0.0, 4.0]])
    Y2 = np.array([[3.0], [4.0]])
    assert dtw_distance(X2, Y2) == 5.0
    assert dtw_path(X2, Y2)[1].tolist() == [[0, 0], [1, 0]]


def test_identity_and_symmetry():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(13, 30)), rng.normal(size=(13, 41))
    assert dtw_distance(X, X) == 0.0
    assert dtw_distance(X, Y) == dtw_distance(Y, X)
    # a time-stretched copy (each frame repeated) costs nothing
    assert dtw_distance(X, np.repeat(X, 2, axis=1)) == 0.0


def test_matches_librosa():
    rng = np.random.default_rng(1)
    for n, m in [(1, 1), (5, 17), (40, 33)]:
        X, Y = rng.normal(size=(7, n)), rng.normal(size=(7, m))
        D, wp = librosa.sequence.dtw(X, Y)
        np.testing.assert_allclose(dtw_accumulated_cost(X, Y), D, rtol=1e-12)
        assert dtw_distance(X, Y) == pytest.approx(D[-1, -1], rel=1e-12)
        np.testing.assert_array_equal(dtw_path(X, Y)[1], wp[::-1])


def test_distance_matrix_equals_pairs():
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(5, int(k))) for k in rng.integers(3, 12, size=6)]
    M = dtw_distances(seqs)
    assert M.shape == (6, 6)
    np.testing.assert_array_equal(np.diag(M), 0.0)
    np.testing.assert_array_equal(M, M.T)
    for i in range(6):
        for j in range(6):
            assert M[i, j] == pytest.approx(dtw_distance(seqs[i], seqs[j]), rel=1e-12)
    R = dtw_distances(seqs[:2], seqs[2:], normalize=True)
    assert R.shape == (2, 4)
    assert R[1, 3] == pytest.approx(dtw_distance(seqs[1], seqs[5], normalize=True), rel=1e-12)
    with pytest.raises(ConfigError, match="feature"):
        dtw_distances([seqs[0]], [rng.normal(size=(4, 3))])


# Class of single-frame, one-feature "MFCC" sequences: DTW is |a - b|.
MEMBERS = [seq(0), seq(1), seq(4)]


def test_deviation_hand_worked():
    # centre 2. member 0: d 2, others 1, 4 -> (2 - 2.5) / 1.5 = -1/3
    #           member 1: d 1, others 1, 3 -> (1 - 2) / 1 = -1
    #           member 4: d 2, others 4, 3 -> (2 - 3.5) / 0.5 = -3
    expected = [-1 / 3, -1.0, -3.0]
    cls = ClassDTW(MEMBERS)
    np.testing.assert_allclose(cls.deviations(seq(2)), expected)
    for j in range(3):
        assert cls.deviation(j, seq(2)) == pytest.approx(expected[j])
        others = [m for k, m in enumerate(MEMBERS) if k != j]
        assert mfcc_dtw_deviation(MEMBERS[j], seq(2), others) == pytest.approx(expected[j])
    # a centre far away is further than the class mates: positive
    assert cls.deviation(0, seq(10)) == pytest.approx((10 - 2.5) / 1.5)
    # an outsider at 2 against all three members: d to centre 2 is 0; others 2, 1, 2
    assert cls.deviation_of(seq(2), seq(2)) == pytest.approx(-5 / 3 / np.std([2, 1, 2]))
    # ddof 1: sample std of (1, 4) is 2.1213
    sample_std = np.std([1, 4], ddof=1)
    assert ClassDTW(MEMBERS, ddof=1).deviation(0, seq(2)) == pytest.approx(-0.5 / sample_std)


def test_deviation_table_per_class_and_average():
    shifted = [m + 10 for m in MEMBERS]
    table = mfcc_dtw_deviation_table(
        MEMBERS + shifted, ["a"] * 3 + ["b"] * 3, {"a": seq(2), "b": seq(12)}
    )
    expected = np.array([-1 / 3, -1.0, -3.0])
    np.testing.assert_allclose(table.per_item, np.concatenate([expected, expected]))
    assert table.per_class["a"].mean == pytest.approx(expected.mean())
    assert table.per_class["b"].std == pytest.approx(expected.std())
    assert table.average.mean == pytest.approx(expected.mean())
    assert table.average.std == pytest.approx(expected.std())
    assert table.average.n == 2
    with pytest.raises(ConfigError, match="centre"):
        mfcc_dtw_deviation_table(MEMBERS, ["a"] * 3, {"b": seq(0)})


def test_mfcc_settings_and_distance_on_audio():
    sr = 8000
    assert MFCCConfig().stft_params(8000) == (256, 64)
    assert MFCCConfig().stft_params(16000) == (512, 128)
    t = np.arange(4096) / sr
    y = np.sin(2 * np.pi * 300 * t) * np.hanning(4096)
    M = mfcc(y, sr=sr)
    assert M.shape == (13, 65)
    assert mfcc(y, sr=sr, config=MFCCConfig(drop_c0=True)).shape == (12, 65)
    np.testing.assert_allclose(M, librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=256, hop_length=64, n_mels=40))
    assert mfcc_dtw_distance(y, y, sr=sr) == 0.0
    other = np.sin(2 * np.pi * 1200 * t) * np.hanning(4096)
    near = np.sin(2 * np.pi * 310 * t) * np.hanning(4096)
    assert 0 < mfcc_dtw_distance(y, near, sr=sr) < mfcc_dtw_distance(y, other, sr=sr)
    # a batch gives each item's own MFCCs: a loud neighbour does not move the 80 dB floor
    both = mfcc(np.stack([y, 100 * other]), sr=sr)
    np.testing.assert_allclose(both[0], M, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(both[1], mfcc(100 * other, sr=sr), rtol=1e-10, atol=1e-10)
    # batches are compared item by item
    batch = mfcc_dtw_distance(np.stack([y, y, y]), np.stack([y, near, other]), sr=sr)
    assert batch.shape == (3,) and batch[0] == 0.0
    assert batch[1] == mfcc_dtw_distance(y, near, sr=sr) and batch[2] == mfcc_dtw_distance(y, other, sr=sr)
    with pytest.raises(ConfigError, match="batch shape"):
        mfcc_dtw_distance(np.stack([y, y]), y, sr=sr)
