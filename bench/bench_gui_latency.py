"""GUI-thread latency of the real window: idle, hover, t-SNE, training, both (demo model, 10k-point map).

A 10 ms precise QTimer on the GUI thread records how late each tick fires; a stall is that
lateness. Everything goes through the window's own paths: ``MainWindow.project`` on its
``TaskRunner`` (t-SNE), the trainer panel's ``latent-trainer`` child process (training, one
progress event per step, so far more events than a real run sends), and, with ``--data tones``,
the panel's ``reload_checkpoint`` (load + encode + stable t-SNE). Scenarios run one after the
other in one process, measured inside a ``QEventLoop`` (``processEvents`` in a loop would hide
stalls), and are shown side by side with the idle baseline, which says how loaded the machine
itself is. Target: no stall over 50 ms.

``--data demo`` (the default, what issue 15 measures): the bundled Colonel model
(resources/demo/notes) on 40 of the demo notes, one map point per frame (40 x 251 = 10,040
points); training fine-tunes that model on the same notes (``--init-from``); a scripted pointer
moves over the map's sounds at 60 moves a second (real mouse-move events into the plot's
viewport: the SignalProxy, hit-test and tooltip run as for a user), during every scenario named
"+ hover".

``--data tones`` (the old figure): 16 synthetic tones, a tiny ``roche-deep-ae`` trained until its
first best checkpoint is reloaded; one map point per frame (2016 points).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui_latency.py [--data demo] [--clips 40]
        [--tsne-iter 500] [--profile FILE]
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


DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "notes"


def make_demo_subset(root: Path, n: int) -> Path:
    """``n`` of the demo notes (every ``160 / n``-th, so families, pitches and velocities all appear), NSynth layout."""
    import json
    import shutil

    examples = json.loads((DEMO / "dataset" / "examples.json").read_text(encoding="utf-8"))
    keys = sorted(examples)
    pick = [keys[k] for k in np.linspace(0, len(keys) - 1, min(n, len(keys))).round().astype(int)]
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for k in pick:
        shutil.copyfile(DEMO / "dataset" / "audio" / f"{k}.wav", root / "audio" / f"{k}.wav")
    (root / "examples.json").write_text(json.dumps({k: examples[k] for k in pick}, indent=1), encoding="utf-8")
    return root


class StallSampler:
    """What the GUI thread runs while it is late: a watcher thread takes the GUI thread's Python stack
    when no tick came for ``after_ms``, once per stall (``sys._current_frames``, as py-spy would)."""

    def __init__(self, after_ms: float = 30.0) -> None:
        import threading

        self.after = after_ms / 1000
        self.gui = threading.get_ident()
        self.last = time.perf_counter()
        self.stacks: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def tick(self) -> None:
        self.last = time.perf_counter()

    def _watch(self) -> None:
        import traceback

        sampled = 0.0
        while not self._stop.wait(0.004):
            late = time.perf_counter() - self.last
            if late > self.after and sampled != self.last:
                sampled = self.last
                frame = sys._current_frames().get(self.gui)
                if frame is not None:
                    st = traceback.extract_stack(frame)[-14:]
                    key = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(st))
                    self.stacks.setdefault(key, []).append(late * 1000)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, top: int = 8) -> str:
        rows = sorted(self.stacks.items(), key=lambda kv: -len(kv[1]))[:top]
        return "\n".join(f"{len(v):4d} stalls (seen at {max(v):.0f} ms): {k}" for k, v in rows)


def measure(start: Callable[[], None], done: Callable[[], bool], *, min_s: float, max_s: float,
            hover: Callable[[], None] | None = None, sampler: StallSampler | None = None) -> dict:
    """Run the GUI event loop from ``start()`` until ``done()`` (at least ``min_s``); tick lateness stats.

    ``hover``, when given, is called every 16 ms (a pointer moving over the map)."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer

    loop = QEventLoop()
    ticks: list[float] = []
    tick = QTimer()
    tick.setTimerType(Qt.TimerType.PreciseTimer)
    tick.setInterval(10)

    def on_tick() -> None:
        ticks.append(time.perf_counter())
        if sampler is not None:
            sampler.tick()

    tick.timeout.connect(on_tick)
    t0 = time.perf_counter()

    def check() -> None:
        el = time.perf_counter() - t0
        if (el >= min_s and done()) or el > max_s:
            loop.quit()

    watch = QTimer()
    watch.timeout.connect(check)
    mover = QTimer()
    mover.setTimerType(Qt.TimerType.PreciseTimer)
    if hover is not None:
        mover.timeout.connect(hover)
        mover.start(16)
    tick.start()
    watch.start(50)
    QTimer.singleShot(0, start)  # started inside the loop, so its own cost on the GUI thread counts
    loop.exec()
    tick.stop()
    watch.stop()
    mover.stop()
    late = np.maximum(np.diff(np.asarray(ticks)) - 0.010, 0.0) * 1000
    return {"s": time.perf_counter() - t0, "ticks": len(late), "p50": float(np.percentile(late, 50)),
            "p99": float(np.percentile(late, 99)), "max": float(late.max()),
            "over": float((late > TARGET_MS).mean()), "load": os.getloadavg()[0], "timed_out": time.perf_counter() - t0 > max_s}


