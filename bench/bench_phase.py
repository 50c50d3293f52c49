"""Phase reconstruction, side by side: librosa Griffin-Lim, torch fast GLA, PGHI, PGHI + GLA.

Renders a few General MIDI notes through FluidSynth (synthetic tones when the SoundFont or
pyfluidsynth is missing), takes their STFT magnitudes in the Colonel (2048/512 Hann, 22.05 kHz)
and Natsiou (1024/256, Blackman 690, 16 kHz) geometries, and reconstructs a waveform from the
magnitudes alone with each method. Prints the spectral convergence (dB; lower is better) and
the time per clip, with ratios to librosa.griffinlim. Runs in well under a minute.

    .venv/bin/python bench/bench_phase.py [--iters 32] [--threads 1] [--device cpu]

``--threads 1`` (default) compares one core with one core: librosa's Griffin-Lim is
single-threaded numpy. Give more threads, or ``--device cuda``, to see torch's batched speed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from models.representations.griffinlim import griffin_lim
from models.representations.phase import PhaseConfig, reconstruct
from models.representations.pghi import pghi
from models.representations.stft import StftParams, istft, spectral_convergence, stft

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# (name, GM program or None for drums, MIDI note)
NOTES = [("piano", 0, 60), ("violin", 40, 69), ("flute", 73, 76), ("trumpet", 56, 62), ("snare", None, 38)]


def render_notes(sr: int, seconds: float = 2.0) -> dict[str, np.ndarray]:
    """A few notes [shape=(n,)] float32 at ``sr``: FluidSynth if available, else synthetic."""
    try:
        import fluidsynth

        if not os.path.exists(SF2):
            raise FileNotFoundError(SF2)
    except (ImportError, OSError):
        return _synthetic(sr, seconds)
    out = {}
    n = int(sr * seconds)
    for name, program, note in NOTES:
        fs = fluidsynth.Synth(samplerate=float(sr))
        sfid = fs.sfload(SF2)
        chan = 9 if program is None else 0
        fs.program_select(chan, sfid, 128 if program is None else 0, 0 if program is None else program)
        fs.noteon(chan, note, 100)
        held = fs.get_samples(int(n * 0.75))
        fs.noteoff(chan, note)
        tail = fs.get_samples(n - int(n * 0.75))
        fs.delete()
        stereo = np.concatenate([held, tail]).astype(np.float32).reshape(-1, 2)
        y = stereo.mean(axis=1)
        out[name] = (0.5 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32)
    return out


def _synthetic(sr: int, seconds: float) -> dict[str, np.ndarray]:
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(0)
    out = {}
    for name, f0, vib in [("harmonic-220", 220.0, 0.0), ("vibrato-440", 440.0, 6.0), ("bright-110", 110.0, 0.0)]:
        inst = f0 * (1 + 0.01 * np.sin(2 * np.pi * vib * t))
        ph = 2 * np.pi * np.cumsum(inst) / sr
        y = sum(np.sin(k * ph) / k for k in range(1, 12)) * np.exp(-1.5 * t)
        out[name] = (0.5 * y / np.abs(y).max()).astype(np.float32)
    noise = rng.standard_normal(len(t)) * np.exp(-t * 20)
    out["noise-hit"] = (0.5 * noise / np.abs(noise).max()).astype(np.float32)
    return out


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    y = fn()
    return y, time.perf_counter() - t0


def bench(geometry: str, params: StftParams, sr: int, args: argparse.Namespace) -> None:
    clips = render_notes(sr)
    mags = {k: np.abs(stft(y, params=params)) for k, y in clips.items()}
    cfg = PhaseConfig(n_iter=args.iters, device=args.device, pghi_gla_iters=args.pghi_gla_iters)
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        f"librosa GLA x{args.iters}": lambda m: reconstruct(m, params=params, method="librosa", config=cfg),
        f"torch fast GLA x{args.iters}": lambda m: griffin_lim(m, params=params, n_iter=args.iters, device=args.device),
        "PGHI": lambda m: istft(m * np.exp(1j * pghi(m, params=params)), params=params),
        f"PGHI + GLA x{args.pghi_gla_iters}": lambda m: reconstruct(m, params=params, method="pghi+gla", config=cfg),
    }
    # warm-up (numba compile, torch first-call costs) outside the timings
    first = next(iter(mags.values()))
    for fn in methods.values():
        fn(first[:, :16])
    print(f"\n== {geometry}: sr={sr}, n_fft={params.n_fft}, hop={params.hop_length}, "
          f"window={params.window}({params.win}), clips: {', '.join(clips)} ({len(first[0])} frames each)")
    print(f"{'method':<22}" + "".join(f"{k[:12]:>13}" for k in clips) + f"{'mean SC dB':>12}{'ms/clip':>10}{'speed x':>9}")
    rows = []
    for label, fn in methods.items():
        scs, secs = [], 0.0
        for m in mags.values():
            y, dt = _timed(lambda: fn(m))
            secs += dt
            scs.append(spectral_convergence(m, y, params=params))
        rows.append((label, scs, secs / len(mags)))
    ref_time = rows[0][2]
    for label, scs, per in rows:
        db = [20 * np.log10(max(s, 1e-12)) for s in scs]
        print(f"{label:<22}" + "".join(f"{d:>13.1f}" for d in db) + f"{np.mean(db):>12.1f}{per * 1e3:>10.0f}{ref_time / per:>9.1f}")
    batch = np.stack(list(mags.values()))
    _, dt = _timed(lambda: griffin_lim(batch, params=params, n_iter=args.iters, device=args.device))
    print(f"torch fast GLA x{args.iters}, all {len(batch)} clips as one batch: {dt / len(batch) * 1e3:.0f} ms/clip "
          f"({ref_time / (dt / len(batch)):.1f}x librosa)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=32, help="Griffin-Lim iterations (librosa and torch)")
    ap.add_argument("--pghi-gla-iters", type=int, default=8, help="GLA iterations after PGHI")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="torch device for GLA")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, device={args.device}; "
          "SC = ||S - |STFT(y)| || / ||S|| in dB (lower is better)")
    t0 = time.perf_counter()
    bench("Colonel frames", StftParams(n_fft=2048, hop_length=512, window="hann"), 22050, args)
    bench("Natsiou log-mel STFT", StftParams(n_fft=1024, hop_length=256, win_length=690, window="blackman"), 16000, args)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
