"""GUI-thread latency while a real training run and a t-SNE run are in progress (issue 8).

A 10 ms QTimer on the GUI thread records how late each tick fires; a stall is that lateness.
The window trains ``roche-deep-ae`` (tiny) on synthetic tones through the trainer panel (a
child process, one progress event per step), waits for its first best checkpoint to be
reloaded as the app's model, then projects one point per frame with t-SNE on a worker while
the training goes on. Target: max stall < 50 ms.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui_latency.py [--clips 16] [--tsne-iter 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16, help="126 frames each: 16 clips give 2016 map points")
    ap.add_argument("--tsne-iter", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.audio_out import RecordingSink
    from explorer.main_window import MainWindow
    from explorer.trainer_panel import CLOSE_STOP
    from explorer.training_runs import TrainSpec

    app = QApplication.instance() or QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    data = make_tones(tmp / "data", args.clips)
    w = MainWindow(audio=RecordingSink(), settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    w.controller.tsne_params = {"n_iter": args.tsne_iter, "early_exaggeration_iter": 250}
    panel = w.trainer_panel
    panel.ask_close = lambda n: CLOSE_STOP
    w.show()

    def pump_until(cond, what: str) -> None:
        print(f"waiting for {what}…", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        while not cond():
            app.processEvents()
            time.sleep(0.005)  # the bench's own waiting loop, not a test
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"timed out waiting for {what} (last error: {w.last_error})")

    w.open_dataset(data)
    pump_until(lambda: w.controller.dataset is not None, "the dataset")
    panel.auto_reload.setChecked(True)
    spec = TrainSpec(run_dir=str(tmp / "run"), data=str(data), preset="roche-deep-ae", tiny=True, device="cpu",
                     overrides=("train.log_every=1", "train.epochs=100000", "train.patience=0"),
                     cache_dir=str(tmp / "cache"))
    rec = panel.start_run(spec)
    pump_until(lambda: panel.last_reload is not None and not w.runner.running(), "the first reload")
    panel.auto_reload.setChecked(False)  # measure training + t-SNE, not a stream of reloads

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    step0, t0 = rec.step, time.perf_counter()
    timer.start()
    w.controller.method = "tsne"
    w.set_point_mode("frame")  # one point per frame: thousands of points for t-SNE
    n_points = len(w.controller.map_codes()[0])
    pump_until(lambda: w.runner.is_running("project"), "t-SNE to start")
    # exec the real event loop (processEvents in a loop would hide stalls between calls)
    done = QTimer()
    done.timeout.connect(lambda: app.quit() if not w.runner.is_running("project")
                         or time.perf_counter() - t0 > args.timeout else None)
    done.start(50)
    app.exec()
    timer.stop()
    elapsed = time.perf_counter() - t0
    steps = rec.step - step0
    late = np.maximum(np.diff(np.asarray(ticks)) - 0.010, 0.0) * 1000
    w.close()
    print(f"t-SNE of {n_points} points ({args.tsne_iter} + 250 iterations) and training "
          f"({steps} steps, {steps / elapsed:.0f} steps/s, one progress event each) for {elapsed:.1f} s")
    print(f"GUI ticks: {len(late)}; stall p50 {np.percentile(late, 50):.1f} ms, p99 {np.percentile(late, 99):.1f} ms, "
          f"max {late.max():.1f} ms (target < 50 ms): {'OK' if late.max() < 50 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
