"""The status bar: its resting text, the long jobs' progress bar and their Cancel button.

Progress ("encoding 12/160", "t-SNE iteration 200/750") goes out as temporary status messages;
when the last long task ends, its message is cleared so the bar says what is on screen
(``160 sounds · colonel-notes · PCA``) instead of a stale "encoding 160/160". Messages that are
not progress (errors, "Exported 3 files") are left to time out by themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from explorer.core.controller import Controller

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
#: the runner's tasks that show the progress bar and that Cancel stops
LONG_TASKS = ("dataset", "models", "encode", "project")


def summary_text(controller: Controller) -> str:
    """``"160 sounds · colonel-notes · PCA"``: dataset size, model, projection (and point mode)."""
    c = controller
    if c.dataset is None:
        return "No dataset"
    parts = [f"{len(c.dataset.clips)} sounds"]
    lm = c.current
    if lm is None:
        parts.append("no model")
    else:
        parts.append(_model_name(lm.key) if lm.key else lm.label)
    if c.embedding is not None:
        method = METHOD_NAMES.get(c.method, c.method)
        if c.point_mode == "frame":
            method += f", {len(c.points)} frames"
        parts.append(method)
    elif lm is not None:
        parts.append("mapping…")
    return " · ".join(parts)


def _model_name(key: str) -> str:
    """A checkpoint's short name; every run writes ``best``/``last``, so those take their run folder's."""
    p = Path(key)
    return f"{p.parent.name} {p.stem}" if p.stem in ("best", "last") else p.stem


class StatusLine(QObject):
    """Keeps a window's resting status text current; shows and clears the long jobs' progress.

    ``window`` is the main window: its status bar, controller, runner and ``cancel_long_tasks``.
    """

    def __init__(self, window: Any, audio_message: str = "", *, long_tasks: tuple[str, ...] = LONG_TASKS) -> None:
        super().__init__(window)
        self.w = window
        self.long_tasks = long_tasks
        sb = window.statusBar()
        self.label = QLabel()
        self.label.setObjectName("status-summary")
        # a normal (not permanent) widget: temporary messages cover it, and it shows again after
        sb.addWidget(self.label, 1)
        self.audio_label = QLabel(audio_message)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(window.cancel_long_tasks)
        for w in (self.progress, self.cancel_btn, self.audio_label):
            sb.addPermanentWidget(w)
        self.progress.hide()
        self.cancel_btn.hide()
        self._progress_messages: set[str] = set()
        c = window.controller
        for sig in (c.dataset_changed, c.models_changed, c.model_changed, c.encoding_changed, c.mapping_changed):
            sig.connect(self.update)
        c.embedding_changed.connect(self._on_controller_embedding_changed)
        window.runner.task_started.connect(self._on_runner_task_started)
        window.runner.task_progressed.connect(self._on_runner_task_progressed)
        window.runner.task_finished.connect(self._on_runner_task_finished)
        self.update()

    def _on_controller_embedding_changed(self, _final: bool) -> None:
        self.update()

    def update(self) -> None:
        self.label.setText(summary_text(self.w.controller))

    def _show_busy(self) -> None:
        busy = any(k in self.long_tasks for k in self.w.runner.running())
        self.progress.setVisible(busy)
        self.cancel_btn.setVisible(busy)
        if not busy:
            self.progress.setValue(0)

    def _on_runner_task_started(self, _key: str) -> None:
        self._show_busy()

    def _on_runner_task_progressed(self, key: str, progress: float, message: str) -> None:
        if key not in self.long_tasks:
            return
        self.progress.setValue(int(progress * 1000))
        self.progress.setFormat(message or key)
        self.w.statusBar().showMessage(message, 2000)
        if message:
            self._progress_messages.add(message)

    def _on_runner_task_finished(self, _key: str) -> None:
        self._show_busy()
        if any(k in self.long_tasks for k in self.w.runner.running()):
            return
        bar = self.w.statusBar()
        if bar.currentMessage() in self._progress_messages:
            bar.clearMessage()
        self._progress_messages.clear()
        self.update()
