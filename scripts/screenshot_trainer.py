"""Save a PNG of the main window with the trainer panel during a real training run.

Run under Xvfb, e.g.::

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_trainer.py docs/screenshot-trainer.png

It opens the bundled demo, fine-tunes its first model on the demo notes in a run folder under a
temporary directory (or ``--runs DIR``), waits until the curves hold ``--validations``
validation points, grabs the window and stops the run cleanly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--runs", type=Path, default=None, help="folder for the run (default: a temporary one)")
    p.add_argument("--validations", type=int, default=3, help="validation points to wait for")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each stage")
    args = p.parse_args(argv)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.sound.audio_out import RecordingSink
    from explorer.core.controller import Controller
    from explorer.window.main_window import MainWindow
    from models.datasets.feature_cache import FeatureCache

    app = QApplication.instance() or QApplication(["latent-explorer"])
    tmp = tempfile.TemporaryDirectory()
    runs = args.runs or Path(tmp.name) / "runs"
    settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(controller=Controller(cache=FeatureCache()), audio=RecordingSink(),
                   audio_message="Sound off (screenshot)", settings=settings)
    width, height = (int(v) for v in args.size.lower().split("x"))
    w.resize(width, height)
    w.show()

    def wait(pred, what: str) -> None:  # noqa: ANN001
        t0 = time.monotonic()
        while not pred():
            app.processEvents()
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"screenshot: timed out waiting for {what}")
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()

    c, panel = w.controller, w.trainer_panel
    w.start([], restore=False, demo=True)
    wait(lambda: c.embedding is not None and not w.runner.running(), "the map")
    panel.show()
    panel.auto_reload.setChecked(False)
    form = panel.form
    form.source.setCurrentIndex(0)  # fine-tune the model on the map
    form.epochs.setValue(50)
    spec = form.spec(runs / "fine-tune", threads=1)
    panel.start_run(spec)
    wait(lambda: len(panel.curves.values("val")) >= args.validations, "validation points")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = w.grab().save(str(args.out))
    print(args.out if ok else f"screenshot: could not write {args.out}")
    panel.stop_run()
    wait(lambda: panel.runs[str(Path(spec.run_dir))].status in ("stopped", "finished", "failed"), "the run to stop")
    w.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
