"""The status bar's resting text: what the map shows, once the long jobs are done.

Progress ("encoding 12/160", "t-SNE iteration 200/750") goes out as temporary status messages;
when the last long task ends, its message is cleared so the bar says what is on screen
(``160 sounds · colonel-notes · PCA``) instead of a stale "encoding 160/160". Messages that are
not progress (errors, "Exported 3 files") are left to time out by themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}


def summary_text(controller: Any) -> str:
    """``"160 sounds · colonel-notes · PCA"``: dataset size, model, projection (and point mode)."""
    c = controller
    if c.dataset is None:
        return "No dataset"
    parts = [f"{len(c.dataset.clips)} sounds"]
    lm = c.current
    if lm is None:
        parts.append("no model")
    else:
        parts.append(Path(lm.key).stem if lm.key else lm.label)
    if c.embedding is not None:
        method = METHOD_NAMES.get(c.method, c.method)
        if c.point_mode == "frame":
            method += f", {len(c.points)} frames"
        parts.append(method)
    elif lm is not None:
        parts.append("mapping…")
    return " · ".join(parts)


class StatusLine(QObject):
    """Keeps a window's resting status text current and clears progress when jobs end."""

    def __init__(self, window: Any, long_tasks: tuple[str, ...]) -> None:
        super().__init__(window)
        self.w = window
        self.long_tasks = long_tasks
        self.label = QLabel()
        self.label.setObjectName("status-summary")
        # a normal (not permanent) widget: temporary messages cover it, and it shows again after
        window.statusBar().addWidget(self.label, 1)
        self._progress_messages: set[str] = set()
        n = window.notifier
        for sig in (n.dataset_changed, n.models_changed, n.model_changed, n.encoding_changed):
            sig.connect(self.update)
        n.embedding_changed.connect(self._on_notifier_embedding_changed)
        window.runner.task_progressed.connect(self._on_runner_task_progressed)
        window.runner.task_finished.connect(self._on_runner_task_finished)
        self.update()

    def _on_notifier_embedding_changed(self, _final: bool) -> None:
        self.update()

    def update(self) -> None:
        self.label.setText(summary_text(self.w.controller))

    def _on_runner_task_progressed(self, key: str, _progress: float, message: str) -> None:
        if key in self.long_tasks and message:
            self._progress_messages.add(message)

    def _on_runner_task_finished(self, _key: str) -> None:
        if any(k in self.long_tasks for k in self.w.runner.running()):
            return
        bar = self.w.statusBar()
        if bar.currentMessage() in self._progress_messages:
            bar.clearMessage()
        self._progress_messages.clear()
        self.update()
