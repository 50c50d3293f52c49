"""32-step morph render on the demo models: seconds of audio per second of compute, before and after.

For each demo model (resources/demo/notes/checkpoints), a 32-step morph (crossfade 0.5, the
app's other defaults) from a flute to a brass note of the same pitch, rendered the way the app
renders a path (``models.morphing.render.render_path`` on the trajectories of
``models.morphing.sources``, what ``explorer.core.path_book.render_task`` runs), side by side
with the render as it was before (kept below as the baseline): every step decoded and
synthesised one after another through ``decode_trajectory``, then the continuous morph (a
whole-clip model's windows stretched to the morph's full length and stacked). Repeats are
interleaved, medians reported.

"Seconds of audio" is what a render produces: the 32 steps plus the continuous morph. Both
renders must give the same samples (checked bit for bit, printed). The machine is shared with
other work: the load average is printed, and the ratios move with it. The verdict is last
(goal: >= 50x for every model).

    .venv/bin/python bench/bench_morph_render.py [--repeats 3] [--steps 32]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from explorer.core.controller import load_model
from explorer.core.paths import DEMO_DATASET, demo_checkpoints
from models.datasets import open_dataset
from models.inference import engine
from models.inference import layout as item_layout
from models.inference.decode import DecodeContext, decode_codes, fixed_threads, sound_from_features
from models.morphing import render, sources
from models.morphing import trajectory as tj
from models.morphing.morph import MorphParams, MorphPath, Waypoint
from models.morphing.sources import grid
from models.threads import cpu_count

A, B = "flute_acoustic_073-062-127", "brass_acoustic_056-062-127"
GOAL = 50.0


# --- the render as it was (the baseline) ----------------------------------------------------------
def before(model, rep, path: MorphPath, *, latent_shape, layout: str, trajectories) -> tuple[list, np.ndarray]:
    """Steps one by one, then the continuous morph, as render_path did before it ran them side by side."""
    with fixed_threads():
        p = path.params
        counts = grid(rep, layout, model.input_shape)
        steps_t = render.step_trajectories(path, trajectories, counts, sample_rate=int(rep.sample_rate))
        steps = [render.decode_trajectory(model, rep, t, latent_shape=latent_shape).y for t in steps_t]
        L = int(round(float(np.mean([t.n_samples for t in steps_t]))))
        hop = L - min(int(round(float(p.crossfade) * L)), max(L - 1, 0))
        n_out = L + (p.n_steps - 1) * hop
        kw = dict(n_samples=n_out, step_samples=L, hop_samples=hop, n_steps=p.n_steps, method=p.interpolation)
        if item_layout.has_time(layout) or rep.kind == "waveform":
            morph = render.continuous_morph(model, rep, trajectories, layout=layout, latent_shape=latent_shape, **kw)
        else:
            morph = _old_assembled(model, rep, trajectories, latent_shape=latent_shape, **kw)
    return steps, morph


def _old_assembled(model, rep, trajectories, *, latent_shape, n_samples, step_samples, hop_samples, n_steps,
                   method) -> np.ndarray:
    """The whole-clip morph before: every window stretched to the whole morph, stacked, then blended."""
    cum = tj.path_lengths(np.stack([t.mean for t in trajectories]))
    k = int(np.clip(np.ceil(n_samples / (render.WINDOW_SECONDS * rep.sample_rate)) + 1, 2, render.MAX_WINDOWS))
    places = np.linspace(0.0, 1.0, k)
    idx, u = tj.locate(cum, places)
    parts = [tj.interpolate(trajectories[i], trajectories[i + 1], float(f), lambda n: (1, None), method=method)
             for i, f in zip(idx, u)]
    stft = rep.stft_params
    n_src = int(round(float(np.mean([t.n_samples for t in parts]))))
    src_shape = tuple(rep.feature_shape(n_src))
    natural = min(stft.n_frames(n_src), src_shape[-1])
    m_out = stft.n_frames(int(n_samples))
    items = decode_codes(model, np.stack([t.codes[0] for t in parts]), tuple(latent_shape))
    refs = [t.side.get("ref_db") for t in parts]
    top_db = float(getattr(rep.config, "top_db", 0.0) or 0.0)
    ref_out = max(float(r[0]) for r in refs) if all(r is not None for r in refs) and top_db else None
    maps = []
    for it, ref in zip(items, refs):
        f = item_layout.from_items(it[None], item_layout.CLIPS, src_shape).astype(np.float64)
        f = np.moveaxis(f[..., :natural], -1, 0)
        f = tj.resample_at(f, tj.stretch_positions(natural, m_out, keep=render.KEEP_ENDS))
        if ref_out is not None:
            f = np.where(f > 0, np.maximum(f + (float(ref[0]) - ref_out) / top_db, 0.0), 0.0)
        maps.append(f)
    sched = tj.morph_schedule(m_out, n_samples=n_samples, step_samples=step_samples, hop_samples=hop_samples,
                              n_steps=n_steps)
    j, w = render._window_weights(sched, places)
    rows = np.arange(m_out)
    stack = np.stack(maps)
    frames = (1.0 - w)[:, None] * stack[j, rows] + w[:, None] * stack[j + 1, rows]
    feats = np.moveaxis(frames, 0, -1).astype(np.float32)
    side = {"ref_db": np.array([ref_out], np.float32)} if ref_out is not None else {}
    ctx = DecodeContext(n_samples=int(n_samples), feature_shape=tuple(feats.shape), side=side)
    return sound_from_features(rep, feats, context=ctx, phase=render.ESTIMATED_PHASE, spectrogram=False).y


# --- the bench ------------------------------------------------------------------------------------
def timed(fn: Callable[[], tuple[list, np.ndarray]]) -> tuple[float, float, list, np.ndarray]:
    """(wall seconds, CPU seconds of this process, steps, morph)."""
    t0, c0 = time.perf_counter(), time.process_time()
    steps, morph = fn()
    return time.perf_counter() - t0, time.process_time() - c0, steps, morph


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=32)
    args = ap.parse_args()
    ds = open_dataset(DEMO_DATASET)
    names = [c.name for c in ds.clips]
    ia, ib = names.index(A), names.index(B)
    print(f"{args.steps}-step morph {A} -> {B}, crossfade 0.5; {cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.1f} (the machine is shared: ratios move with its load)")
    print("x = seconds of audio per second of wall time; cpu x = per CPU second of this process (what an idle "
          "machine would give on one core: the load does not move it)")
    print(f"{'model':18s} {'audio s':>8s} {'before s':>9s} {'after s':>8s} {'before x':>9s} {'after x':>8s} "
          f"{'speed-up':>8s} {'cpu x bef':>9s} {'cpu x aft':>9s} {'load':>5s}  same samples")
    failures = []
    for ck in demo_checkpoints():
        lm = load_model(ck)
        enc = engine.encode_dataset(lm.model, lm.representation, ds)
        book = sources.TrajectoryBook(enc, lm.representation, ds, input_shape=lm.model.input_shape)
        trs = [book.point(ia), book.point(ib)]
        wps = [Waypoint.make("point", enc.clip_codes[i], np.zeros(2), label=names[i], clip=i) for i in (ia, ib)]
        path = MorphPath(waypoints=wps, params=MorphParams(n_steps=args.steps, crossfade=0.5))
        kw = dict(latent_shape=enc.latent_shape, layout=enc.layout, trajectories=trs)

        def after() -> tuple[list, np.ndarray]:
            r = render.render_path(lm.model, lm.representation, path, **kw)
            return r.steps, r.morph

        def old() -> tuple[list, np.ndarray]:
            return before(lm.model, lm.representation, path, **kw)

        after()  # warm-up: numba's compiled kernels, first allocations
        t_old, t_new, c_old, c_new, same = [], [], [], [], True
        for _ in range(args.repeats):  # interleaved, so both see the same load
            dt, ct, s0, m0 = timed(old)
            t_old.append(dt)
            c_old.append(ct)
            dt, ct, s1, m1 = timed(after)
            t_new.append(dt)
            c_new.append(ct)
            same &= all(np.array_equal(a, b) for a, b in zip(s0, s1)) and np.array_equal(m0, m1)
        audio = (sum(len(s) for s in s1) + len(m1)) / lm.representation.sample_rate
        b, a = float(np.median(t_old)), float(np.median(t_new))
        cb, ca = float(np.median(c_old)), float(np.median(c_new))
        print(f"{ck.stem:18s} {audio:8.1f} {b:9.2f} {a:8.2f} {audio / b:8.1f}x {audio / a:7.1f}x {b / a:7.2f}x "
              f"{audio / cb:8.1f}x {audio / ca:8.1f}x {os.getloadavg()[0]:5.1f}  "
              f"{'bit for bit' if same else 'DIFFERENT'}")
        if audio / a < GOAL:
            failures.append(f"{ck.stem} {audio / a:.1f}x < {GOAL:.0f}x")
        if not same:
            failures.append(f"{ck.stem}: the render's samples changed")
    if failures:
        print("verdict: FAIL " + "; ".join(failures))
    else:
        print(f"verdict: PASS every demo model renders a {args.steps}-step morph at >= {GOAL:.0f}x real time, "
              "same samples as before")


if __name__ == "__main__":
    main()
