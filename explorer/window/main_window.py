"""The main window: map in the centre, sound and gains on the right, tools on top.

It asks the controller for task functions, runs them on the :class:`TaskRunner` and puts the
results back into the controller, which announces each change; the views listen to the
controller's signals (wired once, in :meth:`MainWindow._connect`). It computes nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core import paths
from explorer.core.controller import KMEANS, Controller, Decoded, LoadedModel, load_model
from explorer.core.metrics_task import metrics_task
from explorer.core.own_data import DESCRIPTORS
from explorer.map.map_search import MapSearchBar
from explorer.map.map_view import EMPTY_HINT, MapView
from explorer.morph.path_panel import PathPanel
from explorer.play.play_flow import PlayFlow
from explorer.sound.audio_out import AudioOutput, RecordingSink
from explorer.sound.sound_panel import GainsPanel, SoundPanel
from explorer.training.trainer_panel import install_trainer_panel
from explorer.window import gui_gc
from explorer.window.map_toolbar import MapToolbar
from explorer.window.notifier import Notifier
from explorer.window.own_data_flow import OwnDataFlow
from explorer.window.status_line import LONG_TASKS, StatusLine
from explorer.window.window_files import FilesMixin
from explorer.window.workers import TaskRunner
from models import __version__
from models.errors import LatentExplorerError
from models.inference.engine import ESTIMATED_PHASE, Encoding
from models.mapping.projection import Embedding, PCAProjector, TSNEProjector


#: tasks computed for one dataset and model, dropped when either changes
STALE_ON_SWITCH = ("project", "decode", "metrics", "kmeans", "paths-rebind", "hover")

class MainWindow(FilesMixin, QMainWindow):
    #: which click's decoding may stream to the output (decode() counts; the newest wins)
    _decode_serial = 0

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
        gui_gc.hold()  # the cycle collector on the GUI thread only (see gui_gc), until the window closes
        self._gc_held = True
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
        self.search_bar = MapSearchBar()
        map_area = QWidget()
        ml = QVBoxLayout(map_area)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.setSpacing(0)
        ml.addWidget(self.search_bar)
        ml.addWidget(self.map_view, 1)
        self.sound_panel = SoundPanel()
        self.gains_panel = GainsPanel()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        # sound panel above, morph/gains below, split so either can take the room
        self.right_splitter = QSplitter(Qt.Orientation.Vertical)
        self.right_splitter.setChildrenCollapsible(False)
        self.right_splitter.addWidget(self.sound_panel)
        rl.addWidget(self.right_splitter, 1)
        # morph paths share a tab bar with the gains
        self.path_panel = PathPanel(self)
        self.tools_tabs = QTabWidget()
        self.tools_tabs.addTab(self.path_panel, "Morph")
        self.tools_tabs.addTab(self.gains_panel, "Latent gains")
        # the morph panel scrolls rather than forcing a tall window (1024x700 fits)
        tools_scroll = QScrollArea()
        tools_scroll.setWidgetResizable(True)
        tools_scroll.setFrameShape(QFrame.Shape.NoFrame)
        tools_scroll.setWidget(self.tools_tabs)
        tools_scroll.setMinimumHeight(150)
        self.right_splitter.addWidget(tools_scroll)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(map_area)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self.status_line = StatusLine(self, audio_message)
        self.progress, self.cancel_btn = self.status_line.progress, self.status_line.cancel_btn
        self._connect()
        self._update_hint()
        self.trainer_panel = install_trainer_panel(self)
        self.own_data = OwnDataFlow(self)
        self.play = PlayFlow(self)
        self.resize(1280, 800)
        self.splitter.setSizes([780, 500])  # the map gets most of the room
        self.right_splitter.setSizes([430, 370])  # sound panel and morph panel share the height

    # --- construction -----------------------------------------------------------------------------
    def add_action(self, text: str, slot: Callable[[], Any], shortcut: str | QKeySequence | None = None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        self.act_open_dataset = self.add_action("Open dataset…", self._on_open_dataset_triggered, "Ctrl+O")
        self.act_open_ckpt = self.add_action("Open checkpoint…", self._on_open_checkpoint_triggered, "Ctrl+Shift+O")
        self.act_save_session = self.add_action("Save session…", self._on_save_session_triggered, "Ctrl+S")
        self.act_open_session = self.add_action("Open session…", self._on_open_session_triggered)
        self.act_play = self.add_action("Play decoded", self.play_decoded, "Space")
        self.act_play_orig = self.add_action("Play original", self.play_original, "O")
        self.act_pca = self.add_action("PCA map", lambda: self.set_projection("pca"), "P")
        self.act_tsne = self.add_action("t-SNE map", lambda: self.set_projection("tsne"), "T")
        self.act_stop = self.add_action("Stop / cancel", self.stop_everything, "Esc")
        self.act_quit = self.add_action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_path_mode = self.add_action("Path mode", self.path_panel.mode_btn.toggle, "M")
        self.act_undo = self.path_panel.tool.undo_stack.createUndoAction(self, "Undo path edit")
        self.act_undo.setShortcut(QKeySequence("Ctrl+Z"))
        self.act_redo = self.path_panel.tool.undo_stack.createRedoAction(self, "Redo path edit")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.act_undo, self.act_redo):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(a)
        self.act_play_morph = self.add_action("Play morph", self.path_panel.play_morph, "Shift+Space")
        self.act_export = self.add_action("Export audio…", self.path_panel.open_export_dialog, "Ctrl+E")

    def _build_toolbar(self) -> None:
        tb = self.toolbar = MapToolbar(self.controller, self)
        self.addToolBar(tb)
        tb.addAction(self.act_open_dataset)
        tb.addAction(self.act_open_ckpt)
        tb.addSeparator()
        tb.add_combos()
        self.model_combo, self.projection_combo = tb.model_combo, tb.projection_combo
        self.colour_combo, self.mode_combo = tb.colour_combo, tb.mode_combo

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
        pm = self.menuBar().addMenu("&Path")
        for a in (self.act_path_mode, self.act_play_morph, self.act_export, self.act_undo, self.act_redo):
            pm.addAction(a)
        self._rebuild_recent_menu()

    def _connect(self) -> None:
        # intents of the views
        self.map_view.point_clicked.connect(self._on_map_point_clicked)
        self.map_view.position_clicked.connect(self._on_map_position_clicked)
        self.map_view.class_toggled.connect(self.controller.toggle_class)
        self.sound_panel.play_decoded_requested.connect(self.play_decoded)
        self.sound_panel.play_original_requested.connect(self.play_original)
        self.sound_panel.stop_requested.connect(self.stop_everything)
        self.sound_panel.original_phase_toggled.connect(
            lambda on: self.controller.set_clip_phase("original" if on else ESTIMATED_PHASE))
        self.gains_panel.gains_edited.connect(self._on_gains_edited)
        self.toolbar.model_chosen.connect(self.select_model)
        self.toolbar.projection_chosen.connect(self.set_projection)
        self.toolbar.colour_chosen.connect(self.set_colour_field)
        self.toolbar.point_mode_chosen.connect(self.set_point_mode)
        self.runner.task_failed.connect(self._on_runner_task_failed)
        self.runner.task_started.connect(self._on_runner_changed)
        self.runner.task_finished.connect(self._on_runner_changed)
        # the controller's news, to the views that show it
        c = self.controller
        c.dataset_changed.connect(self._drop_stale_tasks)
        c.model_changed.connect(self._drop_stale_tasks)
        c.dataset_changed.connect(self._on_controller_dataset_changed)
        c.models_changed.connect(self._update_hint)
        c.model_changed.connect(self.path_panel.sync)
        c.embedding_changed.connect(self._on_controller_embedding_changed)
        c.embedding_changed.connect(self.path_panel.on_embedding_changed)
        c.colours_changed.connect(self._on_controller_colours_changed)
        c.hidden_classes_changed.connect(self.map_view.redraw_visibility)
        c.selection_changed.connect(self.map_view.show_selection)
        c.gains_changed.connect(lambda: self.gains_panel.set_state(c.gain_values, c.gain_edges))
        c.decoded_changed.connect(lambda: self.sound_panel.set_decoded(c.decoded))
        c.metrics_changed.connect(lambda: self.sound_panel.set_metrics(c.decoded.metrics if c.decoded else {}))
        c.phase_changed.connect(self.decode)  # a clicked clip is heard again with the other phase
        self.notifier.status_posted.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.notifier.error_occurred.connect(self._show_error)

    # --- opening things ---------------------------------------------------------------------------
    def open_dataset(self, path: str | Path) -> None:
        path = str(path)
        self.notifier.status_posted.emit(f"Opening dataset {path}…")
        self.runner.start("dataset", self.controller.open_dataset_task(path),
                          on_result=lambda ds: self._on_dataset_opened(ds, path))

    def _on_dataset_opened(self, ds: Any, path: str) -> None:
        for refused in self.controller.set_dataset(ds, path):
            self.notifier.error_occurred.emit(refused)
        self._remember("datasets", path)
        msg = f"{len(ds.clips)} sounds in {Path(path).name}"
        if getattr(ds, "rejected", None):
            msg += f" ({len(ds.rejected)} files refused)"
        self.notifier.status_posted.emit(msg)
        self._apply_session_view_state()
        if self._pending_session and self._pending_session.get("models"):
            self._load_session_models()
        elif self.controller.current is not None:
            self.encode()
        else:
            self.own_data.show_descriptor_map()

    def open_checkpoints(self, paths_: list[str | Path]) -> None:
        """Load checkpoints on a worker; each is checked against the dataset when it arrives."""
        ps = [str(p) for p in paths_]
        self.runner.start("models", self._load_models_task(ps), on_result=self._on_models_loaded)

    def _load_models_task(self, ps: list[str]) -> Callable[[Any], list[LoadedModel | str]]:
        loader = self.model_loader

        def task(state: Any) -> list[LoadedModel | str]:
            out: list[LoadedModel | str] = []
            for k, p in enumerate(ps):
                state.report(k / max(1, len(ps)), f"loading {Path(p).name}")
                try:
                    out.append(loader(p))
                except LatentExplorerError as exc:  # one bad file must not stop the others
                    out.append(f"{Path(p).name} was not loaded: {exc}")
            return out

        return task

    def _on_models_loaded(self, lms: list[LoadedModel | str], select: str | None = None) -> None:
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
        if target is not None:
            self.select_model(target)

    def add_model(self, lm: LoadedModel) -> None:
        """Add an already loaded model (tests, scripts)."""
        self._on_models_loaded([lm])

    def select_model(self, key: str) -> None:
        """Show ``key``'s map: encode the dataset with it, or project its encoding."""
        try:
            self.controller.select_model(key)
        except LatentExplorerError as exc:  # it cannot read this dataset: the map stays as it is
            self.notifier.error_occurred.emit(str(exc))
            self.toolbar.sync()
            return
        if self.controller.encoding is None:
            self.encode()
        else:
            self.project()

    # --- encode, project -------------------------------------------------------------------------------
    def encode(self) -> None:
        """Encode the dataset with the current model; the map fills in as clips are encoded
        (``Controller.set_partial_encoding``), and goes back to empty if the encoding is
        cancelled or fails (``Controller.end_filling``)."""
        c = self.controller
        if c.current is None or c.dataset is None:
            return
        key, ds = c.current_key, c.dataset

        def on_partial(enc: Encoding) -> None:
            if c.dataset is ds:  # a partial of a dataset since closed never lands on the new one
                c.set_partial_encoding(key, enc)

        def on_finished(finished_key: str) -> None:  # after the result, a cancel or a failure
            if finished_key == "encode":
                self.runner.task_finished.disconnect(on_finished)
                if c.dataset is ds:
                    c.end_filling(key)

        self.runner.start("encode", c.encode_task(), on_result=lambda enc: self._on_encoded(key, enc, ds),
                          on_partial=on_partial)
        self.runner.task_finished.connect(on_finished)

    def _on_encoded(self, key: str, enc: Encoding | None, ds: Any = None) -> None:
        if enc is None or (ds is not None and ds is not self.controller.dataset):
            return
        self.controller.set_encoding(key, enc)
        if enc.failed:
            self.notifier.status_posted.emit(f"{len(enc.failed)} sounds could not be encoded: {enc.failed[0][1]}")
        if key == self.controller.current_key:
            self.project()

    def project(self, method: str | None = None) -> None:
        c = self.controller
        if c.encoding is None:
            return
        method = method or c.method
        session = self._pending_session or {}
        layout = session.get("layout")
        codes = c.map_codes()[0]
        if layout is not None and len(layout) == len(codes) and method == session.get("projection"):
            # a session's map comes back as it was saved, not recomputed
            pts, params = np.asarray(layout, dtype=float), dict(c.tsne_params)
            if method == "tsne":
                task = lambda state: TSNEProjector(**params).restore(codes, pts)  # noqa: E731
            else:
                task = lambda state: PCAProjector(align_to=pts).fit(codes)  # noqa: E731
        else:
            # after a filled-in map a t-SNE starts from its layout; a PCA is the same picture every time
            fill = c.fill_layout()
            task = c.project_task(method, init=fill if method == "tsne" else None)
        c.set_method(method)
        self.runner.start("project", task, on_partial=c.set_partial_points, on_result=self._on_projected)

    def _on_projected(self, emb: Embedding | None) -> None:
        if emb is None:
            return
        self.controller.set_embedding(emb)
        self._restore_session_selection()

    def _drop_stale_tasks(self) -> None:
        """Another dataset or model: what was being computed for the old one must never land on
        the new one (a layout, a decoded sound, metrics, clusters, paths placed on the old map)."""
        for key in STALE_ON_SWITCH:
            self.runner.cancel(key, quiet=True)

    def _on_controller_dataset_changed(self) -> None:
        self.map_view.refresh()
        self._update_hint()

    def _on_controller_embedding_changed(self, final: bool) -> None:
        c = self.controller
        if final:
            self.map_view.refresh()
            if c.colour_field == KMEANS and c.cluster_labels is None:
                self._start_kmeans()
        else:
            self.map_view.update_positions()
        self._update_hint()

    def _on_controller_colours_changed(self) -> None:
        c = self.controller
        if c.colour_field == KMEANS and c.cluster_labels is None:
            self._start_kmeans()
        self.map_view.refresh(auto_range=False)

    # --- toolbar intents -----------------------------------------------------------------------------------
    def set_projection(self, method: str) -> None:
        self.controller.set_method(method)
        self.project(method)

    def set_colour_field(self, name: str) -> None:
        self.controller.set_colour_field(name)

    def _start_kmeans(self) -> None:
        if self.controller.encoding is None:
            return
        self.runner.start("kmeans", self.controller.kmeans_task(), on_result=self.controller.set_cluster_labels)

    def set_point_mode(self, mode: str) -> None:
        if self.controller.set_point_mode(mode):
            self.project()
        else:
            self.toolbar.sync()  # a refused mode: the combo goes back to the current one

    def _update_hint(self) -> None:
        c = self.controller
        if c.dataset is None:
            self.map_view.set_hint(EMPTY_HINT)
        elif c.current_key == DESCRIPTORS and len(c.points):
            self.map_view.set_hint(None)
        elif not c.models:
            self.map_view.set_hint("Open a checkpoint… (Ctrl+Shift+O), or drop a .safetensors file here")
        elif len(c.points) == 0:
            self.map_view.set_hint("Encoding the sounds…")
        else:
            self.map_view.set_hint(None)

    # --- selection and sound ----------------------------------------------------------------------------------
    def _on_map_point_clicked(self, i: int) -> None:
        self.controller.select_point(i)
        self.decode()

    def _on_map_position_clicked(self, x: float, y: float) -> None:
        if self.controller.embedding is None:
            return
        self.controller.select_position(x, y)
        self.decode()

    def _on_gains_edited(self, values: list[float], edges: list[float]) -> None:
        self.controller.set_gains(values, edges)
        if self.controller.selection is not None:
            self.decode()

    def decode(self, *, play: bool = True) -> None:
        if self.controller.selection is None or self.controller.encoding is None:
            return
        # the sound streams to the output while it is decoded; only the newest click's may start
        self._decode_serial = serial = self._decode_serial + 1
        opened: list[bool] = []

        def stream(sr: int) -> Any:
            if serial != self._decode_serial:
                return _Discard()
            opened.append(True)
            return self.audio.stream(sr)

        try:
            task = self.controller.decode_task(stream=stream if play and self.audio.realtime else None)
        except LatentExplorerError as exc:  # e.g. nothing on the map to decode from: say so
            self.notifier.status_posted.emit(f"Nothing to play here: {exc}")
            return
        self.runner.start("decode", task, on_result=lambda d: self._on_decoded(d, play and not opened))

    def _on_decoded(self, d: Decoded, play: bool) -> None:
        """``play``: play the sound now (False when it already streamed while it was decoded)."""
        c = self.controller
        c.set_decoded(d)
        self.play.send_selected(d.decoded.title)
        if play:
            self.play_decoded()
        # estimates get metrics too (MFCC-DTW deviation against the nearest class); the quick
        # metrics arrive first as a partial result
        self.runner.start("metrics", metrics_task(d, c), on_result=c.set_metrics, on_partial=c.set_metrics)

    def play_decoded(self) -> None:
        d = self.controller.decoded
        if d is not None:
            self.audio.play(d.decoded.y, d.decoded.sr)

    def play_original(self) -> None:
        d = self.controller.decoded
        if d is not None and d.original is not None:
            self.audio.play(d.original.y, d.original.sr)

    def stop_everything(self) -> None:
        self.path_panel.stop()  # the playhead stops with the sound
        self.play.stop()
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
        self._update_hint()

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
        """A session's morph paths come back with it (their codes are stored)."""
        self.path_panel.load_paths(list(s.get("paths") or []))
        super().apply_session(s)

    def closeEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        if not self.trainer_panel.confirm_close():  # stop or leave the training runs, or stay
            ev.ignore()
            return
        if self.controller.dataset is not None:
            self.save_session(self.autosave_path())
        self.path_panel.shutdown()  # playhead timer off, map event filter removed
        self.play.shutdown()  # engine, MIDI and OSC ports closed
        self.runner.cancel_all()
        self.runner.wait(3000)
        self.audio.close()
        if self._gc_held:
            self._gc_held = False
            gui_gc.release()
        super().closeEvent(ev)

    def start(self, argv_paths: list[str], *, restore: bool = True, demo: bool = True) -> None:
        """What the app opens first: given paths, else the last session, else the demo."""
        if argv_paths:
            QTimer.singleShot(0, lambda: self.open_paths(argv_paths))
        elif restore and self.autosave_path().exists():
            QTimer.singleShot(0, lambda: self.open_session(self.autosave_path()))
        elif demo and paths.demo_available():
            ckpts = [str(p.resolve()) for p in paths.demo_checkpoints()]
            best = paths.best_sounding_demo_checkpoint()
            current = str(best.resolve()) if best is not None else ckpts[0]
            self._pending_session = {"dataset": str(paths.DEMO_DATASET), "models": ckpts, "current_model": current}
            QTimer.singleShot(0, lambda: self.open_dataset(paths.DEMO_DATASET))


class _Discard:
    """The stream of a click that a newer one replaced: its blocks go nowhere."""

    def append(self, y: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass
