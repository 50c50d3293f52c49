"""Retrain from the app: the trainer dock (form, runs, progress, curves, log, hot reload).

Runs are ``latent-trainer`` child processes (:mod:`explorer.training.trainer_process`) or outside runs
followed through their folder (:mod:`explorer.training.run_watcher`); both deliver the same events, which
a Qt-free :class:`~explorer.core.training_runs.RunRecord` folds into what is shown here. A new
``best`` checkpoint is offered for reload (or reloaded at once when "reload automatically" is
ticked) through :mod:`explorer.core.reload`, which keeps the map where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer.training.loss_plot import LossPlot
from explorer.core.reload import Reloaded, commit_reload, is_best_checkpoint, reload_task, run_model_key
from explorer.training.run_watcher import RunWatcher
from explorer.training.trainer_form import TrainerForm
from explorer.training.trainer_process import TRAINER_COMMAND, TrainerProcess, start_background_resume
from explorer.core.training_runs import (
    RunRecord,
    TrainSpec,
    default_run_dir,
    format_eta,
    run_model_label,
    train_args,
)
from models.errors import LatentExplorerError
from models.events import Event, Progress, Validation

#: what a close with running trainers may answer
CLOSE_STOP, CLOSE_LEAVE, CLOSE_CANCEL = "stop", "leave", "cancel"
UI_REFRESH_MS = 100


class TrainerPanel(QDockWidget):
    """The "Train" dock of the main window.

    Attributes set by tests (and by nothing else): ``trainer_command`` (a fake trainer),
    ``ask_close`` (answers the close question without a dialog), ``extra_spec`` (options such
    as ``threads``/``cache_dir`` added to every run).

    Signals
    -------
    run_event(str, object)
        run folder, event: after the panel has taken it into account.
    run_ended(str)
        A run's process ended (its record holds the status and any error).
    model_reloaded(str)
        The key of a model swapped in by a hot reload.
    """

    run_event = Signal(str, object)
    run_ended = Signal(str)
    model_reloaded = Signal(str)

    def __init__(self, window: Any, *, settings: QSettings | None = None) -> None:
        super().__init__("Train", window)
        self.setObjectName("trainer-dock")
        self.window_ = window
        self.settings = settings or window.settings
        self.trainer_command: Sequence[str] = TRAINER_COMMAND
        self.ask_close: Callable[[int], str] = self._ask_close_dialog
        self.extra_spec: dict[str, Any] = {}
        self.runs_root = Path(str(self.settings.value("trainer/runs_root", str(Path.home() / "latent-explorer-runs"))))
        self.runs: dict[str, RunRecord] = {}
        self.procs: dict[str, TrainerProcess] = {}
        self.watchers: dict[str, RunWatcher] = {}
        self.shown: str | None = None
        self.pending_reload: tuple[str, str] | None = None  # (run_dir, checkpoint)
        self.last_reload: Reloaded | None = None
        self._ui_dirty = False
        self._ui_timer = QTimer(self)
        self._ui_timer.setInterval(UI_REFRESH_MS)
        self._ui_timer.setSingleShot(True)
        self._ui_timer.timeout.connect(self._refresh_ui)
        self._sized = False  # given its first width yet (see fit_first_show)
        self._build()
        self._connect()
        self._sync_buttons()

    # --- construction ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainerForm()
        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Start training in a separate process; the app stays responsive")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Finish the current step, save a checkpoint that can be resumed, and stop")
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Continue the selected run exactly where it stopped (--resume)")
        self.watch_btn = QPushButton("Watch folder…")
        self.watch_btn.setToolTip("Follow a run started elsewhere (a terminal, a GPU machine) through its run folder")
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.stop_btn, self.resume_btn, self.watch_btn):
            buttons.addWidget(b)
        self.auto_reload = QCheckBox("Reload automatically")
        self.auto_reload.setToolTip("Swap in every new best checkpoint as soon as it is written; the map keeps its layout")
        self.auto_reload.setChecked(self.settings.value("trainer/auto_reload", "false") in (True, "true"))
        self.offer = QWidget()
        ol = QHBoxLayout(self.offer)
        ol.setContentsMargins(0, 0, 0, 0)
        self.offer_label = QLabel("")
        self.offer_label.setWordWrap(True)
        self.reload_btn = QPushButton("Reload")
        self.reload_btn.setToolTip("Load the new checkpoint, re-encode and re-project, keeping the map stable")
        self.dismiss_btn = QPushButton("Later")
        ol.addWidget(self.offer_label, 1)
        ol.addWidget(self.reload_btn)
        ol.addWidget(self.dismiss_btn)
        self.offer.hide()
        self.runs_list = QListWidget()
        self.runs_list.setToolTip("Runs of this session and watched folders; select one to see its curves")
        self.runs_list.setMaximumHeight(90)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.best_label = QLabel("")
        self.best_label.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.curves = LossPlot()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("the trainer's log")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(4, 4, 4, 4)
        tl.addWidget(self.form)
        tl.addLayout(buttons)
        tl.addWidget(self.auto_reload)
        tl.addWidget(self.offer)
        tl.addWidget(QLabel("Runs"))
        tl.addWidget(self.runs_list)
        tl.addWidget(self.progress)
        tl.addWidget(self.best_label)
        tl.addWidget(self.error_label)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.curves)
        split.addWidget(self.log_view)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self.setWidget(split)

    def _connect(self) -> None:
        self.start_btn.clicked.connect(self._on_start_clicked)
        self.stop_btn.clicked.connect(lambda: self.stop_run())
        self.resume_btn.clicked.connect(lambda: self.resume_run())
        self.watch_btn.clicked.connect(self._on_watch_clicked)
        self.reload_btn.clicked.connect(self._on_reload_clicked)
        self.dismiss_btn.clicked.connect(self._hide_offer)
        self.auto_reload.toggled.connect(lambda on: self.settings.setValue("trainer/auto_reload", bool(on)))
        self.runs_list.currentItemChanged.connect(self._on_runs_list_current_changed)
        c = self.window_.controller
        for sig in (c.dataset_changed, c.models_changed, c.model_changed):
            sig.connect(self._on_app_changed)

    # --- starting, stopping, resuming, watching -----------------------------------------------------------------
    def _on_start_clicked(self) -> None:
        if not self.form.data.text().strip():
            self._show_failure("Choose a dataset to train on.")
            return
        run_dir = default_run_dir(self.runs_root, self.form.run_name())
        self.start_run(self.form.spec(run_dir, **self.extra_spec))

    def start_run(self, spec: TrainSpec, *, resume: bool = False) -> RunRecord:
        """Start ``latent-trainer train`` for ``spec`` as a child process and show it."""
        key = str(Path(spec.run_dir))
        rec = self.runs.get(key)
        if rec is None or not resume:
            rec = RunRecord(run_dir=key, spec=spec)
            self.runs[key] = rec
        rec.status, rec.error, rec.end_reason = "starting", None, ""
        proc = TrainerProcess(train_args(spec, resume=resume), command=self.trainer_command,
                              threads=spec.threads, parent=self)
        proc.event_received.connect(lambda ev, k=key: self._on_run_event(k, ev))
        proc.log_received.connect(lambda line, k=key: self._on_run_log(k, line))
        proc.ended.connect(lambda code, crashed, k=key: self._on_run_ended(k, code, crashed))
        self.procs[key] = proc
        self._show_run(key)
        self.error_label.hide()
        self._on_run_log(key, ("resuming " if resume else "starting ") + " ".join(proc.args))
        proc.start()
        self._sync_runs_list()
        return rec

    def stop_run(self, run_dir: str | None = None) -> None:
        """A clean stop: the trainer saves a resumable checkpoint and exits."""
        key = run_dir or self.shown
        proc = self.procs.get(key) if key else None
        if proc is None or not proc.is_running():
            return
        self.runs[key].status = "stopping"
        proc.stop()
        self._sync_runs_list()

    def resume_run(self, run_dir: str | None = None) -> RunRecord | None:
        key = run_dir or self.shown
        rec = self.runs.get(key) if key else None
        if rec is None or rec.active:
            return None
        spec = rec.spec or TrainSpec(run_dir=rec.run_dir, data="", **self.extra_spec)
        return self.start_run(spec, resume=True)

    def _on_watch_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Watch a run folder", str(self.runs_root))
        if path:
            self.watch_run(path)

    def watch_run(self, run_dir: str | Path) -> RunRecord:
        """Follow a run started outside the app through its ``events.jsonl``."""
        key = str(Path(run_dir))
        if key in self.watchers:
            return self.runs[key]
        rec = RunRecord(run_dir=key, source="watched")
        self.runs[key] = rec
        w = RunWatcher(key, parent=self)
        w.event_received.connect(lambda ev, k=key: self._on_run_event(k, ev))
        w.log_received.connect(lambda line, k=key: self._on_run_log(k, line))
        self.watchers[key] = w
        self._show_run(key)
        w.start()
        self._sync_runs_list()
        return rec

    # --- events ---------------------------------------------------------------------------------------------------
    def _on_run_event(self, key: str, ev: Event) -> None:
        rec = self.runs[key]
        was_stopping = rec.status == "stopping"
        rec.apply(ev)
        if was_stopping and rec.status == "running":
            rec.status = "stopping"
        if key == self.shown:
            if isinstance(ev, Progress):
                self.curves.add("train", ev.step, ev.losses)
            elif isinstance(ev, Validation):
                self.curves.add("val", ev.step, ev.losses)
        if is_best_checkpoint(ev):
            self._offer_reload(key, ev.path)
        # A trainer can send a thousand progress events a second: widgets are refreshed by a
        # timer, at most ten times a second, so the event loop never falls behind.
        self._ui_dirty = True
        if not self._ui_timer.isActive():
            self._ui_timer.start()
        self.run_event.emit(key, ev)

    def _refresh_ui(self) -> None:
        if not self._ui_dirty:
            return
        self._ui_dirty = False
        rec = self.runs.get(self.shown) if self.shown else None
        if rec is not None:
            self._show_progress(rec)
        self._sync_runs_list()

    def _on_run_log(self, key: str, line: str) -> None:
        self.runs[key].add_log(line)
        if key == self.shown:
            self.log_view.appendPlainText(line)

    def _on_run_ended(self, key: str, code: int, crashed: bool) -> None:
        rec = self.runs[key]
        proc = self.procs.pop(key, None)
        rec.process_ended(code, crashed)
        if rec.status == "failed":
            self._show_failure(f"Training run {rec.name} failed: {rec.error}")
        if key == self.shown:
            self._show_progress(rec)
        self._sync_runs_list()
        if proc is not None:
            proc.deleteLater()
        self.run_ended.emit(key)

    def _show_failure(self, message: str) -> None:
        """A failure is said plainly in the panel and through the app's error path."""
        self.error_label.setText(message)
        self.error_label.show()
        self.show()
        self.window_.notifier.error_occurred.emit(message)

    # --- display ----------------------------------------------------------------------------------------------------
    def _show_run(self, key: str) -> None:
        self.shown = key
        rec = self.runs[key]
        self.curves.set_series(rec.train, rec.val)
        self.log_view.setPlainText("\n".join(rec.log))
        self._show_progress(rec)

    def _show_progress(self, rec: RunRecord) -> None:
        frac = rec.fraction()
        if rec.status == "starting":
            self.progress.setRange(0, 0)  # busy: loading data, computing features
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * (frac or 0.0)))
        eta = format_eta(rec.eta_s) if rec.active else ""
        total = f"/{rec.total_steps}" if rec.total_steps else ""
        self.progress.setFormat(f"{rec.status}: step {rec.step}{total}, {rec.epoch_text()}"
                                + (f", {eta} left" if eta else ""))
        best = {k: v for k, v in rec.best_metrics.items() if isinstance(v, (int, float))}
        self.best_label.setText(
            (f"Best (step {rec.best_step}): " + ", ".join(f"{k} {v:.4g}" for k, v in best.items())) if best else "")
        self._sync_buttons()

    def _sync_runs_list(self) -> None:
        keys = list(self.runs)
        same = [self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_list.count())] == keys
        self.runs_list.blockSignals(True)
        if not same:
            self.runs_list.clear()
        for i, key in enumerate(keys):
            rec = self.runs[key]
            item = self.runs_list.item(i) if same else QListWidgetItem()
            item.setText(f"{rec.name} — {rec.status_text()}" + (" (watched)" if rec.source == "watched" else ""))
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(key + (f"\n{rec.error}" if rec.error else ""))
            if not same:
                self.runs_list.addItem(item)
            if key == self.shown and self.runs_list.currentItem() is not item:
                self.runs_list.setCurrentItem(item)
        self.runs_list.blockSignals(False)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        rec = self.runs.get(self.shown) if self.shown else None
        running = rec is not None and self.shown in self.procs
        self.stop_btn.setEnabled(running and rec.status != "stopping")
        resumable = (rec is not None and not running and not rec.active
                     and (rec.status in ("stopped", "failed") or rec.end_reason == "max_steps"))
        self.resume_btn.setEnabled(resumable)

    def _on_runs_list_current_changed(self, item: QListWidgetItem | None, _prev: Any) -> None:
        if item is not None:
            self._show_run(item.data(Qt.ItemDataRole.UserRole))

    def _on_app_changed(self) -> None:
        c = self.window_.controller
        if c.dataset_path and not self.form.data.text():
            self.form.data.setText(c.dataset_path)
        if c.dataset is not None and self.form.data.text().strip() == str(c.dataset_path):
            self.form.set_dataset_rate(getattr(c.dataset, "sample_rate", None))
        lm = c.current
        ckpt = getattr(lm, "checkpoint", None) if lm is not None else None
        if ckpt is not None and getattr(ckpt, "path", None):
            training = ckpt.training.extra.get("train", {}) if ckpt.training else {}
            rate = getattr(lm.representation, "sample_rate", None)
            self.form.set_fine_tune_source(str(ckpt.path), ckpt.preset or "", training, rate=rate, label=lm.label)
        else:
            self.form.set_fine_tune_source(None)

    # --- hot reload -----------------------------------------------------------------------------------------------------
    def _offer_reload(self, run_key: str, checkpoint: str) -> None:
        c = self.window_.controller
        if c.dataset is None:
            return
        if self.auto_reload.isChecked():
            self.reload_checkpoint(run_key, checkpoint)
            return
        rec = self.runs[run_key]
        loss = rec.best_metrics.get("val_loss")
        self.pending_reload = (run_key, checkpoint)
        self.offer_label.setText(f"{rec.name} has a better model (step {rec.best_step}"
                                 + (f", validation loss {loss:.4g}" if isinstance(loss, (int, float)) else "") + ").")
        self.offer.show()

    def _on_reload_clicked(self) -> None:
        if self.pending_reload is not None:
            self.reload_checkpoint(*self.pending_reload)
        self._hide_offer()

    def _hide_offer(self) -> None:
        self.pending_reload = None
        self.offer.hide()

    def reload_checkpoint(self, run_key: str, checkpoint: str) -> None:
        """Swap in ``checkpoint`` on a worker; the map keeps its layout; errors change nothing."""
        w = self.window_
        rec = self.runs.get(run_key)
        label = rec.model_label() if rec is not None else run_model_label(Path(run_key).name)
        try:
            task = reload_task(w.controller, checkpoint, loader=w.model_loader, key=run_model_key(checkpoint), label=label)
        except LatentExplorerError as exc:
            w.notifier.error_occurred.emit(f"Reload failed: {exc}")
            return
        w.notifier.status_posted.emit(f"Reloading {label}…")
        w.runner.start("reload", task, on_result=self._on_reloaded,
                       on_error=lambda exc, _tb: w.notifier.status_posted.emit("Reload failed; the previous model is kept"))

    def _on_reloaded(self, r: Reloaded | None) -> None:
        if r is None:
            return
        w, n = self.window_, self.window_.notifier
        try:
            kept = commit_reload(w.controller, r)  # the controller tells the views
        except LatentExplorerError as exc:  # another dataset was opened while it encoded
            n.status_posted.emit(f"Reload dropped: {exc}")
            return
        self.last_reload = r
        if kept:
            w.decode(play=False)  # the selected sound, now from the new model
        moved = f"; points moved {100 * r.displacement:.1f}% of the map on average" if r.displacement is not None else ""
        n.status_posted.emit(f"Reloaded {r.model.label}{moved}")
        self.model_reloaded.emit(r.model.key)

    def fit_first_show(self, visible: bool) -> None:
        """Qt gives a new dock half the window; the form and curves read well in ~480 px and the
        map keeps the rest. Only the first time: after that the user's own width is kept."""
        if visible and not self._sized:
            self._sized = True
            w = self.window_
            w.resizeDocks([self], [min(480, w.width() // 3)], Qt.Orientation.Horizontal)

    # --- closing ------------------------------------------------------------------------------------------------------------
    def running(self) -> list[str]:
        return [k for k, p in self.procs.items() if p.is_running()]

    def confirm_close(self) -> bool:
        """Before the app closes: stop the runs, leave them going, or cancel the close."""
        keys = self.running()
        for w in self.watchers.values():
            w.stop()
        if not keys:
            return True
        answer = self.ask_close(len(keys))
        if answer == CLOSE_CANCEL:
            return False
        for key in keys:
            proc = self.procs[key]
            proc.stop()
            if not proc.wait(proc.stop_timeout_ms):
                proc.kill()
                proc.wait(3000)
            if answer == CLOSE_LEAVE:
                # the piped child cannot outlive us; the clean stop + exact resume loses nothing
                spec = self.runs[key].spec
                if spec is not None:
                    start_background_resume(train_args(spec, resume=True), command=self.trainer_command,
                                            log_path=Path(key) / "background.log")
        return True

    def _ask_close_dialog(self, n: int) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "latent-explorer",
                          f"{n} training run{'s are' if n > 1 else ' is'} still going.", parent=self.window_)
        box.setInformativeText("Stop saves a checkpoint you can resume later. Keep training goes on in "
                               "the background; watch its folder to follow it.")
        stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
        leave = box.addButton("Keep training", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return CLOSE_STOP if box.clickedButton() is stop else CLOSE_LEAVE if box.clickedButton() is leave else CLOSE_CANCEL


def install_trainer_panel(window: Any) -> TrainerPanel:
    """Add the dock (hidden until asked for) and a "Train…" action to ``window``."""
    panel = TrainerPanel(window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
    panel.hide()

    panel.visibilityChanged.connect(panel.fit_first_show)
    act = panel.toggleViewAction()
    act.setText("Train…")
    act.setShortcut("Ctrl+T")
    act.setToolTip("Train or fine-tune a model on a dataset, watch it learn, reload its best checkpoint")
    window.addAction(act)
    menu = window.menuBar().addMenu("&Train")
    menu.addAction(act)
    return panel
