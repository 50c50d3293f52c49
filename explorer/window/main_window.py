"""The main window: map in the centre, sound and gains on the right, tools on top.

It asks the controller for task functions, runs them on the :class:`TaskRunner` and puts the
results back into the controller, then tells the views through the notifier. It computes
nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import paths
from explorer.sound.audio_out import AudioOutput, RecordingSink
from explorer.core.controller import KMEANS, Controller, Decoded, LoadedModel, load_model
from explorer.core.field_names import field_display_name  # UI polish: human names for label fields
from explorer.map.map_view import MapView
from explorer.core.metrics_task import metrics_task
from explorer.window.notifier import Notifier
from explorer.morph.path_panel import PathPanel  # issue 7: morph paths
from explorer.sound.sound_panel import GainsPanel, SoundPanel
from explorer.window.window_files import FilesMixin
from explorer.window.workers import TaskRunner
from models import __version__
from models.errors import LatentExplorerError

LONG_TASKS = ("dataset", "models", "encode", "project")


class MainWindow(FilesMixin, QMainWindow):
    def __init__(
        self,
        *,
        controller: Controller | None = None,
        audio: AudioOutput | None = None,
        audio_message: str = "",
        settings: QSettings | None = None,
        model_loader: Callable[[str], LoadedModel] = load_model,
    ) -> None:
        super().__init__()
        self.setWindowTitle(f"latent-explorer {__version__}")
        self.setAcceptDrops(True)
        self.controller = controller or Controller()
        self.audio = audio or RecordingSink()
        self.settings = settings or QSettings("latent-explorer", "latent-explorer")
        self.model_loader = model_loader
        self.notifier = Notifier(self)
        self.runner = TaskRunner(self)
        self.last_error: str | None = None
        self._pending_session: dict[str, Any] | None = None

        self.map_view = MapView(self.controller)
        self.sound_panel = SoundPanel()
        self.gains_panel = GainsPanel()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        # UI polish: sound panel above, morph/gains below, split so either can take the room
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setChildrenCollapsible(False)
        self.right_splitter.addWidget(self.sound_panel)
        rl.addWidget(self.right_splitter, 1)
        # --- issue 7: morph paths share a tab bar with the gains ---
        self.path_panel = PathPanel(self)
        self.tools_tabs = QTabWidget()
        self.tools_tabs.addTab(self.path_panel, "Morph")
        self.tools_tabs.addTab(self.gains_panel, "Latent gains")
        # UI polish: the morph panel scrolls rather than forcing a tall window (1024x700 fits)
        from PySide6.QtWidgets import QFrame, QScrollArea

        tools_scroll = QScrollArea()
        tools_scroll.setWidgetResizable(True)
        tools_scroll.setFrameShape(QFrame.Shape.NoFrame)
        tools_scroll.setWidget(self.tools_tabs)
        tools_scroll.setMinimumHeight(150)
        self.right_splitter.addWidget(tools_scroll)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.map_view)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status(audio_message)
        self._connect()
        self._update_hint()
        # --- trainer panel (issue 8): the "Train" dock and its menu ---
        from explorer.training.trainer_panel import install_trainer_panel

        self.trainer_panel = install_trainer_panel(self)
        # --- end trainer panel ---
        self.resize(1280, 800)
        self.splitter.setSizes([780, 500])  # the map gets most of the room
        self.right_splitter.setSizes([430, 370])  # UI polish: sound panel and morph panel share the height

    # --- construction -----------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None) -> QAction:  # noqa: ANN001
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        self.act_open_dataset = self._action("Open dataset…", self._on_open_dataset_triggered, "Ctrl+O")
        self.act_open_ckpt = self._action("Open checkpoint…", self._on_open_checkpoint_triggered, "Ctrl+Shift+O")
        self.act_save_session = self._action("Save session…", self._on_save_session_triggered, "Ctrl+S")
        self.act_open_session = self._action("Open session…", self._on_open_session_triggered)
        self.act_play = self._action("Play decoded", self.play_decoded, "Space")
        self.act_play_orig = self._action("Play original", self.play_original, "O")
        self.act_pca = self._action("PCA map", lambda: self.set_projection("pca"), "P")
        self.act_tsne = self._action("t-SNE map", lambda: self.set_projection("tsne"), "T")
        self.act_stop = self._action("Stop / cancel", self.stop_everything, "Esc")
        self.act_quit = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        # --- issue 7: morph paths ---
        self.act_path_mode = self._action("Path mode", self.path_panel.mode_btn.toggle, "M")
        self.act_undo = self.path_panel.tool.undo_stack.createUndoAction(self, "Undo path edit")
        self.act_undo.setShortcut(QKeySequence("Ctrl+Z"))
        self.act_redo = self.path_panel.tool.undo_stack.createRedoAction(self, "Redo path edit")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.act_undo, self.act_redo):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(a)
        self.act_play_morph = self._action("Play morph", self.path_panel.play_morph, "Shift+Space")
        self.act_export = self._action("Export audio…", self.path_panel._on_export_clicked, "Ctrl+E")

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("main")
        tb.setObjectName("main-toolbar")
        tb.addAction(self.act_open_dataset)
        tb.addAction(self.act_open_ckpt)
        tb.addSeparator()
        self.model_combo = QComboBox()
        # UI polish: short names in the combo, the whole story in its tooltip (_sync_toolbar)
        self.model_combo.setMinimumWidth(160)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.setToolTip("Loaded models: the map shows the selected one")
        self.projection_combo = QComboBox()
        self.projection_combo.addItem("PCA", "pca")
        self.projection_combo.addItem("t-SNE", "tsne")
        self.colour_combo = QComboBox()
        self.colour_combo.setMinimumWidth(160)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("one point per clip", "clip")
        self.mode_combo.addItem("one point per frame", "frame")
        for label, w in (("Model", self.model_combo), ("Map", self.projection_combo),
                         ("Colour", self.colour_combo), ("", self.mode_combo)):
            if label:
                tb.addWidget(QLabel(f" {label} "))
            tb.addWidget(w)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        for a in (self.act_open_dataset, self.act_open_ckpt):
            m.addAction(a)
        self.recent_menu = m.addMenu("Recent")
        m.addSeparator()
        m.addAction(self.act_open_session)
        m.addAction(self.act_save_session)
        m.addSeparator()
        m.addAction(self.act_quit)
        v = self.menuBar().addMenu("&Sound")
        for a in (self.act_play, self.act_play_orig, self.act_stop, self.act_pca, self.act_tsne):
            v.addAction(a)
        pm = self.menuBar().addMenu("&Path")  # issue 7
        for a in (self.act_path_mode, self.act_play_morph, self.act_export, self.act_undo, self.act_redo):
            pm.addAction(a)
        self._rebuild_recent_menu()

    def _build_status(self, audio_message: str) -> None:
        sb = self.statusBar()
        self.audio_label = QLabel(audio_message)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel_long_tasks)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_btn)
        sb.addPermanentWidget(self.audio_label)
        self.progress.hide()
        self.cancel_btn.hide()
        from explorer.window.status_line import StatusLine  # UI polish: "160 sounds · model · PCA" at rest

        self.status_line = StatusLine(self, LONG_TASKS)

    def _connect(self) -> None:
        self.map_view.point_clicked.connect(self._on_map_point_clicked)
        self.map_view.position_clicked.connect(self._on_map_position_clicked)
        self.map_view.class_toggled.connect(self._on_map_class_toggled)
        self.sound_panel.play_decoded_requested.connect(self.play_decoded)
        self.sound_panel.play_original_requested.connect(self.play_original)
        self.sound_panel.stop_requested.connect(self.stop_everything)
        self.gains_panel.gains_edited.connect(self._on_gains_edited)
        self.model_combo.activated.connect(self._on_model_combo_activated)
        self.projection_combo.activated.connect(lambda _i: self.set_projection(self.projection_combo.currentData()))
        self.colour_combo.activated.connect(lambda _i: self.set_colour_field(self.colour_combo.currentData()))
        self.mode_combo.activated.connect(lambda _i: self.set_point_mode(self.mode_combo.currentData()))
        self.runner.task_failed.connect(self._on_runner_task_failed)
        self.runner.task_started.connect(self._on_runner_changed)
        self.runner.task_finished.connect(self._on_runner_changed)
        self.runner.task_progressed.connect(self._on_runner_task_progressed)
        n = self.notifier
        n.dataset_changed.connect(self._sync_toolbar)
        n.models_changed.connect(self._sync_toolbar)
        n.model_changed.connect(self._sync_toolbar)
        n.encoding_changed.connect(self._sync_toolbar)
        n.embedding_changed.connect(self._on_notifier_embedding_changed)
        n.embedding_changed.connect(self.path_panel.on_embedding_changed)  # issue 7
        n.model_changed.connect(self.path_panel.sync)  # issue 7
        n.colours_changed.connect(lambda: self.map_view.refresh(auto_range=False))
        n.hidden_classes_changed.connect(self.map_view.redraw_visibility)
        n.selection_changed.connect(self.map_view.show_selection)
        n.sound_decoded.connect(lambda: self.sound_panel.set_decoded(self.controller.decoded))
        n.metrics_computed.connect(lambda: self.sound_panel.set_metrics(self.controller.decoded.metrics))
        n.status_posted.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        n.error_occurred.connect(self._show_error)

    # --- opening things ---------------------------------------------------------------------------
    def open_dataset(self, path: str | Path) -> None:
        path = str(path)
        self.notifier.status_posted.emit(f"Opening dataset {path}…")
        self.runner.start("dataset", self.controller.open_dataset_task(path),
                          on_result=lambda ds: self._on_dataset_opened(ds, path))

    def _on_dataset_opened(self, ds: Any, path: str) -> None:
        self.controller.set_dataset(ds, path)
        self._remember("datasets", path)
        for key, lm in list(self.controller.models.items()):
            try:
                self.controller.add_model(lm, select=key == self.controller.current_key)
            except LatentExplorerError as exc:
                del self.controller.models[key]
                self.notifier.error_occurred.emit(str(exc))
        if self.controller.current_key not in self.controller.models:
            self.controller.current_key = next(iter(self.controller.models), None)
        msg = f"{len(ds.clips)} sounds in {Path(path).name}"
        if getattr(ds, "rejected", None):
            msg += f" ({len(ds.rejected)} files refused)"
        self.notifier.status_posted.emit(msg)
        self._apply_session_view_state()
        self.notifier.dataset_changed.emit()
        self.map_view.refresh()
        self._update_hint()
        if self._pending_session and self._pending_session.get("models"):
            self._load_session_models()
        elif self.controller.current is not None:
            self.encode()

    def open_checkpoints(self, paths_: list[str | Path]) -> None:
        """Load checkpoints on a worker; each is checked against the dataset when it arrives."""
        ps = [str(p) for p in paths_]
        self.runner.start("models", self._load_models_task(ps), on_result=self._on_models_loaded)

    def _load_models_task(self, ps: list[str]) -> Callable[[Any], list]:
        loader = self.model_loader

        def task(state: Any) -> list:
            out: list = []
            for k, p in enumerate(ps):
                state.report(k / max(1, len(ps)), f"loading {Path(p).name}")
                try:
                    out.append(loader(p))
                except LatentExplorerError as exc:  # one bad file must not stop the others
                    out.append(f"{Path(p).name} was not loaded: {exc}")
            return out

        return task

    def _on_models_loaded(self, lms: list, select: str | None = None) -> None:
        added = None
        for lm in lms:
            if isinstance(lm, str):
                self.notifier.error_occurred.emit(lm)
                continue
            try:
                self.controller.add_model(lm, select=False)
            except LatentExplorerError as exc:
                self.notifier.error_occurred.emit(f"{lm.label} was not loaded: {exc}")
                continue
            self._remember("checkpoints", lm.key)
            added = lm.key
        target = select if select in self.controller.models else added
        self.notifier.models_changed.emit()
        if target is not None:
            self.select_model(target)

    def add_model(self, lm: LoadedModel) -> None:
        """Add an already loaded model (tests, the trainer panel's hot reload)."""
        self._on_models_loaded([lm])

    def select_model(self, key: str) -> None:
        self.controller.select_model(key)
        self.controller.decoded = None
        self.sound_panel.set_decoded(None)
        self.notifier.model_changed.emit()
        if self.controller.encoding is None:
            self.encode()
        else:
            self.project()

    # --- encode, project -------------------------------------------------------------------------------
    def encode(self) -> None:
        if self.controller.current is None or self.controller.dataset is None:
            return
        key = self.controller.current_key
        self.runner.start("encode", self.controller.encode_task(), on_result=lambda enc: self._on_encoded(key, enc))

    def _on_encoded(self, key: str, enc: Any) -> None:
        if enc is None:
            return
        self.controller.set_encoding(key, enc)
        if enc.failed:
            self.notifier.status_posted.emit(f"{len(enc.failed)} sounds could not be encoded: {enc.failed[0][1]}")
        self.notifier.encoding_changed.emit()
        if key == self.controller.current_key:
            self.project()

    def project(self, method: str | None = None) -> None:
        c = self.controller
        if c.encoding is None:
            return
        method = method or c.method
        layout = (self._pending_session or {}).get("layout")
        n = len(c.map_codes()[0])
        if layout is not None and len(layout) == n and method == (self._pending_session or {}).get("projection"):
            from models.mapping.projection import PCAProjector, TSNEProjector
            import numpy as np

            codes, pts = c.map_codes()[0], np.asarray(layout, dtype=float)
            if method == "tsne":
                task = lambda state: TSNEProjector(**c.tsne_params).restore(codes, pts)  # noqa: E731
            else:
                task = lambda state: PCAProjector(align_to=pts).fit(codes)  # noqa: E731
        else:
            task = c.project_task(method)
        c.method = method
        self.runner.start("project", task, on_partial=self._on_partial_layout, on_result=self._on_projected)

    def _on_partial_layout(self, points: Any) -> None:
        self.controller.set_partial_points(points)
        self.notifier.embedding_changed.emit(False)

    def _on_projected(self, emb: Any) -> None:
        if emb is None:
            return
        self.controller.set_embedding(emb)
        if self.controller.colour_field == KMEANS:
            self._start_kmeans()
        self.notifier.embedding_changed.emit(True)
        self._restore_session_selection()

    def _on_notifier_embedding_changed(self, final: bool) -> None:
        if final:
            self.map_view.refresh()
        else:
            self.map_view.update_positions()
        self._update_hint()
        self._sync_toolbar()

    # --- toolbar intents -----------------------------------------------------------------------------------
    def set_projection(self, method: str) -> None:
        self.controller.method = method
        self._sync_toolbar()
        self.project(method)

    def set_colour_field(self, name: str) -> None:
        self.controller.set_colour_field(name)
        self._sync_toolbar()  # UI polish: the combo follows a colour set from code (sessions, scripts)
        if name == KMEANS and self.controller.cluster_labels is None:
            self._start_kmeans()
        self.notifier.colours_changed.emit()

    def _start_kmeans(self) -> None:
        if self.controller.encoding is None:
            return

        def done(labels: Any) -> None:
            self.controller.cluster_labels = labels
            self.notifier.colours_changed.emit()

        self.runner.start("kmeans", self.controller.kmeans_task(), on_result=done)

    def set_point_mode(self, mode: str) -> None:
        c = self.controller
        if c.encoding is None or (mode == "frame" and c.encoding.layout == "whole"):
            self._sync_toolbar()
            return
        if mode != c.point_mode:
            c.point_mode = mode
            c.selection, c.cluster_labels = None, None
            self.notifier.selection_changed.emit()
            self.project()

    def _on_model_combo_activated(self, index: int) -> None:
        key = self.model_combo.itemData(index)
        if key and key != self.controller.current_key:
            self.select_model(key)

    def _sync_toolbar(self) -> None:
        c = self.controller
        for combo in (self.model_combo, self.colour_combo, self.projection_combo, self.mode_combo):
            combo.blockSignals(True)
        self.model_combo.clear()
        for key, lm in c.models.items():  # UI polish: short name shown, details in the tooltip
            self.model_combo.addItem(model_short_label(lm), key)
            self.model_combo.setItemData(self.model_combo.count() - 1, model_tooltip(lm), Qt.ItemDataRole.ToolTipRole)
        if c.current_key:
            self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(c.current_key)))
        if c.current is not None:
            self.model_combo.setToolTip(model_tooltip(c.current))
        self.colour_combo.clear()
        for name in c.colour_fields():  # UI polish: human names, the real field as item data
            self.colour_combo.addItem(field_display_name(name), name)
            self.colour_combo.setItemData(self.colour_combo.count() - 1, f"label field: {name}", Qt.ItemDataRole.ToolTipRole)
        if c.colour_field:
            self.colour_combo.setCurrentIndex(max(0, self.colour_combo.findData(c.colour_field)))
        self.projection_combo.setCurrentIndex(self.projection_combo.findData(c.method))
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(c.point_mode))
        self.mode_combo.setEnabled(c.encoding is not None and c.encoding.layout != "whole")
        for combo in (self.model_combo, self.colour_combo, self.projection_combo, self.mode_combo):
            combo.blockSignals(False)

    def _update_hint(self) -> None:
        c = self.controller
        if c.dataset is None:
            self.map_view.set_hint(paths_hint())
        elif not c.models:
            self.map_view.set_hint("Open a checkpoint… (Ctrl+Shift+O), or drop a .safetensors file here")
        elif len(c.points) == 0:
            self.map_view.set_hint("Encoding the sounds…")
        else:
            self.map_view.set_hint(None)

    # --- selection and sound ----------------------------------------------------------------------------------
    def _on_map_point_clicked(self, i: int) -> None:
        self.controller.select_point(i)
        self.notifier.selection_changed.emit()
        self.decode()

    def _on_map_position_clicked(self, x: float, y: float) -> None:
        if self.controller.embedding is None:
            return
        self.controller.select_position(x, y)
        self.notifier.selection_changed.emit()
        self.decode()

    def _on_map_class_toggled(self, label: str) -> None:
        self.controller.toggle_class(label)
        self.notifier.hidden_classes_changed.emit()

    def _on_gains_edited(self, values: list, edges: list) -> None:
        self.controller.set_gains(values, edges)
        self.notifier.gains_changed.emit()
        if self.controller.selection is not None:
            self.decode()

    def decode(self, *, play: bool = True) -> None:
        if self.controller.selection is None or self.controller.encoding is None:
            return
        task = self.controller.decode_task()
        self.runner.start("decode", task, on_result=lambda d: self._on_decoded(d, play))

    def _on_decoded(self, d: Decoded, play: bool) -> None:
        self.controller.set_decoded(d)
        self.notifier.sound_decoded.emit()
        if play:
            self.play_decoded()
        # UI polish: estimates get metrics too (MFCC-DTW deviation against the nearest class);
        # the quick metrics arrive first as a partial result
        self.runner.start("metrics", metrics_task(d, self.controller), on_result=self._on_metrics,
                          on_partial=self._on_metrics)

    def _on_metrics(self, metrics: dict) -> None:
        if self.controller.decoded is not None:
            self.controller.decoded.metrics = metrics
            self.notifier.metrics_computed.emit()

    def play_decoded(self) -> None:
        d = self.controller.decoded
        if d is not None:
            self.audio.play(d.decoded.y, d.decoded.sr)

    def play_original(self) -> None:
        d = self.controller.decoded
        if d is not None and d.original is not None:
            self.audio.play(d.original.y, d.original.sr)

    def stop_everything(self) -> None:
        self.path_panel.stop()  # issue 7: the playhead stops with the sound
        self.audio.stop()
        self.cancel_long_tasks()

    def cancel_long_tasks(self) -> None:
        """Esc / Cancel: a running t-SNE stops where it is and keeps that layout (as Orange
        does); loading and encoding are cancelled."""
        stopped = [k for k in LONG_TASKS if k != "project" and self.runner.cancel(k)]
        if self.runner.stop("project"):
            stopped.append("t-SNE (layout kept)")
        if stopped:
            self.notifier.status_posted.emit("Stopped: " + ", ".join(stopped))

    # --- runner feedback ----------------------------------------------------------------------------------------
    def _on_runner_changed(self, _key: str) -> None:
        busy = [k for k in self.runner.running() if k in LONG_TASKS]
        self.progress.setVisible(bool(busy))
        self.cancel_btn.setVisible(bool(busy))
        if not busy:
            self.progress.setValue(0)
        self._update_hint()

    def _on_runner_task_progressed(self, key: str, progress: float, message: str) -> None:
        if key in LONG_TASKS:
            self.progress.setValue(int(progress * 1000))
            self.progress.setFormat(message or key)
            self.statusBar().showMessage(message, 2000)

    def _on_runner_task_failed(self, key: str, message: str) -> None:
        self.notifier.error_occurred.emit(f"{key} failed: {message}")

    def _show_error(self, message: str) -> None:
        """Every error reaches the user: status bar and a non-blocking message box."""
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        box = QMessageBox(QMessageBox.Icon.Warning, "latent-explorer", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box

    # --- lifecycle ------------------------------------------------------------------------------------------------------
    def autosave_path(self) -> Path:
        return Path(self.settings.fileName()).with_name("last_session.json")

    def apply_session(self, s: dict[str, Any]) -> None:
        """Issue 7: a session's morph paths come back with it (their codes are stored)."""
        self.path_panel.load_paths(list(s.get("paths") or []))
        super().apply_session(s)

    def closeEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        if not self.trainer_panel.confirm_close():  # trainer panel (issue 8): stop or leave runs
            ev.ignore()
            return
        if self.controller.dataset is not None:
            self.save_session(self.autosave_path())
        self.path_panel.shutdown()  # issue 7: playhead timer off, map event filter removed
        self.runner.cancel_all()
        self.runner.wait(3000)
        self.audio.close()
        super().closeEvent(ev)

    def start(self, argv_paths: list[str], *, restore: bool = True, demo: bool = True) -> None:
        """What the app opens first: given paths, else the last session, else the demo."""
        if argv_paths:
            QTimer.singleShot(0, lambda: self.open_paths(argv_paths))
        elif restore and self.autosave_path().exists():
            QTimer.singleShot(0, lambda: self.open_session(self.autosave_path()))
        elif demo and paths.demo_available():
            ckpts = [str(p.resolve()) for p in paths.demo_checkpoints()]
            self._pending_session = {"dataset": str(paths.DEMO_DATASET), "models": ckpts, "current_model": ckpts[0]}
            QTimer.singleShot(0, lambda: self.open_dataset(paths.DEMO_DATASET))


def model_short_label(lm: LoadedModel) -> str:
    """What the model combo shows: the checkpoint's name and model type (issue 6 polish)."""
    ckpt = getattr(lm, "checkpoint", None)
    name = Path(lm.key).stem if lm.key else lm.label
    model_name = getattr(getattr(ckpt, "info", None), "model_name", None)
    return f"{name} ({model_name})" if model_name else name


def model_tooltip(lm: LoadedModel) -> str:
    """Checkpoint path, preset, model, representation and sample rate of a loaded model."""
    rep = lm.representation
    info = getattr(getattr(lm, "checkpoint", None), "info", None)
    lines = [lm.label, f"checkpoint: {lm.key}"]
    preset = getattr(info, "preset", None)
    if preset:
        lines.append(f"preset: {preset}")
    model_name = getattr(info, "model_name", None)
    if model_name:
        lines.append(f"model: {model_name}")
    lines.append(f"representation: {getattr(rep, 'kind', '?')}, {getattr(rep, 'sample_rate', '?')} Hz")
    return "\n".join(lines)


def paths_hint() -> str:
    from explorer.map.map_view import EMPTY_HINT

    return EMPTY_HINT
