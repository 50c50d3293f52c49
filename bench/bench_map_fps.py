"""Pan/zoom frames per second with 100,000 points in the real map: spots only vs level of detail.

A t-SNE-like layout (20 classes as Gaussian blobs of uneven size) in the app's ``MapView`` (a
``Controller`` holding a synthetic dataset, encoding and embedding), 1200 x 800 pixels, offscreen.
A scripted sequence changes the view range every frame (pans and zooms over the whole map, then a
pan and zoom close in, where few spots are in the view); a frame is the range change, its signals
and the repaint (``QApplication.processEvents``; the paints are counted, one per frame).

Two paths, run side by side with interleaved repeats, medians per frame:

* old: the scatter draws every spot on every frame (``set_level_of_detail(None)``);
* new: past ``LOD_POINTS`` shown spots in the view, a density image of them instead
  (:mod:`explorer.map.density`); close in, the spots.

OpenGL is checked and reported (offscreen Qt has none here, so both paths are software raster).
Prints a verdict last (goal: >= 30 fps in every part of the sequence on the new path).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_map_fps.py [--points 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

GOAL_FPS = 30.0


def layout(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """20 blobs of uneven size and weight, as in bench/bench_hit_index.py."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(20))
    cls = rng.choice(20, size=n, p=weights)
    centres = rng.uniform(-40, 40, (20, 2))
    spread = rng.uniform(1.0, 6.0, 20)
    return centres[cls] + rng.normal(size=(n, 2)) * spread[cls, None], cls


def synthetic_controller(n: int):  # noqa: ANN201 - a Controller
    """A controller showing ``n`` points in 20 classes, through its own public setters."""
    from explorer.core.controller import Controller
    from models.datasets.base import Clip, Dataset
    from models.inference.encode import Encoding
    from models.mapping.projection import Embedding

    class Layout(Embedding):
        method = "pca"

    pts, cls = layout(n)
    clips = [Clip(path=Path(f"/synthetic/{i}.wav"), name=f"{i}.wav", labels={"class": f"class {c:02d}"})
             for i, c in enumerate(cls)]
    ds = Dataset(root=Path("/synthetic"), kind="folder", clips=clips, label_fields=("class",),
                 default_label="class", group_key=None, sample_rate=16000)
    c = Controller()
    c.set_dataset(ds)
    codes = np.c_[pts, np.zeros(n)]
    c.show_descriptors(Encoding(clip_codes=codes, frame_codes=codes, frame_clip=np.arange(n),
                                frame_index=np.zeros(n, int), latent_shape=(3,), layout="clips"))
    c.set_embedding(Layout(pts, codes))
    return c


class _PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt override
        if ev.type() == QEvent.Type.Paint:
            self.n += 1
        return False


def sequence(full: tuple[tuple[float, float], tuple[float, float]]) -> dict[str, list[tuple]]:
    """View ranges per part of the script: whole map (pan, zoom out and in), then close in."""
    (x0, x1), (y0, y1) = full
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0

    def at(dx: float, dy: float, s: float) -> tuple:
        return ((cx + dx - s * w / 2, cx + dx + s * w / 2), (cy + dy - s * h / 2, cy + dy + s * h / 2))

    far = [at(0.3 * w * np.sin(k / 6), 0.2 * h * np.cos(k / 7), 1.0) for k in range(30)]
    far += [at(0, 0, 1.0 * 0.97**k) for k in range(20)] + [at(0, 0, 0.97**20 / 0.97**k) for k in range(20)]
    near = [at(-0.05 * w + 0.004 * w * k, -0.1 * h, 0.1) for k in range(25)]
    near += [at(-0.05 * w, -0.1 * h, 0.1 * 0.97**k) for k in range(20)]
    return {"whole map (pan, zoom)": far, "close in (pan, zoom)": near}


