"""``latent-explorer``: start the Qt application.

With no arguments it reopens the last session, or the bundled demo; paths given on the command
line are opened as if dropped on the window (folders: datasets, ``.safetensors``: checkpoints,
``.json``: sessions).
"""

from __future__ import annotations

import argparse
import os
import sys

from models import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="latent-explorer", description="Explore autoencoders of sound on a clickable map.")
    p.add_argument("paths", nargs="*", help="dataset folders, checkpoints (.safetensors) or a session (.json)")
    p.add_argument("--demo", action="store_true", help="open the bundled demo, not the last session")
    p.add_argument("--no-sound", action="store_true", help="do not open the sound card (a recording sink)")
    p.add_argument("--version", action="version", version=f"latent-explorer {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    # imported once the arguments are read: --help and --version answer without loading Qt and torch
    from PySide6.QtWidgets import QApplication

    from explorer.sound.audio_out import make_output
    from explorer.window.main_window import MainWindow
    from explorer.window.workers import warm_up

    app = QApplication.instance() or QApplication(["latent-explorer"])
    warm_up()  # the t-SNE fork server imports openTSNE while the window is being built
    app.setApplicationName("latent-explorer")
    app.setOrganizationName("latent-explorer")
    app.setApplicationVersion(__version__)
    audio, message = make_output(force_sink=args.no_sound or os.environ.get("LATENT_EXPLORER_AUDIO") == "sink")
    from explorer.core.controller import Controller
    from models.datasets.feature_cache import FeatureCache

    window = MainWindow(controller=Controller(cache=FeatureCache()), audio=audio, audio_message=message)
    window.show()
    window.start(args.paths, restore=not args.demo)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
