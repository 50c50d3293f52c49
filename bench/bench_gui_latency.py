"""GUI-thread latency of the real window: idle, t-SNE, training, both, both + hot reload.

A 10 ms precise QTimer on the GUI thread records how late each tick fires; a stall is that
lateness. Everything goes through the window's own paths: ``MainWindow.project`` on its
``TaskRunner`` (t-SNE), the trainer panel's ``latent-trainer`` child process (training, one
progress event per step, so far more events than a real run sends), and the panel's
``reload_checkpoint`` (load + encode + stable t-SNE). Scenarios run one after the other in one
process, measured inside a ``QEventLoop`` (``processEvents`` in a loop would hide stalls), and
are shown side by side with their ratio to the idle baseline, which says how loaded the machine
itself is. Target: no stall over 50 ms.

Setup (not measured): synthetic tones, a tiny ``roche-deep-ae`` trained until its first best
checkpoint is reloaded, then stopped; one map point per frame (16 clips: 2016 points).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui_latency.py [--clips 16] [--tsne-iter 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGET_MS = 50.0


def make_tones(root: Path, n: int, sr: int = 8000) -> Path:
    """``n`` short tones of four pitch classes (8 kHz WAVs), like the tests' data."""
    from models.audio import save_wav

    t = np.arange(2000) / sr
    for k in range(n):
        cls, f = [("low", 220.0), ("mid", 660.0), ("high", 1500.0), ("higher", 2500.0)][k % 4]
        (root / cls).mkdir(parents=True, exist_ok=True)
        y = 0.5 * np.sin(2 * np.pi * f * (1 + 0.003 * k) * t) * np.linspace(1.0, 0.2, len(t))
        save_wav(root / cls / f"{cls}_{k:03d}.wav", y.astype(np.float32), sr=sr)
    return root


