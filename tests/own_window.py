"""The main window with a recording sink and the tiny model, for the own-data and map GUI tests."""

from __future__ import annotations

from explorer_tiny import tiny_loaded_model
from PySide6.QtCore import QSettings

from explorer.sound.audio_out import RecordingSink
from explorer.window.main_window import MainWindow

TIMEOUT = 20000


def make_window(qtbot, tmp_path, *, model_loader=tiny_loaded_model):  # noqa: ANN001, ANN201 - test helper
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    sink = RecordingSink()
    w = MainWindow(audio=sink, audio_message="Sound off (recording sink)", settings=settings, model_loader=model_loader)
    w.controller.tsne_params = {"n_iter": 40, "early_exaggeration_iter": 20, "callbacks_every_iters": 10}
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w, sink


def wait_map(qtbot, w, n: int) -> None:  # noqa: ANN001 - test helper
    qtbot.waitUntil(lambda: w.controller.embedding is not None and len(w.controller.points) == n
                    and not w.runner.is_running("project"), timeout=TIMEOUT)


def window_on(qtbot, tmp_path, folder, n_points: int):  # noqa: ANN001, ANN201 - test helper
    """A window on ``folder`` with the tiny model, its map drawn (``n_points`` points)."""
    w, sink = make_window(qtbot, tmp_path)
    w.open_dataset(folder)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    w.add_model(tiny_loaded_model())
    wait_map(qtbot, w, n_points)
    return w, sink
