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


def _heapq_reference(mag: np.ndarray, params: StftParams, tol: tuple[float, ...], seed: int) -> np.ndarray:
    """PGHI with Python's heapq on (-magnitude, index) tuples: the plain statement of the order."""
    import heapq

    from models.representations.pghi import phase_gradients

    tgrad, fgrad = phase_gradients(mag, params=params)
    n_bins, n_frames = mag.shape
    phase = np.random.default_rng(seed).uniform(0.0, 2 * np.pi, size=mag.shape)
    done = np.zeros(mag.shape, dtype=bool)
    peak = mag.max()
    for t in tol:
        floor = peak * t
        heap = [(-mag[m, n], m * n_frames + n) for m, n in zip(*np.nonzero(done))]
        heapq.heapify(heap)
        while True:
            if not heap:
                left = np.where(~done & (mag > floor), mag, -1.0)
                if left.max() < 0:
                    break
                m, n = np.unravel_index(np.argmax(left), mag.shape)  # first of equal maxima
                done[m, n], phase[m, n] = True, 0.0
                heapq.heappush(heap, (-mag[m, n], m * n_frames + n))
                continue
            _, idx = heapq.heappop(heap)
            m, n = divmod(idx, n_frames)
            for dm, dn, grad, sign in ((0, 1, tgrad, 1), (0, -1, tgrad, -1), (1, 0, fgrad, 1), (-1, 0, fgrad, -1)):
                mm, nn = m + dm, n + dn
                if 0 <= mm < n_bins and 0 <= nn < n_frames and not done[mm, nn] and mag[mm, nn] > floor:
                    phase[mm, nn] = phase[m, n] + sign * 0.5 * (grad[m, n] + grad[mm, nn])
                    done[mm, nn] = True
                    heapq.heappush(heap, (-mag[mm, nn], mm * n_frames + nn))
    return np.mod(phase + np.pi * np.arange(n_bins)[:, None], 2 * np.pi)


def test_pghi_integrates_in_exact_magnitude_order() -> None:
    # The compiled rank heap must pop in the order of the (-magnitude, index) max-heap, ties
    # included (the quantised magnitudes below have many), pass after pass.
    small = StftParams(n_fft=128, hop_length=32, window="hann")
    mag = np.abs(stft(harmonic_note(0.15, f0=500.0), params=small))
    mag = np.round(mag / mag.max(), 2) * mag.max()
    tol = (0.3, 1e-2, 1e-4)
    got = pghi(mag, params=small, tol=tol, seed=3).astype(np.float64)
    ref = _heapq_reference(mag, small, tol, seed=3)
    assert np.abs(np.angle(np.exp(1j * (got - ref)))).max() < 1e-4


def test_pghi_batch_on_threads_matches_clip_by_clip() -> None:
    mag = np.abs(stft(harmonic_note(0.4), params=HANN))
    batch = np.stack([mag, 0.3 * mag, mag[:, ::-1], np.roll(mag, 3, axis=0), mag])
    threaded = pghi(batch, params=HANN, workers=4)
    serial = pghi(batch, params=HANN, workers=1)
    np.testing.assert_array_equal(threaded, serial)
    for m, ph in zip(batch, threaded):
        np.testing.assert_array_equal(ph, pghi(np.ascontiguousarray(m), params=HANN))
    # reconstruct() renders a batch the same way, clip for clip
    ys = reconstruct(batch[:2], params=HANN, method="pghi+gla")
    y0 = reconstruct(batch[0], params=HANN, method="pghi+gla")
    np.testing.assert_allclose(ys[0], y0, atol=1e-5)
    with pytest.raises(ConfigError, match="workers"):
        pghi(batch, params=HANN, workers=0)


def test_pghi_continues_from_a_known_phase_for_streaming() -> None:
    # Chunks of 8 frames, each given the previous chunk's last frame (magnitude and decided
    # phase): the joined phase is about as consistent as one pass over the whole clip, and
    # much better than chunks integrated on their own (a phase jump at every join).
    mag = np.abs(stft(harmonic_note(1.0), params=HANN))
    n = mag.shape[1]
    whole = pghi(mag, params=HANN)
    joined = np.zeros_like(whole)
    alone = np.zeros_like(whole)
    for s0 in range(0, n, 8):
        s1 = min(n, s0 + 8)
        alone[:, s0:s1] = pghi(np.ascontiguousarray(mag[:, s0:s1]), params=HANN)
        if s0 == 0:
            joined[:, s0:s1] = pghi(np.ascontiguousarray(mag[:, s0:s1]), params=HANN)
            continue
        chunk = np.ascontiguousarray(mag[:, s0 - 1:s1])
        ph = pghi(chunk, params=HANN, known_phase=joined[:, s0 - 1:s0])
        # the known frame comes back as given (mod 2 pi)
        assert np.abs(np.angle(np.exp(1j * (ph[:, 0].astype(np.float64) - joined[:, s0 - 1])))).max() < 1e-5
        joined[:, s0:s1] = ph[:, 1:]

    def sc(ph: np.ndarray) -> float:
        return spectral_convergence(mag, istft(mag * np.exp(1j * ph), params=HANN), params=HANN)

    print(f"\nSC whole {sc(whole):.4f}, chunks joined {sc(joined):.4f}, chunks alone {sc(alone):.4f}")
    assert sc(joined) < 1.5 * sc(whole)
    assert sc(alone) > 2 * sc(joined)
    with pytest.raises(ConfigError, match="known_phase"):
        pghi(mag, params=HANN, known_phase=np.zeros((HANN.n_bins + 1, 1)))
    with pytest.raises(ConfigError, match="known_phase"):
        pghi(mag[:, :4], params=HANN, known_phase=np.zeros((HANN.n_bins, 5)))