def measure(start: Callable[[], None], done: Callable[[], bool], *, min_s: float, max_s: float) -> dict:
    """Run the GUI event loop from ``start()`` until ``done()`` (at least ``min_s``); tick lateness stats."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    loop = QEventLoop()
    ticks: list[float] = []
    tick = QTimer()
    tick.setTimerType(Qt.TimerType.PreciseTimer)
    tick.setInterval(10)
    tick.timeout.connect(lambda: ticks.append(time.perf_counter()))
    t0 = time.perf_counter()

    def check() -> None:
        el = time.perf_counter() - t0
        if (el >= min_s and done()) or el > max_s:
            loop.quit()

    watch = QTimer()
    watch.timeout.connect(check)
    tick.start()
    watch.start(50)
    QTimer.singleShot(0, start)  # started inside the loop, so its own cost on the GUI thread counts
    loop.exec()
    tick.stop()
    watch.stop()
    late = np.maximum(np.diff(np.asarray(ticks)) - 0.010, 0.0) * 1000
    return {"s": time.perf_counter() - t0, "ticks": len(late), "p50": float(np.percentile(late, 50)),
            "p99": float(np.percentile(late, 99)), "max": float(late.max()),
            "over": float((late > TARGET_MS).mean()), "load": os.getloadavg()[0], "timed_out": time.perf_counter() - t0 > max_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16, help="126 frames each: 16 clips give 2016 map points")
    ap.add_argument("--tsne-iter", type=int, default=500)
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--baseline", action="store_true",
                    help="t-SNE on the worker thread, no warm-up (how the app ran before child-process t-SNE)")
    args = ap.parse_args()
    if args.baseline:
        os.environ["LATENT_EXPLORER_TSNE_INLINE"] = "1"

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.sound.audio_out import RecordingSink
    from explorer.window.main_window import MainWindow
    from explorer.training.trainer_panel import CLOSE_STOP
    from explorer.core.training_runs import TrainSpec
    from explorer.window.workers import warm_up

    app = QApplication.instance() or QApplication(sys.argv)
    if not args.baseline:
        warm_up()  # what explorer.app does before the window shows
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    data = make_tones(tmp / "data", args.clips)
    w = MainWindow(audio=RecordingSink(), settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    w.controller.tsne_params = {"n_iter": args.tsne_iter, "early_exaggeration_iter": 250}
    panel = w.trainer_panel
    panel.ask_close = lambda n: CLOSE_STOP
    w.show()

    def pump_until(cond: Callable[[], bool], what: str) -> None:
        print(f"setup: waiting for {what}…", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        while not cond():
            app.processEvents()
            time.sleep(0.005)  # setup only, not measured
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"timed out waiting for {what} (last error: {w.last_error})")

    # --- setup: a model from a real run, a map of frames ------------------------------------------
    w.open_dataset(data)
    pump_until(lambda: w.controller.dataset is not None, "the dataset")
    panel.auto_reload.setChecked(True)
    run_dir = str(tmp / "run")
    spec = TrainSpec(run_dir=run_dir, data=str(data), preset="roche-deep-ae", tiny=True, device="cpu",
                     overrides=("train.log_every=1", "train.epochs=100000", "train.patience=0"),
                     cache_dir=str(tmp / "cache"))
    rec = panel.start_run(spec)
    pump_until(lambda: panel.last_reload is not None and not w.runner.running(), "the first reload")
    panel.auto_reload.setChecked(False)  # reloads are measured as their own scenario
    panel.stop_run(run_dir)
    pump_until(lambda: not rec.active, "the run to stop")
    w.set_point_mode("frame")  # one point per frame: thousands of points for t-SNE (PCA first)
    pump_until(lambda: not w.runner.running(), "the PCA map of frames")
    n_points = len(w.controller.map_codes()[0])
    checkpoint = rec.best_checkpoint
    idle = lambda: not w.runner.running()  # noqa: E731

    results: dict[str, dict] = {}
    print("measuring: idle…", file=sys.stderr, flush=True)
    results["idle"] = measure(lambda: None, lambda: True, min_s=args.idle_s, max_s=args.timeout)
    print("measuring: t-SNE…", file=sys.stderr, flush=True)
    results["t-SNE"] = measure(lambda: w.project("tsne"), idle, min_s=0.5, max_s=args.timeout)
    tsne_s = results["t-SNE"]["s"]
    print("measuring: training…", file=sys.stderr, flush=True)
    step0 = rec.step
    results["training"] = measure(lambda: panel.resume_run(run_dir), lambda: rec.step > step0,
                                  min_s=max(tsne_s, args.idle_s), max_s=args.timeout)
    print("measuring: training + t-SNE…", file=sys.stderr, flush=True)
    results["training + t-SNE"] = measure(lambda: w.project("tsne"), idle, min_s=0.5, max_s=args.timeout)
    print("measuring: training + hot reload…", file=sys.stderr, flush=True)
    results["training + reload"] = measure(lambda: panel.reload_checkpoint(run_dir, checkpoint), idle,
                                           min_s=0.5, max_s=args.timeout)
    steps = rec.step - step0
    panel.stop_run(run_dir)
    pump_until(lambda: not rec.active, "the run to stop")
    w.close()

    base = results["idle"]
    print(f"\n{n_points} map points; t-SNE {args.tsne_iter} + 250 iterations; training: {steps} steps "
          "while measured, one progress event each; reload = load + encode + stable t-SNE")
    print(f"{'scenario':<20} {'s':>6} {'ticks':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>50ms':>6} "
          f"{'p99/idle':>8} {'max/idle':>8} {'load':>5}")
    for name, r in results.items():
        print(f"{name:<20} {r['s']:6.1f} {r['ticks']:6d} {r['p50']:7.1f} {r['p99']:7.1f} {r['max']:7.1f} "
              f"{100 * r['over']:5.1f}% {r['p99'] / max(base['p99'], 0.1):8.1f} {r['max'] / max(base['max'], 0.1):8.1f} "
              f"{r['load']:5.1f}" + ("  (timed out)" if r["timed_out"] else ""))
    worst = max(r["max"] for r in results.values())
    print(f"worst stall {worst:.1f} ms (target < {TARGET_MS:.0f} ms): {'OK' if worst < TARGET_MS else 'OVER'}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # skip the interpreter's final garbage collection of Qt wrappers, which can abort
    # (PySide6 "none_dealloc") after the results are printed
    os._exit(code)
