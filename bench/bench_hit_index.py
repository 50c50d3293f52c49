"""Hover / click hit-test at 100,000 map points: the KD-tree index against measuring every point.

A t-SNE-like layout (20 classes as Gaussian blobs of uneven size, 100,000 points) seen whole in a
1000 x 700 pixel view, one class hidden; queries at random positions, half of them on points.
Side by side, repeats interleaved, medians (and the 99th percentile) per query:

* today's path: every point's class name rebuilt (``Controller.point_labels`` makes one Python
  string per point), hidden classes found with ``np.isin``, every point's screen distance;
* every point's screen distance with the visibility already a boolean array;
* :class:`explorer.core.hit_index.HitIndex` (its tree built once for the layout, timed apart).

All three must give the same answers. Prints a verdict last (goal: <= 1 ms per query).

    .venv/bin/python bench/bench_hit_index.py [--points 100000] [--queries 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from explorer.core.hit_index import HitIndex

GOAL_MS = 1.0
RADIUS_PX = 6.0


def layout(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(20))
    cls = rng.choice(20, size=n, p=weights)
    centres = rng.uniform(-40, 40, (20, 2))
    spread = rng.uniform(1.0, 6.0, 20)
    return centres[cls] + rng.normal(size=(n, 2)) * spread[cls, None], cls


def todays(points: np.ndarray, values: list[str], clip_of_point: np.ndarray, hidden: set[str],
           x: float, y: float, pixel: tuple[float, float]) -> int | None:
    labels = np.array([str(values[c]) for c in clip_of_point], dtype=object)
    visible = ~np.isin(labels, list(hidden))
    return every_point(points, visible, x, y, pixel)


def every_point(points: np.ndarray, visible: np.ndarray, x: float, y: float, pixel: tuple[float, float]) -> int | None:
    d2 = ((points[:, 0] - x) / pixel[0]) ** 2 + ((points[:, 1] - y) / pixel[1]) ** 2
    d2[~visible] = np.inf
    i = int(np.argmin(d2))
    return i if d2[i] <= RADIUS_PX**2 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    pts, cls = layout(args.points)
    values = [f"class {c}" for c in cls]  # one label per clip; one point per clip here
    clip_of_point = np.arange(len(pts))
    hidden = {"class 3"}
    visible = cls != 3
    span = pts.max(0) - pts.min(0)
    pixel = (float(span[0] / 1000), float(span[1] / 700))
    rng = np.random.default_rng(1)
    on_points = pts[rng.integers(0, len(pts), args.queries // 2)] + rng.normal(0, 2 * pixel[0], (args.queries // 2, 2))
    anywhere = rng.uniform(pts.min(0), pts.max(0), (args.queries - len(on_points), 2))
    queries = np.concatenate([on_points, anywhere])

    index = HitIndex(pts)
    t0 = time.perf_counter()
    index.nearest(*queries[0], pixel_size=pixel, radius_px=RADIUS_PX, visible=visible)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.nearest(*queries[0], pixel_size=pixel, radius_px=RADIUS_PX, visible=visible)  # builds the tree
    t_build = time.perf_counter() - t0
    assert index.indexed

    methods = {
        "today (labels rebuilt, every point)": lambda q: todays(pts, values, clip_of_point, hidden, q[0], q[1], pixel),
        "every point, visibility array": lambda q: every_point(pts, visible, q[0], q[1], pixel),
        "HitIndex (KD-tree)": lambda q: index.nearest(q[0], q[1], pixel_size=pixel, radius_px=RADIUS_PX,
                                                      visible=visible),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    answers: dict[str, list[int | None]] = {k: [] for k in methods}
    slow_queries = queries[: max(10, args.queries // 10)]  # today's path is slow: fewer of its queries
    for rep in range(args.repeats):
        order = list(methods) if rep % 2 == 0 else list(methods)[::-1]
        for name in order:
            qs = slow_queries if name.startswith("today") else queries
            for q in qs:
                t0 = time.perf_counter()
                got = methods[name](q)
                times[name].append(time.perf_counter() - t0)
                if rep == 0:
                    answers[name].append(got)
    n_slow = len(slow_queries)
    assert answers["every point, visibility array"][:n_slow] == answers["today (labels rebuilt, every point)"]
    assert answers["HitIndex (KD-tree)"] == answers["every point, visibility array"]
    hits = sum(a is not None for a in answers["HitIndex (KD-tree)"])
    print(f"{len(pts)} points, {len(queries)} queries ({hits} on a point), 1 of 20 classes hidden, "
          f"radius {RADIUS_PX:g} px; {args.repeats} interleaved repeats")
    print(f"{'method':<40}{'median ms':>11}{'p99 ms':>9}{'vs index':>10}")
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    for name, ts in times.items():
        print(f"{name:<40}{med[name]:>11.3f}{np.percentile(ts, 99) * 1e3:>9.3f}"
              f"{med[name] / med['HitIndex (KD-tree)']:>9.0f}x")
    print(f"HitIndex: first query on a new layout (no tree) {t_first * 1e3:.2f} ms; "
          f"second query, building the tree, {t_build * 1e3:.1f} ms")
    got = med["HitIndex (KD-tree)"]
    ok = got <= GOAL_MS and np.percentile(times["HitIndex (KD-tree)"], 99) * 1e3 <= 5 * GOAL_MS
    print(f"verdict: {'PASS' if ok else 'FAIL'}: hit-test {got:.3f} ms per query at {len(pts)} points "
          f"(goal <= {GOAL_MS:g} ms; today {med['today (labels rebuilt, every point)']:.1f} ms, "
          f"{med['today (labels rebuilt, every point)'] / got:.0f}x slower)")


if __name__ == "__main__":
    main()
