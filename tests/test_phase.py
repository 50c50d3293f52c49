"""Phase reconstruction: STFT conventions, torch fast Griffin-Lim, PGHI, the dispatcher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ConfigError
from models.representations.griffinlim import TorchStft, griffin_lim
from models.representations.phase import DEFAULT_METHOD, PhaseConfig, reconstruct, resolve_method
from models.representations.pghi import pghi
from models.representations.stft import StftParams, istft, spectral_convergence, stft

SR = 16000
HANN = StftParams(n_fft=1024, hop_length=256, window="hann")
NATSIOU = StftParams(n_fft=1024, hop_length=256, win_length=690, window="blackman")


def harmonic_note(seconds: float = 1.0, f0: float = 220.0, vibrato: float = 5.0) -> np.ndarray:
    """A decaying 10-partial tone with vibrato: what a SoundFont note looks like to an STFT."""
    t = np.arange(int(SR * seconds)) / SR
    ph = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * vibrato * t))) / SR
    y = sum(np.sin(k * ph) / k for k in range(1, 11)) * np.exp(-2.0 * t)
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def note_mag() -> np.ndarray:
    return np.abs(stft(harmonic_note(), params=HANN))


@pytest.mark.parametrize("params", [HANN, NATSIOU], ids=["hann1024", "blackman690"])
def test_torch_stft_matches_librosa(params: StftParams) -> None:
    y = harmonic_note(0.5)
    ref = stft(y, params=params)
    ts = TorchStft(params)
    got = ts.stft(torch.from_numpy(y)[None])[0].numpy()
    assert got.shape == ref.shape == (params.n_bins, params.n_frames(len(y)))
    assert np.abs(got - ref).max() < 1e-5 * np.abs(ref).max()
    back = ts.istft(torch.from_numpy(ref)[None], len(y))[0].numpy()
    np.testing.assert_allclose(back, istft(ref, params=params, length=len(y)), atol=1e-5)
    np.testing.assert_allclose(back, y, atol=1e-4)


def test_original_phase_is_exact(note_mag: np.ndarray) -> None:
    y = harmonic_note()
    S = stft(y, params=HANN)
    out = reconstruct(np.abs(S), params=HANN, method="default", phase=np.angle(S), length=len(y))
    snr = 10 * np.log10(np.sum(y**2) / np.sum((y - out) ** 2))
    assert snr > 60


def test_fast_gla_matches_or_beats_librosa(note_mag: np.ndarray) -> None:
    import librosa

    # Same start (zero phase) and iterations: the torch loop must do what librosa's does.
    lib = librosa.griffinlim(
        note_mag, n_iter=32, momentum=0.99, init=None, hop_length=HANN.hop_length, n_fft=HANN.n_fft,
        window=HANN.window_array(), win_length=HANN.n_fft, pad_mode="constant",
    )
    sc_lib = spectral_convergence(note_mag, lib, params=HANN)
    ours = griffin_lim(note_mag, params=HANN, n_iter=32, momentum=0.99, init=np.zeros_like(note_mag))
    sc_gla = spectral_convergence(note_mag, ours, params=HANN)
    # Random starts: the same seed draws the same start as librosa.
    cfg = [PhaseConfig(n_iter=32, seed=s) for s in range(3)]
    sc_lib_rand = np.mean([spectral_convergence(note_mag, reconstruct(note_mag, params=HANN, method="librosa", config=c), params=HANN) for c in cfg])
    sc_gla_rand = np.mean([spectral_convergence(note_mag, reconstruct(note_mag, params=HANN, method="gla", config=c), params=HANN) for c in cfg])
    sc_plain = spectral_convergence(note_mag, griffin_lim(note_mag, params=HANN, n_iter=32, momentum=0.0), params=HANN)
    print(f"\nSC 32 it, zero init: librosa {sc_lib:.4f}, torch {sc_gla:.4f}; random init (3 seeds): "
          f"librosa {sc_lib_rand:.4f}, torch {sc_gla_rand:.4f}; plain GL (no momentum) {sc_plain:.4f}")
    assert sc_gla <= 1.02 * sc_lib
    assert sc_gla_rand <= 1.03 * sc_lib_rand
    assert sc_gla_rand < 0.15
    assert sc_gla_rand < sc_plain  # the momentum is what makes it fast


def test_pghi_recovers_a_consistent_phase(note_mag: np.ndarray) -> None:
    phase = pghi(note_mag, params=HANN)
    assert phase.shape == note_mag.shape and np.isfinite(phase).all()
    y = istft(note_mag * np.exp(1j * phase), params=HANN)
    sc = spectral_convergence(note_mag, y, params=HANN)
    # a wrong phase convention (e.g. without the (-1)^k of librosa's frame origin) gives ~0.7
    wrong = istft(note_mag * np.exp(1j * (phase - np.pi * np.arange(HANN.n_bins)[:, None])), params=HANN)
    sc_wrong = spectral_convergence(note_mag, wrong, params=HANN)
    print(f"\nSC PGHI {sc:.4f} ({20 * np.log10(sc):.1f} dB); without the convention fix {sc_wrong:.3f}")
    assert sc < 0.1
    assert sc_wrong > 0.3


def test_pghi_then_gla_beats_both(note_mag: np.ndarray) -> None:
    cfg = PhaseConfig(n_iter=32, pghi_gla_iters=8)
    sc = {
        m: spectral_convergence(note_mag, reconstruct(note_mag, params=HANN, method=m, config=cfg), params=HANN)
        for m in ("gla", "pghi", "pghi+gla")
    }
    print("\nSC:", {k: f"{v:.4f}" for k, v in sc.items()})
    assert sc["pghi+gla"] < sc["pghi"]
    assert sc["pghi+gla"] < sc["gla"]
    assert DEFAULT_METHOD == "pghi+gla"


def test_gla_batch_shape_and_quality(note_mag: np.ndarray) -> None:
    batch = np.stack([note_mag, 0.5 * note_mag, note_mag[:, ::-1]])
    out = griffin_lim(batch, params=HANN, n_iter=16, length=12345)
    assert out.shape == (3, 12345) and out.dtype == np.float32
    for m, y in zip(batch, out):
        assert spectral_convergence(m, y, params=HANN) < 0.25
    # the level follows the magnitudes
    assert np.std(out[1]) == pytest.approx(0.5 * np.std(out[0]), rel=0.1)


def test_pghi_handles_silence_and_batches() -> None:
    silent = np.zeros((HANN.n_bins, 20), dtype=np.float32)
    assert np.isfinite(pghi(silent, params=HANN)).all()
    assert np.all(reconstruct(silent, params=HANN, method="pghi+gla") == 0)
    mag = np.abs(stft(harmonic_note(0.3), params=HANN))
    both = pghi(np.stack([mag, mag]), params=HANN)
    np.testing.assert_array_equal(both[0], pghi(mag, params=HANN))


def test_dispatcher_names_and_errors(note_mag: np.ndarray) -> None:
    assert resolve_method("default", has_phase=True) == "original"
    assert resolve_method("default", has_phase=False) == DEFAULT_METHOD
    with pytest.raises(ConfigError, match="original"):
        reconstruct(note_mag, params=HANN, method="original")
    with pytest.raises(ConfigError, match="unknown phase method"):
        reconstruct(note_mag, params=HANN, method="magic")
    with pytest.raises(ConfigError):
        reconstruct(note_mag[:100], params=HANN)
    with pytest.raises(ConfigError):
        PhaseConfig(momentum=2.5)


def test_stft_params_checks_and_gamma() -> None:
    with pytest.raises(ConfigError):
        StftParams(n_fft=1024, hop_length=800, win_length=690)
    with pytest.raises(ConfigError):
        StftParams(n_fft=1024, hop_length=256, window="no-such-window")
    assert HANN.gamma() == pytest.approx(0.25645 * 1024**2)
    # windows outside the table get the Gaussian of the same spread (triangle: wider than hann)
    tri = StftParams(n_fft=1024, hop_length=256, window="triang").gamma()
    assert 0.2 * 1024**2 < tri < 0.4 * 1024**2
