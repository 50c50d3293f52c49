"""The morph panel: paths, their parameters, listening with a playhead, export and drag-out.

It owns a :class:`PathBook` (state and tasks) and a :class:`PathTool` (mouse and drawing), and
uses the window's TaskRunner, audio output and notifier. Renders start by themselves a moment
after an edit (debounced), on the runner's "morph" key, so a newer edit always wins.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QElapsedTimer, QMimeData, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.core.controller import Decoded
from explorer.core.metrics_task import metrics_task
from explorer.core.path_book import PathBook
from explorer.morph.export_dialog import ExportDialog
from explorer.morph.path_tool import PATH_COLOUR, PLACED_COLOUR, WAYPOINT_COLOUR, PathTool
from models.morphing import morph
from models.morphing.export_audio import (
    DAW_RATE,
    ExportOptions,
    default_drag_folder,
    drag_stem,
    finish_signals,
    free_stem,
    write_export,
)
from models.errors import ConfigError, LatentExplorerError
from models.inference.engine import ESTIMATED_PHASE, Sound, display_spectrogram
from models.morphing.morph import MorphParams
from models.morphing.render import MorphRender

PLAYHEAD_MS = 30
#: what the two lines on the map mean (colours from the map's pens)
LEGEND_HTML = (
    f'<span style="color:{PATH_COLOUR}; font-weight:bold;">━━</span>'
    f'<span style="color:{WAYPOINT_COLOUR};">●</span> your path, its waypoints and steps'
    f'&nbsp;&nbsp; <span style="color:{PLACED_COLOUR}; font-weight:bold;">╍╍◆</span> where the steps really land'
)
#: silence between steps when they are played as a sequence, as a fraction of a step
SEQUENCE_GAP = 0.25


class DragSource(QLabel):
    """A label that drags the rendered morph out of the app as a WAV file (a file URL)."""

    def __init__(self, make_file, parent: QWidget | None = None) -> None:  # noqa: ANN001
        super().__init__("⇩ drag the morph into your DAW", parent)
        self.make_file = make_file
        self.setStyleSheet("border: 1px dashed palette(mid); padding: 4px;")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setToolTip("Drag onto a DAW track or a folder: a 24-bit WAV of the continuous morph")
        self._start = None

    def mime_data(self) -> QMimeData | None:
        path = self.make_file()
        if path is None:
            return None
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        return mime

    def mousePressEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        self._start = ev.position()

    def mouseMoveEvent(self, ev) -> None:  # noqa: ANN001, N802 - Qt override
        if self._start is None or (ev.position() - self._start).manhattanLength() < QApplication.startDragDistance():
            return
        self._start = None
        mime = self.mime_data()
        if mime is not None:
            drag = QDrag(self)
            drag.setMimeData(mime)
            drag.exec(Qt.DropAction.CopyAction)


class PathPanel(QWidget):
    """Paths list, parameters, play/stop/export; talks to the window it is given."""

    render_finished = Signal()

    def __init__(self, window, parent: QWidget | None = None) -> None:  # noqa: ANN001 - MainWindow
        super().__init__(parent)
        self.w = window
        self.book = PathBook(window.controller)
        self.tool = PathTool(window.map_view, self.book, self)
        self.tool.default_params = self.params
        #: (render, its drag file): a render is written once, however often it is dragged
        self._drag: tuple[Any, Path] | None = None
        self._play: dict[str, Any] | None = None
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setInterval(PLAYHEAD_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(150)
        self._render_timer.timeout.connect(self.render_now)

        self.mode_btn = QPushButton("✎ Path mode (M)")
        self.mode_btn.setCheckable(True)
        self.mode_btn.setToolTip("Click points or class centres to add waypoints, drag on empty space to draw a path, "
                                 "drag a waypoint to move it")
        self.paths_list = QListWidget()
        self.paths_list.setMaximumHeight(70)
        self.new_btn = QPushButton("New path")
        self.del_btn = QPushButton("Delete")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(2, morph.MAX_STEPS)
        self.steps_spin.setValue(8)
        self.interp_combo = QComboBox()
        self.interp_combo.addItem("linear", "linear")
        self.interp_combo.addItem("spherical (slerp)", "spherical")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("evolving notes", "trajectory")
        self.mode_combo.addItem("freeze (one held frame)", "freeze")
        self.mode_combo.setToolTip("Evolving: each step is a note whose codes move over time like its ends' notes. "
                                   "Freeze: each step holds one code for the whole note (Colonel's synthesiser)")
        self.centre_combo = QComboBox()
        self.centre_combo.addItem("barycentre", "barycentre")
        self.centre_combo.addItem("medoid", "medoid")
        self.centre_combo.setToolTip("What a click on a class centre (+) adds, over the class's visible sounds: the "
                                     "time-aligned mean of their notes, or the one note nearest to all the others")
        self.dur_spin = QDoubleSpinBox()
        self.dur_spin.setRange(0.0, 60.0)
        self.dur_spin.setDecimals(2)
        self.dur_spin.setSingleStep(0.1)
        self.dur_spin.setSpecialValueText("clip length")
        self.dur_spin.setSuffix(" s")
        self.fade_spin = QSpinBox()
        self.fade_spin.setRange(0, 95)
        self.fade_spin.setValue(50)
        self.fade_spin.setSuffix(" %")
        self.play_steps_btn = QPushButton("▶ Steps")
        self.play_morph_btn = QPushButton("▶ Morph")
        self.stop_btn = QPushButton("■ Stop")
        self.export_btn = QPushButton("Export…")
        self.drag = DragSource(self.drag_file)
        self.info = QLabel("No path yet: switch on path mode and click or draw on the map")
        self.info.setWordWrap(True)
        self.legend = QLabel(LEGEND_HTML)
        self.legend.setWordWrap(True)
        # the map's dark background, so the swatches look as the lines do on the map
        self.legend.setStyleSheet("background: #1e1f22; color: #e8e8e8; padding: 4px; border-radius: 3px;")
        self.legend.setToolTip("The decoded steps are placed back on the map (PCA / t-SNE transform): "
                               "when they stray from your path, the model does not sound like the map suggests there")
        self.steps_list = QListWidget()
        self.steps_list.setMaximumHeight(80)
        self.steps_list.setToolTip("Double-click a step to hear it and see it in the sound panel")

        box = QGroupBox("Morph paths")
        lay = QVBoxLayout(box)
        top = QHBoxLayout()
        for b in (self.mode_btn, self.new_btn, self.del_btn):
            top.addWidget(b)
        lay.addLayout(top)
        lay.addWidget(self.paths_list)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.steps_spin)
        row.addWidget(self.interp_combo, 1)
        form.addRow("Steps", row)
        row2 = QHBoxLayout()
        row2.addWidget(self.dur_spin)
        overlap = QLabel("overlap")
        overlap.setToolTip("How much of a step's slot the next overlaps: sets the continuous morph's length "
                           "(the morph is one sound whose weight moves smoothly from end to end)")
        row2.addWidget(overlap)
        row2.addWidget(self.fade_spin)
        form.addRow("Step", row2)
        row3 = QHBoxLayout()
        row3.addWidget(self.mode_combo, 1)
        row3.addWidget(QLabel("centres"))
        row3.addWidget(self.centre_combo, 1)
        form.addRow("Steps are", row3)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        for b in (self.play_steps_btn, self.play_morph_btn, self.stop_btn, self.export_btn):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        lay.addWidget(self.drag)
        lay.addWidget(self.legend)
        lay.addWidget(self.info)
        lay.addWidget(self.steps_list)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(box)

        self.mode_btn.toggled.connect(self.tool.set_active)
        self.new_btn.clicked.connect(self._on_new_clicked)
        self.del_btn.clicked.connect(self.delete_path)
        self.paths_list.currentRowChanged.connect(self._on_paths_list_row_changed)
        for sig in (self.steps_spin.valueChanged, self.interp_combo.currentIndexChanged,
                    self.dur_spin.valueChanged, self.fade_spin.valueChanged, self.mode_combo.currentIndexChanged):
            sig.connect(self._on_params_edited)
        self.centre_combo.currentIndexChanged.connect(
            lambda _i: setattr(self.book, "centre_statistic", self.centre_combo.currentData()))
        self.play_steps_btn.clicked.connect(self.play_steps)
        self.play_morph_btn.clicked.connect(self.play_morph)
        self.stop_btn.clicked.connect(self.stop)
        self.export_btn.clicked.connect(self.open_export_dialog)
        self.steps_list.itemDoubleClicked.connect(lambda item: self.select_step(self.steps_list.row(item)))
        self.tool.paths_edited.connect(self._on_tool_paths_edited)
        self.tool.waypoint_refused.connect(self.w.notifier.status_posted)
        self.sync()

    # --- state -> widgets -------------------------------------------------------------------------
    def sync(self) -> None:
        b = self.book
        self.paths_list.blockSignals(True)
        self.paths_list.clear()
        for p in b.paths:
            n = len(p.waypoints)
            other = "" if p.model_key in (None, b.c.current_key) else " (other model)"
            self.paths_list.addItem(f"{p.name}: {p.title()} ({n} waypoint{'s' * (n != 1)}){other}")
        if b.current is not None:
            self.paths_list.setCurrentRow(b.current)
        self.paths_list.blockSignals(False)
        p = b.path
        for wdg in (self.steps_spin, self.interp_combo, self.dur_spin, self.fade_spin, self.mode_combo):
            wdg.blockSignals(True)
        if p is not None:
            self.steps_spin.setValue(p.params.n_steps)
            self.interp_combo.setCurrentIndex(self.interp_combo.findData(p.params.interpolation))
            self.dur_spin.setValue(p.params.step_duration or 0.0)
            self.fade_spin.setValue(int(round(p.params.crossfade * 100)))
            self.mode_combo.setCurrentIndex(self.mode_combo.findData(p.params.mode))
        for wdg in (self.steps_spin, self.interp_combo, self.dur_spin, self.fade_spin, self.mode_combo):
            wdg.blockSignals(False)
        r = b.render_of(p)
        has = r is not None
        for btn in (self.play_steps_btn, self.play_morph_btn, self.export_btn):
            btn.setEnabled(has)
        self.drag.setEnabled(has)
        self.steps_list.clear()
        if has:
            for k in range(len(r.steps)):
                self.steps_list.addItem(f"step {k + 1}")
            self.info.setText(f"{len(r.steps)} steps of {r.step_samples / r.sr:.2f} s; morph {len(r.morph) / r.sr:.2f} s, "
                              f"one sound. {r.made[:1].upper() + r.made[1:]}.")
        elif p is not None and len(p.waypoints) < 2:
            self.info.setText("Add another waypoint: click a point, a class centre (+) or empty space")
        self.tool.redraw()

    def params(self) -> MorphParams:
        d = float(self.dur_spin.value())
        return MorphParams(n_steps=int(self.steps_spin.value()), interpolation=self.interp_combo.currentData(),
                           step_duration=d if d > 0 else None, crossfade=self.fade_spin.value() / 100.0,
                           mode=self.mode_combo.currentData())

    # --- intents -------------------------------------------------------------------------------------
    def _on_new_clicked(self) -> None:
        """The next click starts a new path."""
        self.book.current = None
        self.mode_btn.setChecked(True)
        self.sync()

    def delete_path(self) -> None:
        if self.book.path is None:
            return
        before = self.book.snapshot()
        del self.book.paths[self.book.current]
        self.book.current = (len(self.book.paths) - 1) if self.book.paths else None
        self.tool.push(before, "delete path")

    def _on_paths_list_row_changed(self, row: int) -> None:
        if 0 <= row < len(self.book.paths):
            self.book.current = row
            self.stop()
            self.sync()
            self.schedule_render()

    def _on_params_edited(self, *_: Any) -> None:
        p = self.book.path
        if p is None:
            return
        new = self.params()
        if new != p.params:
            before = self.book.snapshot()
            p.params = new
            self.tool.push(before, "change path parameters")

    def _on_tool_paths_edited(self) -> None:
        self.sync()
        self.schedule_render()

    # --- rendering -------------------------------------------------------------------------------------
    def schedule_render(self) -> None:
        p = self.book.path
        if p is not None and len(p.waypoints) >= 2 and self.book.render_of(p) is None:
            self._render_timer.start()

    def render_now(self) -> None:
        p = self.book.path
        if p is None or len(p.waypoints) < 2 or self.w.controller.embedding is None:
            return
        if p.model_key not in (None, self.w.controller.current_key):
            self.info.setText("This path was drawn with another model: select that model to hear it")
            return
        self.info.setText("Rendering…")
        self.w.runner.start("morph", self.book.render_task(p), on_result=self._on_rendered)

    def _on_rendered(self, result: tuple) -> None:
        self.book.set_render(*result)
        self.sync()
        self.render_finished.emit()

    def on_embedding_changed(self, final: bool) -> None:
        """A new map: waypoints follow their points, centres and codes; renders are redone."""
        self.stop()
        if not final:
            return
        task = self.book.rebind_task()
        if task is None:
            self.sync()
            return

        def done(result: list) -> None:
            self.book.apply_rebind(result)
            self.sync()
            self.schedule_render()

        self.w.runner.start("paths-rebind", task, on_result=done)

    def load_paths(self, dicts: list[dict]) -> None:
        """Paths from a session (replacing the current ones; the undo history starts afresh)."""
        self.w.controller.set_paths([morph.MorphPath.from_dict(d) for d in dicts])
        self.book.current = 0 if self.book.paths else None
        self.book.renders.clear()
        self.tool.undo_stack.clear()
        self.sync()

    # --- listening -------------------------------------------------------------------------------------------
    def play_morph(self) -> None:
        r = self.book.render_of(self.book.path)
        if r is not None:
            self._start_playback(r.morph, r, "morph")

    def play_steps(self) -> None:
        r = self.book.render_of(self.book.path)
        if r is None:
            return
        gap = np.zeros(int(SEQUENCE_GAP * r.step_samples), np.float32)
        seq = np.concatenate([x for s in r.steps for x in (s, gap)][:-1])
        self._start_playback(seq, r, "steps")

    def _start_playback(self, y: np.ndarray, r: MorphRender, kind: str) -> None:
        self.w.audio.play(y, r.sr)
        self._play = {"render": r, "kind": kind, "n": len(y)}
        self._clock.start()
        self._timer.start()
        self._on_timer_timeout()

    def playhead_xy(self, sample: float) -> np.ndarray | None:
        """Where on the path the sound at ``sample`` comes from (None: done playing)."""
        if self._play is None or sample >= self._play["n"]:
            return None
        r = self._play["render"]
        if self._play["kind"] == "steps":
            period = r.step_samples + int(SEQUENCE_GAP * r.step_samples)
            return r.xy[min(int(sample // period), len(r.xy) - 1)]
        # the morph: its weight passes step k half a step into step k's slot (render.morph_schedule)
        s = float(np.clip((sample - 0.5 * r.step_samples) / max(r.hop_samples, 1), 0.0, len(r.xy) - 1))
        k = min(int(s), len(r.xy) - 2)
        u = s - k
        return (1 - u) * r.xy[k] + u * r.xy[k + 1]

    def _on_timer_timeout(self) -> None:
        if self._play is None:
            self._timer.stop()
            return
        sample = self._clock.elapsed() / 1000.0 * self._play["render"].sr
        xy = self.playhead_xy(sample)
        self.tool.show_playhead(xy)
        if xy is None:
            self._play = None
            self._timer.stop()

    def stop(self) -> None:
        if self._play is not None:
            self.w.audio.stop()
        self._play = None
        self._timer.stop()
        self.tool.show_playhead(None)

    def shutdown(self) -> None:
        """The window is closing: stop timers and let go of the map's events (drag files stay)."""
        self.stop()
        self._render_timer.stop()
        self.tool.detach()

    def select_step(self, k: int) -> None:
        """Hear step ``k`` and show it in the sound panel (it can then be exported on its own)."""
        r = self.book.render_of(self.book.path)
        if r is None or not 0 <= k < len(r.steps):
            return
        y = r.steps[k]
        s = Sound(y=y, sr=r.sr, title=f"{self.book.path.title()} step {k + 1}/{len(r.steps)}", estimated=True,
                  spectrogram=display_spectrogram(y, r.sr), phase=ESTIMATED_PHASE, made=r.made)
        c = self.w.controller
        d = Decoded(None, s, morph_step=r.trajectories[k])
        c.set_decoded(d)
        # its MFCC-DTW deviation against the class nearest to where the step really lands
        where = r.placed[k] if r.placed is not None else r.xy[k]
        self.w.runner.start("metrics", metrics_task(d, c, xy=where), on_result=c.set_metrics, on_partial=c.set_metrics)
        self.stop()
        self.w.audio.play(y, r.sr)
        self.tool.show_playhead(r.xy[k])

    # --- export and drag ----------------------------------------------------------------------------------------
    def open_export_dialog(self) -> None:
        """Ask what to export and where (the Export button, Ctrl+E), then export on a worker."""
        dlg = ExportDialog(self, model_rate=self.w.controller.current.representation.sample_rate
                           if self.w.controller.current else None,
                           has_sound=self.book.selected_sound_source() is not None,
                           has_path=self.book.render_of(self.book.path) is not None,
                           last_dir=str(self.w.settings.value("export/dir", str(Path.home()))),
                           last_rate=self.export_rate())
        if dlg.exec():
            folder, options = dlg.result_values()
            self.w.settings.setValue("export/dir", folder)
            self.w.settings.setValue("export/rate", int(options.sample_rate or 0))
            self.export_to(folder, options)

    def export_to(self, folder: str | Path, options: ExportOptions) -> None:
        """Export on a worker; errors reach the user, success names the files."""
        try:
            if options.what == "sound":
                src = self.book.selected_sound_source()
                if src is None:
                    raise ConfigError("select a sound first")
                task = self.book.export_sound_task(src[0], src[1], folder, options)
            else:
                task = self.book.export_path_task(self.book.path, folder, options)
        except (LatentExplorerError, OSError) as exc:  # shown to the user, like worker errors
            self.w.notifier.error_occurred.emit(f"Export failed: {exc}")
            return

        def done(paths: list) -> None:
            self.last_export = [Path(p) for p in paths]
            self.w.notifier.status_posted.emit(f"Exported {len(paths)} file(s) to {folder}")

        self.w.runner.start("export", task, on_result=done)

    def drag_file(self) -> Path | None:
        """A 24-bit WAV of the current morph, at the export rate, in the drag folder.

        The folder is the setting ``drag/dir`` (default: models.morphing.export_audio.default_drag_folder),
        persistent and visible, because a DAW may reference the dropped file rather than copy it:
        each render gets its own file (dragging it again reuses it), and the app never
        overwrites or deletes one.
        """
        r = self.book.render_of(self.book.path)
        if r is None:
            return None
        if self._drag is not None and self._drag[0] is r and self._drag[1].exists():
            return self._drag[1]
        folder = Path(str(self.w.settings.value("drag/dir", "") or default_drag_folder()))
        options = ExportOptions(what="morph", subtype="pcm24", sample_rate=self.export_rate(), normalize=True)
        (y,), sr = finish_signals([r.morph], r.sr, options)
        stem = drag_stem(options, title=self.book.path.title(), model=self.book.model_short_name(),
                         n_steps=len(r.steps), when=time.time())
        stem = free_stem(folder, stem, lambda s: [s + ".wav"])
        path = write_export(folder, [(stem + ".wav", y)], sr=sr, subtype=options.subtype)[0]
        self._drag = (r, path)
        return path

    def export_rate(self) -> int | None:
        """The rate exports and drags are written at: the last one chosen (default 48 kHz);
        ``None`` (the model's own rate) only when the user chose that."""
        value = self.w.settings.value("export/rate", DAW_RATE)
        try:
            rate = int(value)
        except (TypeError, ValueError):
            return DAW_RATE
        return rate or None
