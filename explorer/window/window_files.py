"""The main window's file handling: dialogs, recent files, drag and drop, sessions.

A mixin of :class:`explorer.window.main_window.MainWindow`, split out to keep modules to one job; it
uses the window's controller, runner, notifier and settings.

A session reopens in steps, each waiting for the last one's worker: the dataset (and the view
of it: colours, hidden classes, projection, gains), then its models, then the map (from the
saved layout), then the selection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from explorer.core import nn_models, paths
from explorer.core.session import load_session, save_session, session_from_controller
from models.errors import LatentExplorerError

MAX_RECENT = 8


class FilesMixin:
    def _on_open_dataset_triggered(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a dataset folder", self._last_dir())
        if path:
            self.open_dataset(path)

    def _on_open_checkpoint_triggered(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open checkpoints", self._last_dir(),
            "Models (*.safetensors *.ts);;Checkpoints (*.safetensors);;nn~ models (*.ts)",
        )
        files = self._ask_trust(files)
        if files:
            self.open_checkpoints(files)

    def _ask_trust(self, files: list[str]) -> list[str]:
        """``files`` without the TorchScript files the user did not agree to run (asked once per file hash)."""
        refused = set()
        try:
            for p in nn_models.untrusted(files):
                answer = QMessageBox.question(self, "Open a TorchScript model?", nn_models.trust_question(p),
                                              QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                                              QMessageBox.StandardButton.Cancel)
                if answer == QMessageBox.StandardButton.Open:
                    nn_models.trust_file(p)
                else:
                    refused.add(p)
        except (OSError, LatentExplorerError) as exc:  # the trust store cannot be read or written
            self.notifier.error_occurred.emit(f"No TorchScript model was opened: {exc}")
            return [p for p in files if not nn_models.is_nn_model_path(p)]
        return [p for p in files if p not in refused]

    def _last_dir(self) -> str:
        recent = self._recent("datasets")
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def _recent(self, kind: str) -> list[str]:
        v = self.settings.value(f"recent/{kind}", [])
        return [v] if isinstance(v, str) else list(v or [])

    def _remember(self, kind: str, path: str) -> None:
        items = [path, *[p for p in self._recent(kind) if p != path]][:MAX_RECENT]
        self.settings.setValue(f"recent/{kind}", items)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for kind, opener in (("datasets", self.open_dataset), ("checkpoints", lambda p: self.open_checkpoints([p]))):
            for p in self._recent(kind):
                a = self.recent_menu.addAction(p)
                a.triggered.connect(lambda _=False, p=p, opener=opener: opener(p))

    def dragEnterEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        self.open_paths([u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()])

    def open_paths(self, items: list[str]) -> None:
        """Folders are datasets, ``.safetensors`` files checkpoints, ``.ts`` files nn~ models, ``.json`` sessions."""
        ckpts = self._ask_trust([p for p in items
                                 if Path(p).suffix in paths.CHECKPOINT_SUFFIXES or nn_models.is_nn_model_path(p)])
        for p in items:
            if Path(p).is_dir():
                self.open_dataset(p)
            elif Path(p).suffix == paths.SESSION_SUFFIX:
                self.open_session(p)
        if ckpts:
            self.open_checkpoints(ckpts)

    def _on_save_session_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", str(Path.home() / "session.json"), "Sessions (*.json)")
        if path:
            self.save_session(path)

    def _on_open_session_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", str(Path.home()), "Sessions (*.json)")
        if path:
            self.open_session(path)

    def save_session(self, path: str | Path) -> None:
        try:
            save_session(path, session_from_controller(self.controller))
        except (OSError, LatentExplorerError) as exc:
            self.notifier.error_occurred.emit(f"The session was not saved: {exc}")

    def open_session(self, path: str | Path) -> None:
        try:
            s = load_session(path)
        except LatentExplorerError as exc:
            self.notifier.error_occurred.emit(str(exc))
            return
        self.apply_session(s)

    def apply_session(self, s: dict[str, Any]) -> None:
        """Reopen a session: dataset, then models, then the map, then the selection (async)."""
        if not s.get("dataset"):
            return
        self._pending_session = s
        self.controller.clear_models()
        self.open_dataset(s["dataset"])

    def _apply_session_view_state(self) -> None:
        s = self._pending_session
        if not s:
            return
        self.controller.restore_view(colour_field=s.get("colour_field"), hidden=set(s.get("hidden_classes") or []),
                                     method=s.get("projection"), point_mode=s.get("point_mode"),
                                     gains=s.get("gains") or {})

    def _load_session_models(self) -> None:
        s = self._pending_session or {}
        current = s.get("current_model")
        self.runner.start("models", self._load_models_task(list(s.get("models", []))),
                          on_result=lambda lms: self._on_models_loaded(lms, select=current))

    def _restore_session_selection(self) -> None:
        s, c = self._pending_session, self.controller
        self._pending_session = None
        sel = (s or {}).get("selection")
        if not sel:
            return
        if sel["kind"] == "point":
            _, clips, frames = c.map_codes()
            hits = [i for i in range(len(clips)) if clips[i] == sel["clip"] and frames[i] == sel.get("frame", -1)]
            if hits:
                c.select_point(hits[0])
        else:
            c.select_position(*sel["xy"])
        self.decode(play=False)