def run_part(app: QApplication, view, ranges: list[tuple],  # noqa: ANN001 - a MapView
             counter: _PaintCounter) -> tuple[list[float], int, int]:
    times, far = [], 0
    painted = counter.n
    for xr, yr in ranges:
        t0 = time.perf_counter()
        view.vb.setRange(xRange=xr, yRange=yr, padding=0)
        app.processEvents()
        times.append(time.perf_counter() - t0)
        far += view.density_shown
    return times, counter.n - painted, far


def opengl_available() -> str:
    from PySide6.QtGui import QOpenGLContext

    ctx = QOpenGLContext()
    return "yes" if ctx.create() else f"no (platform {QApplication.platformName()!r} gives no OpenGL context)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    from explorer.map.map_view import LOD_POINTS, MapView

    t0 = time.perf_counter()
    c = synthetic_controller(args.points)
    view = MapView(c)
    view.resize(1200, 800)
    view.set_hint(None)  # as the window does once a map is shown
    view.show()
    app.processEvents()
    t1 = time.perf_counter()
    view.refresh()
    app.processEvents()
    t_refresh = time.perf_counter() - t1
    counter = _PaintCounter()
    view.plot.viewport().installEventFilter(counter)
    parts = sequence(view.vb.viewRange())
    paths = {"old (spots only)": None, "new (level of detail)": LOD_POINTS}
    times = {(p, k): [] for p in paths for k in parts}
    paints = {p: [0, 0] for p in paths}
    far_frames = {(p, k): 0 for p in paths for k in parts}
    for rep in range(args.repeats):
        order = list(paths) if rep % 2 == 0 else list(paths)[::-1]
        for p in order:
            view.set_level_of_detail(paths[p])
            for k, ranges in parts.items():
                ts, n_paint, far = run_part(app, view, ranges, counter)
                times[(p, k)] += ts[2:]  # the first frames of a part jump there: not a pan step
                paints[p][0] += n_paint
                paints[p][1] += len(ranges)
                far_frames[(p, k)] = far
    load = os.getloadavg()
    print(f"{args.points} points, 20 classes, MapView 1200 x 800 offscreen; set up {t1 - t0:.1f} s, "
          f"refresh {t_refresh * 1e3:.0f} ms; {args.repeats} interleaved repeats")
    print(f"OpenGL: {opengl_available()}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on "
          f"{os.cpu_count()} cores (shared with other agents: absolute numbers vary, the ratio less)")
    print(f"level of detail: density image past {LOD_POINTS} shown spots in the view")
    print(f"{'path':<24}{'part':<24}{'frames':>7}{'median ms':>11}{'p90 ms':>9}{'fps':>7}{'density':>9}")
    fps = {}
    for (p, k), ts in times.items():
        med = float(np.median(ts))
        fps[(p, k)] = 1.0 / med
        print(f"{p:<24}{k:<24}{len(ts):>7}{med * 1e3:>11.1f}{np.percentile(ts, 90) * 1e3:>9.1f}"
              f"{fps[(p, k)]:>7.1f}{far_frames[(p, k)]:>5}/{len(parts[k])}")
    for p, (n_paint, n_frames) in paints.items():
        print(f"{p}: {n_paint} paints for {n_frames} frames")
    new = {k: fps[("new (level of detail)", k)] for k in parts}
    old = {k: fps[("old (spots only)", k)] for k in parts}
    worst = min(new, key=new.get)
    n_paint, n_frames = paints["new (level of detail)"]
    ok = all(v >= GOAL_FPS for v in new.values()) and n_paint >= n_frames
    whole = "whole map (pan, zoom)"
    print(f"verdict: {'PASS' if ok else 'FAIL'}: {new[worst]:.1f} fps at worst ({worst}) with {args.points} points "
          f"(goal >= {GOAL_FPS:g}); whole map {new[whole]:.1f} fps vs {old[whole]:.1f} spots only "
          f"({new[whole] / old[whole]:.1f}x)")


if __name__ == "__main__":
    main()
