"""Do morphs sound like music? Measured on the bundled demo, both models, a fixed set of paths.

For each demo model (resources/demo: Colonel on magnitude frames, Natsiou on log-mel) and each
path (point to point across families, class centre to class centre over one visible pitch,
point to point through empty space), 8 steps, crossfade 0.5, rendered exactly as the app does
(``models.morphing.render.render_path`` on trajectories from ``models.morphing.sources``).
Centre paths run over one visible pitch (the app's map filter), once with barycentres and once
with medoids; the empty-space path runs between two spots beside two clips:

* ``rho A`` / ``rho B``: Spearman correlation of the step index with the MFCC-DTW distance of
  the step to end A / end B (want >= 0.9 / <= -0.9). An end is the original clip for a point,
  the decoded centre for a class centre.
* ``rank B``: rank of clip B among all 160 clips by MFCC-DTW distance to the last step (want 1;
  the last step *is* the click on B, so this is also the rank the model's decoding of B has);
  for centre paths ``B in 5``: how many of the last step's 5 nearest clips are of the target
  class (want >= 3). An empty-space path's "B" is the clip weighing most in its end's blend.
* ``f0 in``: share of steps whose f0 (pyin, median over voiced frames) lies within one semitone of
  the range the two ends span (want >= 90 %); ``f0*`` the same range taken from the decoded end
  steps (where the model's decoding of an end is off pitch, every step near it is too).
* ``cent``: the smallest ratio over the inner steps of the spectral-centroid variation over
  time (std/mean over frames within 30 dB of the loudest) to the ends' variations, weighted by
  where the step lies between them (``(1 - u) cv_A + u cv_B``; want >= 0.5);
  ``cent*`` the same against the decoded end steps (the model's own ceiling: a step cannot vary
  more than the model's decodings of its ends do).
* ``dip``: the deepest dip of the continuous morph's 50 ms RMS envelope (dB below the lower of
  the two maxima within 0.5 s on either side) beyond the deepest such dip of its ends (want <= 6).
* ``detour``: mean over the inner steps of (d(step, A) + d(step, B)) / d(A, B), linear and
  spherical interpolation side by side (1 = on the way; the autoencoder default is the lower).

``freeze`` rows are the same paths in freeze mode (one held code per step, the earlier
behaviour), and ``xfade`` the dip of those held steps joined by the old equal-power crossfades:
the numbers the trajectories are measured against. The verdict is printed last.

    .venv/bin/python bench/bench_morph_quality.py [--out DIR] [--threads 2]

``--out`` writes each path's steps and continuous morph as WAVs and a spectrogram PNG of them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.stats import spearmanr

from explorer.core.controller import load_model
from explorer.core.paths import DEMO_DATASET, demo_checkpoints
from models.datasets import open_dataset
from models.inference import engine
from models.mapping.projection import PCAProjector
from models.metrics import dtw_distances, mfcc
from models.morphing import render, sources
from models.morphing.morph import MorphParams, MorphPath, Waypoint, crossfade_concat

N_STEPS, CROSSFADE = 8, 0.5
#: (kind, A, B, statistic): points are NSynth names; centres (family, visible pitch) with the
#: barycentre or the medoid; "empty": a drawn line between two empty spots beside A and B
PATHS = [
    ("point", "flute_acoustic_073-062-127", "brass_acoustic_056-062-127", None),
    ("point", "keyboard_acoustic_000-055-127", "string_acoustic_040-055-127", None),
    ("point", "organ_electronic_016-069-075", "synth_lead_synthetic_080-069-075", None),
    ("point", "mallet_acoustic_011-048-127", "reed_acoustic_065-055-127", None),
    ("centre", ("flute", 62), ("brass", 62), "barycentre"),
    ("centre", ("string", 55), ("reed", 55), "barycentre"),
    ("centre", ("flute", 62), ("brass", 62), "medoid"),
    ("centre", ("string", 55), ("reed", 55), "medoid"),
    ("empty", "guitar_acoustic_024-062-127", "bass_synthetic_038-062-127", None),
]
#: how far beside A and B an empty-space path's ends lie, as a fraction of the map's extent
BESIDE = 0.04
WANT = {"rho A": 0.9, "rho B": -0.9, "f0 in": 0.9, "cent": 0.5, "dip": 6.0}


@dataclass
class Model:
    name: str
    lm: object
    enc: object
    book: sources.TrajectoryBook
    emb: object


def f0_midi(y: np.ndarray, sr: int) -> float:
    """Median f0 over voiced frames in MIDI (NaN when nothing is voiced)."""
    f0, voiced, _ = librosa.pyin(y, fmin=50.0, fmax=2000.0, sr=sr, frame_length=2048, hop_length=1024)
    v = f0[voiced & np.isfinite(f0)]
    return float(librosa.hz_to_midi(np.median(v))) if len(v) else float("nan")


def centroid_variation(y: np.ndarray, sr: int) -> float:
    """std / mean of the spectral centroid over frames within 30 dB of the loudest."""
    c = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=1024, hop_length=256)[0]
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    keep = 20 * np.log10(rms + 1e-12) > 20 * np.log10(rms.max() + 1e-12) - 30
    c = c[keep[: len(c)]]
    return float(np.std(c) / max(np.mean(c), 1e-9))


def deepest_dip(y: np.ndarray, sr: int, *, window: float = 0.05, reach: float = 0.5) -> float:
    """dB of the deepest dip of the 50 ms RMS envelope below the lower of its neighbouring maxima."""
    n = int(window * sr)
    frames = len(y) // n
    rms = np.sqrt(np.mean(y[: frames * n].astype(np.float64).reshape(frames, n) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-12))
    db = np.maximum(db, db.max() - 50.0)  # silence is a floor, not a chasm
    r = max(1, int(reach / window))
    deepest = 0.0
    for t in range(r, frames - r):
        left, right = db[t - r: t].max(), db[t + 1: t + 1 + r].max()
        deepest = max(deepest, min(left, right) - db[t])
    return float(deepest)


def load(ck: Path, ds) -> Model:
    lm = load_model(ck)
    enc = engine.encode_dataset(lm.model, lm.representation, ds)
    emb = PCAProjector().fit(enc.clip_codes)
    book = sources.TrajectoryBook(enc, lm.representation, ds, input_shape=lm.model.input_shape)
    return Model(ck.stem, lm, enc, book, emb)


def waypoints(m: Model, ds, spec: tuple) -> tuple[list[Waypoint], list, list]:
    """(waypoints, their trajectories, (reference audio, clip index or None, class) per end)."""
    kind, a, b, statistic = spec
    names = [c.name for c in ds.clips]
    sr = m.lm.representation.sample_rate
    fam = np.array([c.labels["instrument_family_str"] for c in ds.clips])
    if kind == "centre":
        pitch = np.array([int(c.labels["pitch"]) for c in ds.clips])
        wps, trs, ends = [], [], []
        for f, p in (a, b):
            members = [(int(i), -1) for i in np.flatnonzero((fam == f) & (pitch == p))]
            t = m.book.centre(members, statistic=statistic)
            clip = None
            if statistic == "medoid":
                clip = members[sources.medoid_of_codes([m.enc.trajectory(i) for i, _ in members])][0]
            wps.append(Waypoint.make("centre", t.mean, m.emb.points[[i for i, _ in members]].mean(0), label=f,
                                     members=members, statistic=statistic, clip=clip))
            trs.append(t)
            ends.append((None, None, f))
        return wps, trs, ends
    ia, ib = names.index(a), names.index(b)
    if kind == "empty":
        pts = m.emb.points
        along = pts[ib] - pts[ia]
        side = np.array([-along[1], along[0]]) / max(np.linalg.norm(along), 1e-12) * BESIDE * np.ptp(pts, axis=0).max()
        wps, trs, ends = [], [], []
        for i in (ia, ib):
            idx, w = sources.position_members(pts, pts[i] + side)
            members = [(int(j), -1) for j in idx]
            t = m.book.blend(members, w)
            wps.append(Waypoint.make("position", t.mean, pts[i] + side, members=members, weights=w))
            trs.append(t)
            heaviest = int(idx[int(np.argmax(w))])
            ends.append((None, heaviest, fam[heaviest]))
        return wps, trs, ends
    wps = [Waypoint.make("point", m.enc.clip_codes[i], m.emb.points[i], label=names[i], clip=i) for i in (ia, ib)]
    trs = [m.book.point(ia), m.book.point(ib)]
    ends = [(ds.load(i, sr=sr), i, fam[i]) for i in (ia, ib)]
    return wps, trs, ends


def measure(m: Model, ds, spec: tuple, clip_mfcc: list, *, params: MorphParams, out: Path | None) -> dict:
    rep = m.lm.representation
    sr = rep.sample_rate
    wps, trs, ends = waypoints(m, ds, spec)
    path = MorphPath(waypoints=wps, params=params)
    r = render.render_path(m.lm.model, rep, path, latent_shape=m.enc.latent_shape, layout=m.enc.layout,
                           trajectories=trs)
    refs = [y if y is not None else r.steps[k] for (y, _, _), k in zip(ends, (0, -1))]
    step_m = [mfcc(s, sr=sr) for s in r.steps]
    ref_m = [mfcc(y, sr=sr) for y in refs]
    d_ref = dtw_distances(step_m, ref_m)  # (n_steps, 2)
    d_all = dtw_distances(step_m[-1:], clip_mfcc)[0]
    k = np.arange(len(r.steps))
    res = {"rho A": spearmanr(k, d_ref[:, 0])[0], "rho B": spearmanr(k, d_ref[:, 1])[0]}
    fam = np.array([c.labels["instrument_family_str"] for c in ds.clips])
    if ends[1][1] is not None:
        res["rank B"] = int(np.sum(d_all < d_all[ends[1][1]]) + 1)
    else:
        res["B in 5"] = int(np.sum(fam[np.argsort(d_all)[:5]] == ends[1][2]))
    f_ends = [f0_midi(y, sr) for y in refs]
    lo, hi = min(f_ends) - 1.0, max(f_ends) + 1.0
    f_steps = np.array([f0_midi(s, sr) for s in r.steps])
    res["f0 in"] = float(np.mean((f_steps >= lo) & (f_steps <= hi)))
    lo, hi = min(f_steps[[0, -1]]) - 1.0, max(f_steps[[0, -1]]) + 1.0  # the decoded ends' own pitches
    res["f0*"] = float(np.mean((f_steps >= lo) & (f_steps <= hi)))
    # each inner step against its ends' variation weighted by where it lies between them (a step
    # next to a steady reed is measured against the reed more than against the ringing mallet)
    u = np.linspace(0.0, 1.0, len(r.steps))[1:-1]
    cv = np.array([centroid_variation(s, sr) for s in r.steps[1:-1]])
    for key, (ca, cb) in (("cent", [centroid_variation(y, sr) for y in refs]),
                          ("cent*", [centroid_variation(r.steps[k], sr) for k in (0, -1)])):
        res[key] = float(np.min(cv / np.maximum((1 - u) * ca + u * cb, 1e-9)))
    dip_end = max(deepest_dip(y, sr) for y in refs)
    res["dip"] = max(0.0, deepest_dip(r.morph, sr) - dip_end)
    d_ab = float(dtw_distances(ref_m[:1], ref_m[1:])[0, 0])
    res["detour"] = float(np.mean((d_ref[1:-1, 0] + d_ref[1:-1, 1]) / max(d_ab, 1e-9)))
    if params.mode == "freeze":
        overlap = int(round(CROSSFADE * r.step_samples))
        res["xfade"] = max(0.0, deepest_dip(crossfade_concat(r.steps, overlap), sr) - dip_end)
    if out is not None:
        write_listening(out, f"{m.name}_{label(spec)}_{params.mode}_{params.interpolation}", r)
    return res


def label(spec: tuple) -> str:
    kind, a, b, statistic = spec
    if kind == "centre":
        return f"{statistic}-{a[0]}{a[1]}-to-{b[0]}{b[1]}"
    return f"{kind}-{a.split('_')[0]}-to-{b.split('_')[0]}"


def write_listening(out: Path, stem: str, r: render.MorphRender) -> None:
    """The WAVs the app would play and one spectrogram PNG (steps above, continuous morph below)."""
    import soundfile as sf
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    sf.write(out / f"{stem}_morph.wav", r.morph, r.sr, subtype="PCM_24")
    gap = np.zeros(r.sr // 4, np.float32)
    steps = np.concatenate([x for s in r.steps for x in (s, gap)])
    sf.write(out / f"{stem}_steps.wav", steps, r.sr, subtype="PCM_24")
    rows = []
    for y in (steps, r.morph):
        S = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024, hop_length=256)), ref=np.max, top_db=80)
        rows.append(Image.fromarray(((S[:256] + 80) / 80 * 255).clip(0, 255).astype(np.uint8)[::-1]).resize((1400, 256)))
    im = Image.new("L", (1400, 516))
    im.paste(rows[0], (0, 0))
    im.paste(rows[1], (0, 260))
    im.save(out / f"{stem}.png")


def fmt(v: float) -> str:
    return f"{v:6.2f}" if isinstance(v, float) else f"{v:6d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="write WAVs and spectrogram PNGs here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = open_dataset(DEMO_DATASET)
    failures: list[str] = []
    interp_votes = {"linear": 0.0, "spherical": 0.0}
    for ck in demo_checkpoints():
        t0 = time.perf_counter()
        m = load(ck, ds)
        clip_mfcc = [mfcc(ds.load(i, sr=m.lm.representation.sample_rate), sr=m.lm.representation.sample_rate)
                     for i in range(len(ds.clips))]
        print(f"\n== {m.name} ({m.lm.representation.kind}, layout {m.enc.layout}) ==")
        print(f"{'path':44s} {'mode':10s} {'rho A':>6s} {'rho B':>6s} {'B':>6s} {'f0 in':>6s} {'f0*':>6s} {'cent':>6s} "
              f"{'cent*':>6s} {'dip':>6s} {'detour':>6s} {'xfade':>6s}")
        for spec in PATHS:
            rows = {}
            for mode, interp in (("trajectory", "linear"), ("trajectory", "spherical"), ("freeze", "linear")):
                p = MorphParams(n_steps=N_STEPS, crossfade=CROSSFADE, mode=mode, interpolation=interp)
                res = measure(m, ds, spec, clip_mfcc, params=p, out=args.out if interp == "linear" else None)
                rows[(mode, interp)] = res
                b = res.get("rank B", res.get("B in 5"))
                print(f"{label(spec):44s} {mode[:5] + '/' + interp[:3]:10s} {fmt(res['rho A'])} {fmt(res['rho B'])} "
                      f"{fmt(b)} {fmt(res['f0 in'])} {fmt(res['f0*'])} {fmt(res['cent'])} {fmt(res['cent*'])} {fmt(res['dip'])} "
                      f"{fmt(res['detour'])} "
                      f"{fmt(res['xfade']) if 'xfade' in res else '':>6s}")
            for interp in interp_votes:
                interp_votes[interp] += rows[("trajectory", interp)]["detour"]
            res = rows[("trajectory", "linear")]
            checks = [res["rho A"] >= WANT["rho A"], res["rho B"] <= WANT["rho B"], res["f0 in"] >= WANT["f0 in"],
                      res["cent"] >= WANT["cent"], res["dip"] <= WANT["dip"],
                      res["rank B"] == 1 if "rank B" in res else res["B in 5"] >= 3]
            if not all(checks):
                names = ["rho A", "rho B", "f0 in", "cent", "dip", "rank/B in 5"]
                failures.append(f"{m.name} {label(spec)}: " + ", ".join(n for n, ok in zip(names, checks) if not ok))
        print(f"({time.perf_counter() - t0:.0f} s)")
    best = min(interp_votes, key=interp_votes.get)
    print(f"\nmean detour over all paths: linear {interp_votes['linear'] / (2 * len(PATHS)):.3f}, "
          f"spherical {interp_votes['spherical'] / (2 * len(PATHS)):.3f} -> autoencoder default: {best}")
    if failures:
        print("verdict: FAIL (trajectory/linear)\n  " + "\n  ".join(failures))
    else:
        print("verdict: PASS: every path of both models meets every target (trajectory/linear)")


if __name__ == "__main__":
    main()
