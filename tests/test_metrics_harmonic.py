"""Harmonic precision/recall/F1 (Natsiou, section V) on constructed spectra with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import ConfigError
from models.metrics import (
    frame_peaks,
    harmonic_prf,
    harmonic_prf_audio,
    match_peaks,
    mel_band_frequencies,
)

FREQS = np.arange(0.0, 4001.0)  # 1 Hz bins: every partial below sits exactly on a bin
FLOOR = 1e-3  # -60 dB background, flat, so it holds no peak


def partials(hz, levels_db=None, n_frames=1):
    """Magnitude spectrogram [shape=(4001, n_frames)] with one-bin peaks at ``hz``."""
    S = np.full((FREQS.size, n_frames), FLOOR)
    levels_db = np.zeros(len(hz)) if levels_db is None else np.asarray(levels_db)
    for f, level in zip(hz, levels_db):
        S[int(round(f)), :] = 10 ** (level / 20)
    return S


def harmonics(f0, k_max, shift=0.0):
    return [f0 * k * (1 + shift) for k in range(1, k_max + 1)]


def test_identical_gives_one():
    S = partials(harmonics(100, 20))
    h = harmonic_prf(S, S, freqs=FREQS)
    assert (h.precision, h.recall, h.f1, h.n_frames) == (1.0, 1.0, 1.0, 1)


def test_shift_of_two_percent_matches_every_partial():
    h = harmonic_prf(partials(harmonics(100, 20)), partials(harmonics(100, 20, 0.02)), freqs=FREQS)
    assert (h.precision, h.recall, h.f1) == (1.0, 1.0, 1.0)


def test_shift_of_five_percent_matches_no_low_partial():
    # Partial k moved to 1.05 k f0 is 5 % from its own k f0 (> 3 %); it can only land on k' = k + 1
    # if |1.05 k - (k + 1)| <= 0.03 (k + 1), i.e. k >= 12.12: never for the first 10 partials.
    h = harmonic_prf(partials(harmonics(100, 10)), partials(harmonics(100, 10, 0.05)), freqs=FREQS)
    assert (h.precision, h.recall, h.f1) == (0.0, 0.0, 0.0)


def test_shift_of_five_percent_high_partials_meet_their_neighbours():
    # 20 partials of 100 Hz moved by 5 %: moved partial k (105 k Hz) lies within 3 % of
    # original k + 1 for k = 13..19 (1365 vs 1400: 35 <= 42; k = 12: 1260 vs 1300: 40 > 39;
    # k = 20 would need 2100 Hz, absent). 7 matches of 20 peaks on each side.
    h = harmonic_prf(partials(harmonics(100, 20)), partials(harmonics(100, 20, 0.05)), freqs=FREQS)
    assert h.precision == pytest.approx(7 / 20)
    assert h.recall == pytest.approx(7 / 20)
    assert h.f1 == pytest.approx(7 / 20)


def test_peaks_more_than_30_db_below_the_highest_are_ignored():
    orig = partials([100, 200, 300, 400, 500, 600], [0, 0, 0, 0, -29, -31])
    recon = partials([100, 200, 300, 400])
    h = harmonic_prf(orig, recon, freqs=FREQS)
    # original counts 5 peaks (-31 dB dropped), all 4 reconstructed ones match
    assert h.recall == pytest.approx(4 / 5)
    assert h.precision == 1.0
    assert h.f1 == pytest.approx(2 * 0.8 / 1.8)
    assert harmonic_prf(orig, recon, freqs=FREQS, threshold_db=40).recall == pytest.approx(4 / 6)


def test_average_over_frames_with_energy():
    orig = np.concatenate(
        [np.zeros((FREQS.size, 1)), partials([100, 200, 300, 400], n_frames=2)], axis=1
    )
    recon = orig.copy()
    recon[:, 2] = partials([100, 200])[:, 0]  # frame 2: P 1, R 1/2, F1 2/3
    recon[:, 0] = partials([700, 900])[:, 0]  # silent original frame: not scored
    h = harmonic_prf(orig, recon, freqs=FREQS)
    assert h.n_frames == 2
    assert h.precision == pytest.approx(1.0)
    assert h.recall == pytest.approx(0.75)
    assert h.f1 == pytest.approx((1 + 2 / 3) / 2)


def test_silent_reconstruction_scores_zero_and_silent_original_is_nan():
    orig = partials([100, 200])
    h = harmonic_prf(orig, np.zeros_like(orig), freqs=FREQS)
    assert (h.precision, h.recall, h.f1) == (0.0, 0.0, 0.0)
    z = np.zeros_like(orig)
    h = harmonic_prf(z, orig, freqs=FREQS)
    assert np.isnan(h.f1) and h.n_frames == 0


def test_quiet_frames_below_silence_db_are_not_scored():
    orig = np.concatenate([partials([100, 200]), partials([300], [-50])], axis=1)
    recon = np.concatenate([partials([100, 200]), np.full((FREQS.size, 1), FLOOR)], axis=1)
    # frame 1's only peak is 50 dB below the loudest value of the item: scored at the default
    # silence_db of 60 (and missed: F1 0), silence at 40
    assert harmonic_prf(orig, recon, freqs=FREQS).f1 == pytest.approx(0.5)
    h = harmonic_prf(orig, recon, freqs=FREQS, silence_db=40)
    assert h.n_frames == 1 and h.f1 == 1.0


def test_matching_is_one_to_one_and_maximal():
    # two reconstructed peaks within 3 % of one original peak: one match
    assert match_peaks(np.array([1000.0]), np.array([990.0, 1010.0])) == 1
    # 1020 is 20 Hz from both 1000 and 1040; matching it to 1040 would strand 1065: the
    # Hungarian assignment finds the matching of two
    assert match_peaks(np.array([1000.0, 1040.0]), np.array([1020.0, 1065.0])) == 2
    # tolerance is relative to the original's frequency: 3 % of 1000 Hz is 30 Hz
    assert match_peaks(np.array([1000.0]), np.array([1030.0])) == 1
    assert match_peaks(np.array([1000.0]), np.array([1031.0])) == 0
    assert match_peaks(np.array([1000.0]), np.array([1031.0]), tolerance=0.05) == 1


def test_db_input_with_units():
    # a [0, 1] log-mel spanning 80 dB: 30 dB is 0.375 of a unit
    S = np.zeros((9, 1))
    S[2], S[4], S[6] = 1.0, 0.65, 0.6  # 0, -28, -32 dB
    f, levels = frame_peaks(S[:, 0] * 80, np.arange(9.0) * 100)
    assert f.tolist() == [200.0, 400.0]
    assert levels.tolist() == pytest.approx([80.0, 52.0])
    recon = S.copy()
    recon[4] = 0.0
    h = harmonic_prf(S, recon, freqs=np.arange(9.0) * 100, kind="db", db_per_unit=80)
    assert h.recall == pytest.approx(0.5) and h.precision == 1.0


def test_batch_equals_items_and_freqs_are_checked():
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(2, 3, 64, 10)) ** 4
    y = x * rng.uniform(0.5, 1.5, size=x.shape)
    freqs = np.linspace(0, 4000, 64)
    h = harmonic_prf(x, y, freqs=freqs)
    assert h.f1.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = harmonic_prf(x[i, j], y[i, j], freqs=freqs)
            assert (h.precision[i, j], h.recall[i, j], h.f1[i, j]) == (
                one.precision,
                one.recall,
                one.f1,
            )
    assert 0 < np.mean(h.f1) < 1
    with pytest.raises(ConfigError, match="freqs"):
        harmonic_prf(x, y, freqs=freqs[:-1])
    with pytest.raises(ConfigError, match="increase"):
        harmonic_prf(x, y, freqs=freqs[::-1])


def test_mel_band_frequencies_are_filter_centres():
    f = mel_band_frequencies(128, fmax=8000)
    assert f.shape == (128,)
    assert np.all(np.diff(f) > 0) and 0 < f[0] < f[-1] < 8000


def _tone(f0, sr, n, k_max, shift=0.0):
    t = np.arange(n) / sr
    return sum(np.sin(2 * np.pi * f0 * k * (1 + shift) * t) for k in range(1, k_max + 1))


def test_waveforms_through_an_stft():
    sr, n = 16000, 16000
    y = _tone(440, sr, n, 5)
    kw = {"sr": sr, "n_fft": 4096, "hop_length": 1024}
    assert harmonic_prf_audio(y, y, **kw).f1 == 1.0
    assert harmonic_prf_audio(y, _tone(440, sr, n, 5, 0.02), **kw).f1 == pytest.approx(1.0)
    assert harmonic_prf_audio(y, _tone(440, sr, n, 5, 0.05), **kw).f1 == 0.0
    batch = harmonic_prf_audio(np.stack([y, y]), np.stack([y, _tone(440, sr, n, 5, 0.05)]), **kw)
    assert batch.f1.tolist() == [1.0, 0.0]


def test_compiled_path_equals_scipy_and_hungarian_path():
    # Quantised random spectra have plateaus and many close peaks: the compiled local maxima and
    # greedy matching must give the numbers of scipy.signal.find_peaks + linear_sum_assignment.
    rng = np.random.default_rng(7)
    x = np.round(rng.uniform(size=(6, 200, 15)) * 8) / 8
    y = np.round(np.clip(x + rng.normal(scale=0.2, size=x.shape), 0, 1) * 8) / 8
    freqs = np.geomspace(50, 8000, 200)
    kw = {"freqs": freqs, "kind": "db", "db_per_unit": 80, "tolerance": 0.05}
    fast = harmonic_prf(x, y, **kw)
    slow = harmonic_prf(x, y, peak_kwargs={}, **kw)
    np.testing.assert_allclose(fast.precision, slow.precision, rtol=1e-12)
    np.testing.assert_allclose(fast.recall, slow.recall, rtol=1e-12)
    np.testing.assert_allclose(fast.f1, slow.f1, rtol=1e-12)
    assert np.all((fast.f1 > 0.1) & (fast.f1 < 0.9))
    # find_peaks options are honoured on the scipy path: prominence drops small bumps
    assert np.mean(harmonic_prf(x, y, peak_kwargs={"prominence": 30}, **kw).f1) != pytest.approx(
        np.mean(fast.f1)
    )


# --- the level scale of [0, 1] log features ---------------------------------------------------
def _log_features_with_noise_floor_peaks():
    """A hand-made [0, 1] log-mel (80 dB per unit), 16 bands x 8 equal frames, and a reconstruction.

    Original: peaks at bands 3 (1.0 = 0 dB) and 6 (0.75 = -20 dB), two noise-floor peaks at
    bands 9 and 12 (0.125 = -70 dB). Reconstruction: the same strong peaks, its noise-floor peaks
    at bands 10 and 13. On the right scale the 30 dB rule keeps bands 3 and 6 in both: P = R =
    F1 = 1. Read as amplitudes (20 log10 of 1, 0.75, 0.125: 0, -2.5, -18 dB) all four peaks pass
    it: two of four match on each side, P = R = F1 = 0.5.
    """
    S = np.zeros((16, 8))
    S[3], S[6], S[9], S[12] = 1.0, 0.75, 0.125, 0.125
    R = np.zeros((16, 8))
    R[3], R[6], R[10], R[13] = 1.0, 0.75, 0.125, 0.125
    return S, R


def test_log_features_are_scored_on_their_db_scale():
    S, R = _log_features_with_noise_floor_peaks()
    freqs = mel_band_frequencies(16, fmax=4000.0, htk=True)
    # neighbouring bands are further apart than the 3 % tolerance: 9 never matches 10
    assert np.all(np.diff(freqs) / freqs[1:] > 0.03)
    right = harmonic_prf(S, R, freqs=freqs, kind="db", db_per_unit=80)
    assert (right.precision, right.recall, right.f1, right.n_frames) == (1.0, 1.0, 1.0, 8)
    wrong = harmonic_prf(S, R, freqs=freqs)  # the old evaluation: [0, 1] values as amplitudes
    assert (wrong.precision, wrong.recall, wrong.f1) == pytest.approx((0.5, 0.5, 0.5))


def test_evaluation_reads_log_features_on_their_db_scale():
    from models.representations import representation_from_dict
    from trainer.evaluate import _reconstruction, harmonic_levels

    rep = representation_from_dict({"kind": "logmel", "sample_rate": 8000, "n_fft": 256, "win_length": 256,
                                    "hop_length": 64, "n_mels": 16, "top_db": 80.0, "n_frames": 8})
    S, R = _log_features_with_noise_floor_peaks()
    scores = _reconstruction([S], [R], rep, "clips")
    assert scores["f1"].tolist() == [1.0] and scores["precision"].tolist() == [1.0]
    assert harmonic_levels(rep) == {"kind": "db", "db_per_unit": 80.0}
    frames = {"kind": "stft_frames", "sample_rate": 8000, "n_fft": 256, "hop_length": 64}
    assert harmonic_levels(representation_from_dict({**frames, "magnitude": "log", "top_db": 60.0})) == {
        "kind": "db", "db_per_unit": 60.0}
    assert harmonic_levels(representation_from_dict({**frames, "magnitude": "linear"})) == {"kind": "amplitude"}
    with pytest.raises(ConfigError, match="level scale"):
        harmonic_levels(representation_from_dict({"kind": "waveform", "sample_rate": 8000, "n_samples": 256}))
