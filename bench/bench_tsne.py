"""t-SNE of 10,000 codes: the app's path against openTSNE's own fit, side by side.

The codes are real: the bundled Colonel model's frame codes of the demo notes (encoded through
the feature cache), 10,000 of them drawn with a fixed seed. Both runs use the same parameters
(the app's: perplexity 30, 250 early-exaggeration and 500 iterations, every core):

* openTSNE's own fit: ``openTSNE.TSNE(...).fit(X)`` in this process;
* the app's path: ``TSNEProjector().fit(X, callback=...)``, openTSNE in a child process from the
  fork server (started beforehand, as the app does at start-up), partial layouts streamed back.

Repeats are interleaved, medians taken. Reported: total time and its ratio, when the first
layout reaches the callback (the map can draw it), when openTSNE's first partial arrives (after
the neighbour search), the gaps between partials after that, and how far the two final
layouts are apart (they start from the same initialisation). Prints a verdict last.

    .venv/bin/python bench/bench_tsne.py [--points 10000] [--repeats 2] [--n-iter 500] [--ee-iter 250]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.pop("LATENT_EXPLORER_TSNE_INLINE", None)

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "notes"
RATIO_GOAL = 1.0
FIRST_GOAL_S = 2.0


def demo_codes(n: int) -> np.ndarray:
    """``n`` frame codes [shape=(n, 32)] of the demo notes under the Colonel model (seeded draw)."""
    import tempfile

    import torch

    from models.checkpoints.checkpoint import load_checkpoint
    from models.datasets import open_dataset
    from models.datasets.feature_cache import FeatureCache
    from models.inference import engine
    from models.representations import representation_from_dict

    torch.set_num_threads(1)
    ds = open_dataset(DEMO / "dataset")
    ckpt = load_checkpoint(DEMO / "checkpoints" / "colonel-notes.safetensors")
    rep = representation_from_dict(dict(ckpt.representation))
    with tempfile.TemporaryDirectory() as root:
        fs = FeatureCache(root).features(ds, rep)
        enc = engine.encode_dataset(ckpt.model, rep, ds, features=engine.features_by_clip(fs, len(ds.clips)))
    codes = enc.frame_codes
    pick = np.sort(np.random.default_rng(0).choice(len(codes), size=min(n, len(codes)), replace=False))
    return np.ascontiguousarray(codes[pick])


def own_fit(X: np.ndarray, args: argparse.Namespace, n_jobs: int) -> tuple[float, np.ndarray]:
    import openTSNE

    t0 = time.perf_counter()
    emb = openTSNE.TSNE(perplexity=30.0, n_iter=args.n_iter, early_exaggeration_iter=args.ee_iter,
                        random_state=0, n_jobs=n_jobs).fit(X)
    return time.perf_counter() - t0, np.asarray(emb)


def app_fit(X: np.ndarray, args: argparse.Namespace) -> dict[str, object]:
    from models.mapping.projection import TSNEProjector

    arrivals: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    emb = TSNEProjector(n_iter=args.n_iter, early_exaggeration_iter=args.ee_iter).fit(
        X, callback=lambda it, pts: arrivals.append((it, time.perf_counter() - t0)))
    total = time.perf_counter() - t0
    times = [t for it, t in arrivals if it > 0]
    gaps = np.diff(times) if len(times) > 1 else np.zeros(1)
    return {"total": total, "first": arrivals[0][1], "first_it": arrivals[0][0],
            "first_tsne": times[0] if times else float("nan"), "gap_median": float(np.median(gaps)),
            "gap_max": float(np.max(gaps)), "partials": len(arrivals), "points": emb.points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-iter", type=int, default=500)
    ap.add_argument("--ee-iter", type=int, default=250)
    args = ap.parse_args()

    from models.mapping import tsne_job
    from models.threads import cpu_count

    X = demo_codes(args.points)
    n_jobs = cpu_count()
    tsne_job.prewarm()  # the app starts the fork server at start-up
    tsne_job.run_in_child("restore", {"X": X[:50], "points": np.zeros((50, 2)), "perplexity": 5.0,
                                      "random_state": 0, "n_jobs": 1})  # fork server up and warm
    print(f"{len(X)} codes of {X.shape[1]} dims (Colonel demo frames); n_jobs={n_jobs}; "
          f"{args.ee_iter}+{args.n_iter} iterations; {args.repeats} interleaved repeats, medians; "
          f"load average {os.getloadavg()[0]:.1f} on {cpu_count()} cores")
    own_t: list[float] = []
    own_layouts: list[np.ndarray] = []
    app_rows: list[dict[str, object]] = []
    own_pts = app_pts = None
    for rep in range(args.repeats):
        for which in ("own", "app") if rep % 2 == 0 else ("app", "own"):
            if which == "own":
                t, own_pts = own_fit(X, args, n_jobs)
                own_t.append(t)
                own_layouts.append(own_pts)
                print(f"  openTSNE's own fit: {t:.1f} s")
            else:
                row = app_fit(X, args)
                app_rows.append(row)
                app_pts = row["points"]
                print(f"  app path: {row['total']:.1f} s (first layout {row['first']:.3f} s)")
    med = lambda key: statistics.median(float(r[key]) for r in app_rows)  # noqa: E731
    t_own, t_app = statistics.median(own_t), med("total")
    assert own_pts is not None and app_pts is not None
    spread = float(np.std(own_pts))
    diff = float(np.abs(np.asarray(app_pts) - own_pts).max()) / spread
    print(f"{'':<36}{'seconds':>10}")
    print(f"{'openTSNE own fit, total':<36}{t_own:>10.2f}")
    print(f"{'app path, total':<36}{t_app:>10.2f}   ratio {t_app / t_own:.3f}x (goal <= {RATIO_GOAL:g}x)")
    print(f"{'app path, first layout shown':<36}{med('first'):>10.3f}   (iteration {app_rows[0]['first_it']}, "
          f"goal <= {FIRST_GOAL_S:g} s)")
    print(f"{'app path, first openTSNE partial':<36}{med('first_tsne'):>10.2f}   (after the neighbour search)")
    print(f"{'app path, gap between partials':<36}{med('gap_median'):>10.3f}   median; longest {med('gap_max'):.3f} s, "
          f"{app_rows[0]['partials']} partials")
    # openTSNE on several threads sums in a varying order: over hundreds of iterations two of its
    # own runs drift apart too, which is the yardstick for the app's layout
    own_diff = (float(np.abs(own_layouts[-1] - own_layouts[0]).max()) / spread) if len(own_layouts) > 1 else 0.0
    print(f"largest point distance, in units of the layout's spread: app vs openTSNE {diff:.2e}; "
          f"openTSNE vs itself (two runs) {own_diff:.2e}")
    ok = t_app / t_own <= RATIO_GOAL and med("first") <= FIRST_GOAL_S
    print(f"verdict: {'PASS' if ok else 'FAIL'}: app path {t_app / t_own:.3f}x openTSNE's own fit "
          f"({t_app:.1f} s vs {t_own:.1f} s, goal <= {RATIO_GOAL:g}x); first layout on screen after "
          f"{med('first'):.3f} s (goal <= {FIRST_GOAL_S:g} s)")


if __name__ == "__main__":
    main()
