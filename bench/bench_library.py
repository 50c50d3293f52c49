"""A 20,000-note library: built, encoded, mapped and played the way the app does it.

Builds an NSynth-style dataset with ``latent-trainer dataset build notes`` (FluidSynth, about
2 ms a note; kept under ``--data-dir`` and reused, a temporary folder by default), takes its
first ``--clips`` notes, and encodes them with a demo frame model through the app's own path
(``Controller.encode_task`` with an empty feature cache, partial encodings placed on the map with
``Controller.set_partial_encoding`` as the window does). Then a PCA map (and a t-SNE one inside
``--tsne-budget`` seconds), and one click decoded (``Controller.decode_task``).

Prints: time to the first points on the map, total encode time, peak resident memory
(``resource.getrusage``: the whole process, the model and the libraries included), memory per
clip beyond the codes (the peak resident memory's rise during the encode, less the codes
returned, per clip: an upper bound, since the allocator keeps freed memory), the map and click
times, and a verdict last. A warm-up encode of a few clips first (imports, first calls), as the
app has done its imports before a dataset opens. The machine is shared with other work: times
vary with its load, printed with them.

    .venv/bin/python bench/bench_library.py [--clips 20000] [--data-dir DIR] [--model colonel-notes]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer.core.controller import Controller, load_model
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.inference.encode import NullState
from models.mapping.projection import TSNEProjector
from models.mapping.tsne_job import TSNEInterrupted

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "notes"
FIRST_POINTS_GOAL_S = 3.0
MEMORY_GOAL_GB = 24.0
MEMORY_MARGIN = 0.5  # "with margin": at most half of it
MB_PER_CLIP_GOAL = 0.1
PITCHES = (21, 108)
VELOCITIES = (100, 70, 40)


def build_library(n_clips: int, data_dir: Path) -> Path:
    """The notes folder for ``n_clips`` (a little more: silent renders are skipped), built once."""
    per_program = (PITCHES[1] - PITCHES[0] + 1) * len(VELOCITIES)
    n_programs = min(120, math.ceil(1.2 * n_clips / per_program))
    out = data_dir / f"notes-p{n_programs}"
    if (out / "examples.json").exists():
        return out
    cli = Path(sys.executable).with_name("latent-trainer")
    cmd = [str(cli), "dataset", "build", "notes", "--out", str(out), "--force",
           "--programs", f"0-{n_programs - 1}", "--pitches", f"{PITCHES[0]}-{PITCHES[1]}",
           "--velocities", *map(str, VELOCITIES)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"built {out} in {time.perf_counter() - t0:.1f} s: {' '.join(cmd[1:])}")
    return out


def resident_bytes() -> int:
    """This process's resident memory now (Linux: /proc/self/statm)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Clock(NullState):
    """The window's side of an encode: places each partial encoding on the map, times the first."""

    def __init__(self, c: Controller, key: str) -> None:
        self.c, self.key, self.t0 = c, key, time.perf_counter()
        self.first_points: float | None = None
        self.n_partials, self.place_s = 0, 0.0

    def partial(self, result) -> None:  # noqa: ANN001
        t = time.perf_counter()
        self.c.set_partial_encoding(self.key, result)
        self.place_s += time.perf_counter() - t
        self.n_partials += 1
        if self.first_points is None and len(self.c.points):
            self.first_points = time.perf_counter() - self.t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20000)
    ap.add_argument("--data-dir", type=Path, default=None, help="where the built notes are kept (a temp folder)")
    ap.add_argument("--model", default="colonel-notes", help="a demo checkpoint (a frame model)")
    ap.add_argument("--tsne-budget", type=float, default=120.0, help="seconds a t-SNE may run (0: none)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-library-"))
    try:
        data_dir = args.data_dir or tmp
        data_dir.mkdir(parents=True, exist_ok=True)
        folder = build_library(args.clips, data_dir)
        full = open_dataset(folder)
        ds = dataclasses.replace(full, clips=full.clips[: args.clips], _fingerprint=None)
        n = len(ds.clips)
        print(f"{n} notes of {folder} (built {len(full.clips)}); model {args.model}; machine load "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared: times vary)")
        c = Controller(cache=FeatureCache(tmp / "cache"))
        c.set_dataset(ds, folder)
        lm = load_model(DEMO / "checkpoints" / f"{args.model}.safetensors")
        c.add_model(lm)
        warm = dataclasses.replace(ds, clips=ds.clips[:8], _fingerprint=None)
        c.encode_task(dataset=warm)(NullState())  # into the same cache: another key, not reused
        rss0 = resident_bytes()
        clock = Clock(c, lm.key)
        t0 = time.perf_counter()
        enc = c.encode_task()(clock)
        encode_s = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        codes_bytes = sum(a.nbytes for a in (enc.clip_codes, enc.frame_codes, enc.frame_clip, enc.frame_index))
        mb_per_clip = max(0, peak - rss0 - codes_bytes) / n / 1e6
        rss0 /= 1e9
        c.set_encoding(lm.key, enc)
        t0 = time.perf_counter()
        c.set_embedding(c.project_task("pca", init=c.fill_layout())(NullState()))
        pca_s = time.perf_counter() - t0
        tsne = "skipped"
        if args.tsne_budget > 0:
            t0 = time.perf_counter()

            class Budget(NullState):
                def should_stop(self) -> bool:
                    return time.perf_counter() - t0 > args.tsne_budget

            try:
                TSNEProjector().fit(c.map_codes()[0], should_stop=Budget().should_stop)
                tsne = f"{time.perf_counter() - t0:.1f} s"
            except TSNEInterrupted:
                tsne = f"not done in its {args.tsne_budget:g} s budget"
        c.select_point(0)
        t0 = time.perf_counter()
        dec = c.decode_task()(NullState())
        click_s = time.perf_counter() - t0
        y = np.asarray(dec.decoded.y)
        plays = bool(len(y) and np.isfinite(y).all() and np.abs(y).max() > 1e-4)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
        print(f"encode: {encode_s:.1f} s for {n} clips ({enc.frame_codes.shape[0]} frames, {int(enc.ok.sum())} "
              f"encoded, {len(enc.failed)} failed), {clock.n_partials} partial maps ({clock.place_s:.2f} s placing them)")
        first = clock.first_points if clock.first_points is not None else float("inf")
        print(f"first points on the map: {first:.2f} s (goal <= {FIRST_POINTS_GOAL_S:g} s)")
        print(f"memory: peak resident {peak_gb:.2f} GB (before encoding {rss0:.2f} GB; goal within "
              f"{MEMORY_GOAL_GB:g} GB with margin: <= {MEMORY_MARGIN * MEMORY_GOAL_GB:g} GB); codes "
              f"{codes_bytes / 1e6:.0f} MB; {mb_per_clip:.4f} MB per clip beyond them (goal <= {MB_PER_CLIP_GOAL:g})")
        print(f"map: PCA {pca_s:.2f} s; t-SNE {tsne}")
        print(f"click: clip 0 decoded in {click_s:.2f} s, {len(y)} samples, peak {np.abs(y).max():.3f}")
        ok = {"first points": first <= FIRST_POINTS_GOAL_S, "memory": peak_gb <= MEMORY_MARGIN * MEMORY_GOAL_GB,
              "MB per clip": mb_per_clip <= MB_PER_CLIP_GOAL, "click plays": plays}
        bad = [k for k, v in ok.items() if not v]
        print(f"verdict: {'PASS' if not bad else 'FAIL ' + ', '.join(bad)}: {n} clips, first points {first:.2f} s, "
              f"encode {encode_s:.0f} s, peak {peak_gb:.2f} GB, {mb_per_clip:.4f} MB/clip beyond the codes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
