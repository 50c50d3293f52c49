"""How fast are the explorer's live metrics? Prints measured ratios side by side.

1. The one-sound set the explorer computes on a click: RMSE, SSIM and harmonic F1 of a log-mel
   reconstruction (Natsiou's 128 x 512), and the MFCC-DTW deviation of a spoken digit (4096 samples
   at 8 kHz) from its decoded class centre against a class of 50 whose MFCCs are cached (the
   centre's MFCCs and the 50 DTWs are computed). Reported as a ratio to decoding the same sounds
   with the paper-sized decoders (``natsiou_conv_ae`` and ``dc_vae`` from models/nets), or with
   stand-in torch decoders of similar size with ``--stand-in``.
2. The MFCC-DTW matrix of a class of 50: ``dtw_distances`` against a plain Python loop of
   ``librosa.sequence.dtw`` over the *same* 1,225 pairs (DTW is symmetric: both sides compute the
   upper triangle and mirror it), interleaved A/B repeats, medians; also per pair, and with numba
   on one thread (the speed-up that is not parallelism). Target: >= 10x faster. (Before, the loop
   computed all 2,450 ordered pairs against our 1,225, which doubled the ratio.)

Timings are medians of ``--repeats`` runs after one warm-up run (numba compiles on the first), as
wall-clock time (what a user waits) and as CPU time of the process (all threads summed: the work
done, steadier than wall time on a busy machine, and blind to parallel speed-up).
The machine may be shared with other jobs: the load average is printed with the results.
Run: ``.venv/bin/python bench/bench_metrics.py [--repeats 5] [--stand-in]``; a verdict is printed last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import librosa
import numba
import numpy as np
import torch
from torch import nn

from models.metrics import (
    ClassDTW,
    dtw_distances,
    harmonic_prf,
    mel_band_frequencies,
    mfcc,
    mfcc_dtw_deviation,
    rmse,
    ssim,
)

SR_MEL, N_MELS, N_FRAMES = 16000, 128, 512
SR_DIGIT, N_DIGIT, CLASS_SIZE = 8000, 4096, 50


def timeit(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (wall, cpu) seconds of ``fn()``."""
    fn()  # warm-up: numba compilation, torch allocator, caches
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def synthetic_logmel(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A decaying harmonic note as a [0, 1] log-mel (80 dB range) and a noisy reconstruction."""
    freqs = librosa.fft_frequencies(sr=SR_MEL, n_fft=2048)
    S = np.full((freqs.size, N_FRAMES), 1e-4)
    env = np.exp(-np.arange(N_FRAMES) / 150)
    for k in range(1, 30):
        S[np.argmin(np.abs(freqs - 220 * k))] += env / k
    M = librosa.feature.melspectrogram(S=S**2, sr=SR_MEL, n_mels=N_MELS)
    x = np.clip(1 + librosa.power_to_db(M, ref=np.max, top_db=80) / 80, 0, 1)
    y = np.clip(x + rng.normal(scale=0.05, size=x.shape), 0, 1)
    return x, y


def synthetic_digits(rng: np.random.Generator) -> list[np.ndarray]:
    """50 short voiced sounds with random pitch and formant-like glides."""
    t = np.arange(N_DIGIT) / SR_DIGIT
    out = []
    for _ in range(CLASS_SIZE):
        f0 = rng.uniform(90, 220) * (1 + 0.2 * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR_DIGIT
        y = sum(np.sin(k * phase) / k for k in range(1, 15)) * np.hanning(N_DIGIT)
        out.append((y + rng.normal(scale=0.01, size=N_DIGIT)).astype(np.float32))
    return out


def decoders(stand_in: bool) -> tuple[str, Callable[[], object], Callable[[], object]]:
    """(description, decode one log-mel, decode one digit)."""
    torch.manual_seed(0)
    if not stand_in:
        from models.nets import build_model

        nat = build_model("natsiou_conv_ae", {}).eval()
        dc = build_model("dc_vae", {}).eval()
        z_nat = torch.zeros(1, *nat.latent_shape)
        z_dc = torch.zeros(1, *dc.latent_shape)

        def dec_nat():
            with torch.inference_mode():
                return nat.decode(z_nat)

        def dec_dc():
            with torch.inference_mode():
                return dc.decode(z_dc)

        return "models/nets natsiou_conv_ae (paper baseline) + dc_vae", dec_nat, dec_dc
    conv = nn.Sequential(
        nn.Linear(64, 256 * 8 * 32), nn.Unflatten(1, (256, 8, 32)), nn.Tanh(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.Tanh(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.Tanh(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.Tanh(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid(),
    ).eval()  # 64 -> (1, 128, 512)
    mlp = nn.Sequential(nn.Linear(20, 512), nn.Tanh(), nn.Linear(512, 2048), nn.Tanh(),
                        nn.Linear(2048, N_DIGIT)).eval()
    z1, z2 = torch.zeros(1, 64), torch.zeros(1, 20)

    def dec_nat():
        with torch.inference_mode():
            return conv(z1)

    def dec_dc():
        with torch.inference_mode():
            return mlp(z2)

    return "stand-in conv decoder (64 -> 128x512) + MLP (20 -> 4096)", dec_nat, dec_dc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stand-in", action="store_true", help="use stand-in decoders")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    x, y = synthetic_logmel(rng)
    mel_freqs = mel_band_frequencies(N_MELS, fmax=SR_MEL / 2)
    digits = synthetic_digits(rng)
    t0 = time.perf_counter()
    class_mfccs = [mfcc(d, sr=SR_DIGIT) for d in digits]  # cached per class in the explorer
    t_class_mfcc = time.perf_counter() - t0
    centre_audio = np.mean(digits, axis=0)  # stands for the decoded class centre

    desc, dec_nat, dec_dc = decoders(args.stand_in)
    r = args.repeats
    t_rmse = timeit(lambda: rmse(x, y), r)
    t_ssim = timeit(lambda: ssim(x, y), r)
    t_f1 = timeit(lambda: harmonic_prf(x, y, freqs=mel_freqs, kind="db", db_per_unit=80), r)

    def deviation():
        c = mfcc(centre_audio, sr=SR_DIGIT)
        return mfcc_dtw_deviation(class_mfccs[0], c, class_mfccs[1:])

    t_dev = timeit(deviation, r)
    cls = ClassDTW(class_mfccs)
    cls.pairwise  # noqa: B018 - computed once per class
    centre_mfcc = mfcc(centre_audio, sr=SR_DIGIT)
    t_dev_cached = timeit(lambda: cls.deviation(0, centre_mfcc), r)
    t_dec_nat = timeit(dec_nat, r)
    t_dec_dc = timeit(dec_dc, r)
    t_metrics = tuple(a + b + c + d for a, b, c, d in zip(t_rmse, t_ssim, t_f1, t_dev))
    t_decode = tuple(a + b for a, b in zip(t_dec_nat, t_dec_dc))

    n_pairs = CLASS_SIZE * (CLASS_SIZE - 1) // 2
    iu = np.triu_indices(CLASS_SIZE, k=1)

    def ours() -> np.ndarray:
        return dtw_distances(class_mfccs)  # the upper triangle, mirrored

    def librosa_loop() -> np.ndarray:  # the same pairs, mirrored the same way
        out = np.zeros((CLASS_SIZE, CLASS_SIZE))
        for i, j in zip(*iu):
            out[i, j] = out[j, i] = librosa.sequence.dtw(class_mfccs[i], class_mfccs[j], backtrack=False)[-1, -1]
        return out

    def ours_one_thread() -> np.ndarray:
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return ours()
        finally:
            numba.set_num_threads(before)

    M, L = ours(), librosa_loop()  # warm-up (numba compiles) and the check that both agree
    same = bool(np.allclose(M, L, rtol=1e-10))
    times: dict[str, list[tuple[float, float]]] = {"librosa": [], "ours": [], "ours1": []}
    for _ in range(max(3, r)):  # interleaved, so a load change hits both sides alike
        for name, fn in (("librosa", librosa_loop), ("ours", ours), ("ours1", ours_one_thread)):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
    t_lib, t_ours, t_ours1 = med["librosa"], med["ours"], med["ours1"]

    def row(name, t, ref=None):
        line = f"  {name:34s} {t[0] * 1e3:9.2f} {t[1] * 1e3:9.2f}"
        if ref is not None:
            line += f"   {t[0] / ref[0]:7.3f} {t[1] / ref[1]:7.3f}"
        print(line)

    threads = f"torch threads {torch.get_num_threads()}, numba threads {numba.get_num_threads()}"
    print(f"decoders: {desc}; {threads}")
    print(f"class MFCCs ({CLASS_SIZE} clips, once per class): {t_class_mfcc * 1e3:.1f} ms")
    print("one sound                            wall ms    cpu ms   / decode (wall, cpu)")
    row("decode log-mel 128x512", t_dec_nat)
    row("decode digit 4096 samples", t_dec_dc)
    row("rmse", t_rmse, t_decode)
    row("ssim", t_ssim, t_decode)
    row("harmonic P/R/F1 (512 frames)", t_f1, t_decode)
    row("MFCC-DTW deviation (50 DTWs)", t_dev, t_decode)
    row("  same, class matrix cached", t_dev_cached, t_decode)
    row("all four metrics", t_metrics, t_decode)
    print(f"{CLASS_SIZE}x{CLASS_SIZE} MFCC-DTW matrix, the same {n_pairs} pairs on both sides   wall ms    cpu ms   per pair (wall us)")
    for name, t in (("librosa.sequence.dtw loop", t_lib), ("dtw_distances (numba)", t_ours),
                    ("dtw_distances, numba on 1 thread", t_ours1)):
        print(f"  {name:34s} {t[0] * 1e3:9.2f} {t[1] * 1e3:9.2f}   {t[0] / n_pairs * 1e6:9.1f}")
    speed, speed1 = t_lib[0] / t_ours[0], t_lib[0] / t_ours1[0]
    print(f"  speed-up: {speed:.1f}x wall, {t_lib[1] / t_ours[1]:.1f}x cpu; on one thread {speed1:.1f}x wall "
          f"(target >= 10x wall); same distances: {same}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = same and speed >= 10
    print(f"verdict: {'PASS' if ok else 'FAIL'} (MFCC-DTW matrix {speed:.1f}x faster than librosa on the same pairs, "
          f"goal >= 10x{'' if same else '; distances differ'})")


if __name__ == "__main__":
    main()
