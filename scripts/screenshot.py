"""Save a PNG of the main window: the map, optionally a morph path and a selected sound.

Run under Xvfb (or ``QT_QPA_PLATFORM=offscreen``), e.g.::

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot.py docs/morph.png --demo --path
    .venv/bin/python scripts/screenshot.py out.png --dataset DIR --checkpoint M.safetensors \\
        --colour instrument_family --path --from flute --to brass --steps 12 --select 10

``--path`` draws a path between two class centres (``--from``/``--to``, default the two farthest
apart) with a bend through a free map position, renders it and waits for its placed-back steps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="PNG to write")
    p.add_argument("--demo", action="store_true", help="open the bundled demo")
    p.add_argument("--dataset", help="dataset folder")
    p.add_argument("--checkpoint", action="append", default=[], help="checkpoint(s); the first is shown")
    p.add_argument("--projection", choices=("pca", "tsne"), default=None)
    p.add_argument("--colour", default=None, help="label field to colour by")
    p.add_argument("--path", action="store_true", help="draw and render a morph path")
    p.add_argument("--from", dest="src", default=None, help="class the path starts at")
    p.add_argument("--to", dest="dst", default=None, help="class the path ends at")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--select", type=int, default=None, help="select (decode) this map point")
    p.add_argument("--step", type=int, default=None, help="with --path: show this morph step (from 1) in the sound panel")
    p.add_argument("--size", default="1440x900", help="window size WxH")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each stage")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import numpy as np
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.core import paths
    from explorer.sound.audio_out import RecordingSink
    from explorer.core.controller import Controller
    from explorer.window.main_window import MainWindow
    from models.datasets.feature_cache import FeatureCache
    from models.morphing.morph import MorphParams

    app = QApplication.instance() or QApplication(["latent-explorer"])
    tmp = tempfile.TemporaryDirectory()
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
            if w.last_error:
                raise SystemExit(f"screenshot: {w.last_error}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"screenshot: timed out waiting for {what}")
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()

    c = w.controller

    def idle() -> bool:
        return not w.runner.running()

    if args.demo or not args.dataset:
        if not paths.demo_available():
            raise SystemExit("screenshot: no bundled demo; give --dataset and --checkpoint")
        w.start([], restore=False, demo=True)
    else:
        w.open_dataset(args.dataset)
        wait(lambda: c.dataset is not None, "the dataset")
        w.open_checkpoints(args.checkpoint)
    wait(lambda: c.embedding is not None and idle(), "the map")
    if args.projection and args.projection != c.method:
        w.set_projection(args.projection)
        wait(lambda: c.embedding is not None and c.embedding.method == args.projection and idle(), "the projection")
    if args.colour:
        w.set_colour_field(args.colour)
        wait(idle, "the colours")
    if args.path:
        book, panel = w.path_panel.book, w.path_panel
        centres = c.class_centres_2d()
        names = list(centres)
        if len(names) < 2:
            raise SystemExit("screenshot: the map needs two classes for a path")
        if args.src and args.dst:
            a, b = args.src, args.dst
        else:
            pairs = [(x, y) for x in names for y in names if x < y]
            a, b = max(pairs, key=lambda p: np.linalg.norm(centres[p[0]] - centres[p[1]]))
        mid = 0.5 * (centres[a] + centres[b])
        span = centres[b] - centres[a]
        bend = mid + 0.15 * np.array([-span[1], span[0]])  # off the straight line, to show a corner
        wps = [book.waypoint_at_centre(a), book.waypoint_at_position(*bend), book.waypoint_at_centre(b)]
        book.new_path(wps, params=MorphParams(n_steps=args.steps))
        panel.sync()
        panel.render_now()
        w.tools_tabs.setCurrentWidget(panel)
        wait(lambda: book.render_of(book.path) is not None and idle(), "the morph")
        w.map_view.vb.autoRange(padding=0.05)  # the path and its placed-back steps in view
        if args.step is not None:
            panel.select_step(args.step - 1)
            wait(idle, "the step")
    if args.select is not None:
        c.select_point(args.select)
        w.map_view.show_selection()
        w.decode(play=False)
        wait(lambda: c.decoded is not None and idle(), "the decoded sound")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ok = w.grab().save(str(args.out))
    print(args.out if ok else f"screenshot: could not write {args.out}")
    w.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