class Pointer:
    """Moves the mouse over the map's sounds: real MouseMove events into the plot's viewport.

    Each move goes to the screen position of a sound of the current layout (seeded order), half
    of them nudged a few pixels off, so hovers hit, miss and change the tooltip as a user's do.
    """

    def __init__(self, w, seed: int = 0) -> None:  # noqa: ANN001 - the MainWindow
        self.w, self.rng, self.moves = w, np.random.default_rng(seed), 0
        self.hovered = 0
        w.map_view.point_hovered.connect(self._on_hovered)

    def _on_hovered(self, _i: int) -> None:
        self.hovered += 1

    def __call__(self) -> None:
        from PySide6.QtCore import QEvent, QPointF, Qt
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtWidgets import QApplication

        mv, pts = self.w.map_view, self.w.controller.points
        if len(pts) == 0:
            return
        i = int(self.rng.integers(len(pts)))
        p = mv.data_to_viewport(*pts[i])
        dx, dy = (self.rng.integers(-4, 5, size=2) if self.moves % 2 else (0, 0))
        local = QPointF(p.x() + float(dx), p.y() + float(dy))
        vp = mv.plot.viewport()
        ev = QMouseEvent(QEvent.Type.MouseMove, local, QPointF(vp.mapToGlobal(local.toPoint())),
                         Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(vp, ev)
        self.moves += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("demo", "tones"), default="demo")
    ap.add_argument("--clips", type=int, default=None,
                    help="demo: 40 notes of 251 frames (10,040 points); tones: 16 of 126 (2016 points)")
    ap.add_argument("--tsne-iter", type=int, default=500)
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=400.0)
    ap.add_argument("--profile", metavar="FILE", default=None,
                    help="also write the GUI thread's stacks during stalls and a cProfile of the last scenario")
    ap.add_argument("--baseline", action="store_true",
                    help="t-SNE on the worker thread, no warm-up (how the app ran before child-process t-SNE)")
    args = ap.parse_args()
    demo = args.data == "demo"
    clips = args.clips or (40 if demo else 16)
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
    data = make_demo_subset(tmp / "data", clips) if demo else make_tones(tmp / "data", clips)
    w = MainWindow(audio=RecordingSink(), settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    w.resize(1280, 800)
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

    w.open_dataset(data)
    pump_until(lambda: w.controller.dataset is not None, "the dataset")
    run_dir = str(tmp / "run")
    overrides = ("train.log_every=1", "train.epochs=100000", "train.patience=0")
    if demo:  # the demo model, and a run fine-tuning it on the same notes
        ckpt = DEMO / "checkpoints" / "colonel-notes.safetensors"
        w.open_checkpoints([ckpt])
        pump_until(lambda: w.controller.embedding is not None and not w.runner.running(), "the demo model's map")
        spec = TrainSpec(run_dir=run_dir, data=str(data), init_from=str(ckpt), device="cpu", overrides=overrides,
                         cache_dir=str(tmp / "cache"))
        rec = panel.start_run(spec)
        pump_until(lambda: rec.step > 0, "the fine-tuning run's first step")
        panel.stop_run(run_dir)
        pump_until(lambda: not rec.active, "the run to stop")
    else:  # a model from a real run
        panel.auto_reload.setChecked(True)
        spec = TrainSpec(run_dir=run_dir, data=str(data), preset="roche-deep-ae", tiny=True, device="cpu",
                         overrides=overrides, cache_dir=str(tmp / "cache"))
        rec = panel.start_run(spec)
        pump_until(lambda: panel.last_reload is not None and not w.runner.running(), "the first reload")
        panel.auto_reload.setChecked(False)  # reloads are measured as their own scenario
        panel.stop_run(run_dir)
        pump_until(lambda: not rec.active, "the run to stop")
    w.set_point_mode("frame")  # one point per frame: thousands of points for t-SNE (PCA first)
    pump_until(lambda: not w.runner.running() and w.controller.point_mode == "frame", "the PCA map of frames")
    n_points = len(w.controller.map_codes()[0])
    checkpoint = rec.best_checkpoint
    idle = lambda: not w.runner.running()  # noqa: E731
    pointer = Pointer(w)
    sampler = StallSampler() if args.profile else None

    def run(name: str, start: Callable[[], None], done: Callable[[], bool], *, min_s: float, hover: bool,
            profile: bool = False) -> None:
        print(f"measuring: {name}…", file=sys.stderr, flush=True)
        prof = None
        if profile and args.profile:
            import cProfile

            prof = cProfile.Profile()  # the GUI thread only: the thread that enables it
            prof.enable()
        moves0 = pointer.moves
        results[name] = measure(start, done, min_s=min_s, max_s=args.timeout, hover=pointer if hover else None,
                                sampler=sampler)
        results[name]["moves"] = pointer.moves - moves0
        if prof is not None:
            import io
            import pstats

            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(45)
            profile_text.append(f"== cProfile of the GUI thread during {name}\n{out.getvalue()}")

    results: dict[str, dict] = {}
    profile_text: list[str] = []
    run("idle", lambda: None, lambda: True, min_s=args.idle_s, hover=False)
    run("idle + hover", lambda: None, lambda: True, min_s=args.idle_s, hover=True)
    run("t-SNE + hover", lambda: w.project("tsne"), idle, min_s=0.5, hover=True)
    tsne_s = results["t-SNE + hover"]["s"]
    step0 = rec.step
    run("training + hover", lambda: panel.resume_run(run_dir), lambda: rec.step > step0,
        min_s=min(max(tsne_s / 2, args.idle_s), 30.0), hover=True)
    run("training + t-SNE + hover", lambda: w.project("tsne"), idle, min_s=0.5, hover=True, profile=True)
    if not demo:
        run("training + reload", lambda: panel.reload_checkpoint(run_dir, checkpoint), idle, min_s=0.5, hover=False)
    steps = rec.step - step0
    panel.stop_run(run_dir)
    pump_until(lambda: not rec.active, "the run to stop")
    w.close()
    if sampler is not None:
        sampler.stop()
        Path(args.profile).write_text("== GUI-thread stacks while a tick was late (> 30 ms)\n" + sampler.report(25)
                                      + "\n\n" + "\n".join(profile_text), encoding="utf-8")

    base = results["idle"]
    what = (f"Colonel demo model, {clips} demo notes" if demo else f"roche-deep-ae tiny, {clips} tones")
    print(f"\n{what}: {n_points} map points (one per frame); t-SNE {args.tsne_iter} + 250 iterations; "
          f"training: {steps} steps while measured, one progress event each; hover: a mouse move every 16 ms, "
          f"{pointer.hovered} sounds hovered in all" + ("; reload = load + encode + stable t-SNE" if not demo else ""))
    print(f"machine: {os.cpu_count()} cores shared with other jobs (load column: 1-min load average at the end)")
    print(f"{'scenario':<25} {'s':>6} {'ticks':>6} {'moves':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>50ms':>6} "
          f"{'p99/idle':>8} {'max/idle':>8} {'load':>5}")
    for name, r in results.items():
        print(f"{name:<25} {r['s']:6.1f} {r['ticks']:6d} {r['moves']:6d} {r['p50']:7.1f} {r['p99']:7.1f} {r['max']:7.1f} "
              f"{100 * r['over']:5.1f}% {r['p99'] / max(base['p99'], 0.1):8.1f} {r['max'] / max(base['max'], 0.1):8.1f} "
              f"{r['load']:5.1f}" + ("  (timed out)" if r["timed_out"] else ""))
    worst_name = max(results, key=lambda k: results[k]["max"])
    worst = results[worst_name]["max"]
    both = results["training + t-SNE + hover"]
    print(f"worst stall {worst:.1f} ms ({worst_name}); training + t-SNE + hover: max {both['max']:.1f} ms, "
          f"p99 {both['p99']:.1f} ms; idle: max {base['max']:.1f} ms, p99 {base['p99']:.1f} ms")
    ok = worst <= TARGET_MS and not any(r["timed_out"] for r in results.values()) and pointer.hovered > 0
    print(f"verdict: {'PASS' if ok else 'FAIL'} (worst GUI-thread stall {worst:.1f} ms, goal <= {TARGET_MS:.0f} ms)",
          flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # skip the interpreter's final garbage collection of Qt wrappers, which can abort
    # (PySide6 "none_dealloc") after the results are printed
    os._exit(code)
