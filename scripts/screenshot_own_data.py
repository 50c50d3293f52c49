"""Save the docs' own-data screenshots: a 20-class map, the skipped-files list, the trainer form.

Run under Xvfb (the skipped-files list is its own window, so the screen is grabbed), e.g.::

    Xvfb :95 -screen 0 1440x900x24 &  DISPLAY=:95 .venv/bin/python scripts/screenshot_own_data.py docs/

1. ``screenshot-map-classes.png``: the bundled demo under its Colonel model, coloured by instrument
   (20 classes, Glasbey's colours), hollow class centres with labels placed without overlap,
   the search "guitar" lit up.
2. ``screenshot-skipped.png``: a copy of 40 demo notes plus an empty file, a text file and an
   all-NaN WAV, opened with no model: the descriptor map, the "skipped" button and its list.
3. ``screenshot-trainer-form.png``: "Train one…" on that folder: the trainer panel with the
   dataset's 16 kHz filled in and the device on "auto".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="folder for the PNGs")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    import numpy as np
    import soundfile as sf
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.core import paths
    from explorer.core.controller import Controller
    from explorer.sound.audio_out import RecordingSink
    from explorer.window.main_window import MainWindow
    from models.datasets.feature_cache import FeatureCache

    app = QApplication.instance() or QApplication(["latent-explorer"])
    tmp = tempfile.TemporaryDirectory()
    settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(controller=Controller(cache=FeatureCache()), audio=RecordingSink(),
                   audio_message="Sound off (screenshot)", settings=settings)
    w.resize(1400, 860)
    w.move(0, 0)
    w.show()
    c = w.controller
    args.out.mkdir(parents=True, exist_ok=True)

    def wait(pred, what: str, *, errors: bool = True) -> None:  # noqa: ANN001
        t0 = time.monotonic()
        while not pred():
            app.processEvents()
            if errors and w.last_error:
                raise SystemExit(f"screenshot: {w.last_error}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"screenshot: timed out waiting for {what}")
            time.sleep(0.02)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.01)

    def idle() -> bool:
        return not w.runner.running()

    def grab_screen(name: str) -> None:
        shot = app.primaryScreen().grabWindow(0)
        path = args.out / name
        print(path if shot.save(str(path)) else f"screenshot: could not write {path}")

    def grab_window(name: str) -> None:
        path = args.out / name
        print(path if w.grab().save(str(path)) else f"screenshot: could not write {path}")

    # 1. the demo, 20 instruments
    ckpt = str(paths.demo_checkpoints()[0].resolve())
    w.open_dataset(paths.DEMO_DATASET)
    wait(lambda: c.dataset is not None, "the demo")
    w.open_checkpoints([ckpt])
    wait(lambda: c.embedding is not None and idle(), "the map")
    w.set_colour_field("instrument_str")
    wait(idle, "the colours")
    w.search_bar.search.setText("guitar")
    wait(idle, "the search")
    grab_window("screenshot-map-classes.png")

    # 2. a folder with broken files, no model
    folder = Path(tmp.name) / "my-notes"
    for src in sorted(Path(paths.DEMO_DATASET).rglob("*.wav"))[::4]:
        fam = src.stem.split("_")[0]
        (folder / fam).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / fam / src.name)
    broken = folder / "broken"
    broken.mkdir()
    (broken / "empty.wav").write_bytes(b"")
    (broken / "readme.wav").write_text("this is not audio")
    sf.write(broken / "all-nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(broken / "far-too-short.wav", np.zeros(10, np.float32), 16000)
    w.search_bar.search.setText("")
    w.controller.clear_models()
    w.open_dataset(folder)
    wait(lambda: c.dataset is not None and str(c.dataset_path) == str(folder), "the folder")
    wait(lambda: c.embedding is not None and len(c.points) > 0 and idle(), "the descriptor map")
    wait(lambda: len(c.skipped) >= 4, "the skipped files")
    dlg = w.own_data.skipped_button.open_list()
    dlg.move(560, 200)
    wait(lambda: dlg.isVisible(), "the list")
    grab_screen("screenshot-skipped.png")
    dlg.close()

    # 3. the trainer form, offered on that folder
    w.own_data.train_offer.click()
    wait(lambda: w.trainer_panel.isVisible(), "the trainer panel")
    grab_window("screenshot-trainer-form.png")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
