"""``latent-explorer``: start the Qt application."""

from __future__ import annotations

import sys

from models import __version__


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv if argv is None else ["latent-explorer", *argv])
    app.setApplicationName("latent-explorer")
    app.setApplicationVersion(__version__)
    window = QMainWindow()
    window.setWindowTitle(f"latent-explorer {__version__}")
    window.resize(1280, 800)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
