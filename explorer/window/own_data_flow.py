"""The window's part for a user's own folders: the map without a model, finding and filtering
sounds, play-on-hover, the skipped-files button, and the current sound out of the sound panel.

:class:`OwnDataFlow` is made once by the main window and wires views to the controller; it
computes nothing itself (the descriptor map is :mod:`models.mapping.descriptors`, run on the
window's task runner).

* No model can read the open dataset (or none is loaded): the map shows the clips placed by
  audio descriptors, clicks play the originals, and a button offers to train a model on them.
  A model added later becomes current, and its latent map replaces the descriptor map.
* The search bar lights up matches; its filter shows one value of any field.
* The sound panel's Export button opens the export dialog on the current sound; its drag
  handle writes that sound as a WAV into the drag folder and drags the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QPushButton

from explorer.core.own_data import DESCRIPTORS, originals_task
from explorer.window.skipped_dialog import SkippedButton
from models.inference.fit import check_fit
from models.mapping.descriptors import descriptor_task
from models.morphing.export_audio import default_drag_folder

TRAIN_OFFER = "No model for these sounds: the map places them by audio descriptors, clicks play the originals. " \
              "Train a model on them…"


class OwnDataFlow(QObject):
    """Wires the search bar, the descriptor map, hover playback and the sound panel's export."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = w = window
        c = w.controller
        self.hover_play = False
        self.last_fit_notes: tuple[str, ...] = ()
        self._drag: tuple[Any, Path] | None = None
        self.skipped_button = SkippedButton(c, w.statusBar())
        w.statusBar().insertPermanentWidget(1, self.skipped_button)  # after the summary, before sound
        self.train_offer = QPushButton(TRAIN_OFFER)
        self.train_offer.setToolTip("Open the trainer on this dataset; its sample rate is filled in")
        self.train_offer.setStyleSheet("text-align: left; color: #d9a300; padding: 3px;")
        self.train_offer.setMinimumWidth(10)  # a narrow window elides it rather than growing
        self.train_offer.hide()
        self.train_offer.clicked.connect(self.offer_training)
        area = w.search_bar.parentWidget().layout()
        area.insertWidget(area.indexOf(w.search_bar) + 1, self.train_offer)
        self.act_fit = QAction("Fit the map to its sounds", w)
        self.act_fit.setShortcuts([QKeySequence("F"), QKeySequence("Home")])
        self.act_fit.triggered.connect(w.map_view.fit_view)
        w.addAction(self.act_fit)
        bar, mv = w.search_bar, w.map_view
        bar.query_changed.connect(self._apply_search)
        bar.jump_requested.connect(mv.jump_to_matches)
        bar.filter_chosen.connect(lambda field, values: c.map_filter.set(field, values))
        bar.hover_play_toggled.connect(self._on_hover_play_toggled)
        mv.point_hovered.connect(self._on_map_point_hovered)
        c.map_filter.changed.connect(self._on_filter_changed)
        c.dataset_changed.connect(lambda: bar.set_dataset(c.dataset))
        c.embedding_changed.connect(lambda final: self._apply_search(bar.search.text()) if final else None)
        for sig in (c.model_changed, c.dataset_changed, c.encoding_changed):
            sig.connect(self._sync_offer)
        c.model_changed.connect(self._post_fit_notes)
        w.sound_panel.export_requested.connect(w.path_panel.open_export_dialog)
        w.sound_panel.drag.make_file = self.sound_drag_file

    # --- the map without a model --------------------------------------------------------------------------
    def show_descriptor_map(self) -> None:
        """Map the open dataset by audio descriptors (on a worker; Esc cancels it like encoding)."""
        c = self.w.controller
        if c.dataset is None:
            return
        self.w.notifier.status_posted.emit("No model for these sounds: mapping them by audio descriptors…")
        self.w.runner.start("encode", descriptor_task(c.dataset, cache=c.cache), on_result=self._on_described)

    def _on_described(self, enc: Any) -> None:
        c = self.w.controller
        if enc is None or c.current is not None:  # cancelled, or a model arrived meanwhile
            return
        c.show_descriptors(enc)
        self.w.project()

    def _post_fit_notes(self) -> None:
        """Say how the current model reads the dataset (resampled from 8 kHz, clips cut...)."""
        c = self.w.controller
        if c.current is None or c.dataset is None:
            return
        notes = check_fit(c.current, c.dataset).notes
        if notes:
            self.w.notifier.status_posted.emit(f"{c.current.label}: " + "; ".join(notes))
            self.last_fit_notes = notes

    def _sync_offer(self) -> None:
        c = self.w.controller
        self.train_offer.setVisible(c.dataset is not None and c.current_key in (None, DESCRIPTORS))

    def offer_training(self) -> None:
        """Open the trainer panel on this dataset (the form fills in its rate)."""
        c, panel = self.w.controller, self.w.trainer_panel
        panel.form.data.setText(c.dataset_path or "")
        panel.form.set_dataset_rate(getattr(c.dataset, "sample_rate", None))
        panel.show()
        panel.raise_()

    # --- search, filter, hover -----------------------------------------------------------------------------------
    def _apply_search(self, query: str) -> None:
        n = self.w.map_view.set_search(query)
        self.w.search_bar.set_found(n, query)

    def _on_filter_changed(self) -> None:
        c, mv = self.w.controller, self.w.map_view
        mv.redraw_visibility()
        self._apply_search(self.w.search_bar.search.text())
        if len(c.points):
            shown = int(c.visible_mask().sum())
            what = c.map_filter.describe()
            self.w.notifier.status_posted.emit(f"Showing {shown} of {len(c.points)} sounds" + (f" ({what})" if what else ""))

    def _on_hover_play_toggled(self, on: bool) -> None:
        self.hover_play = bool(on)

    def _on_map_point_hovered(self, i: int) -> None:
        c = self.w.controller
        if not self.hover_play or c.dataset is None or i >= len(c.point_clip):
            return
        clip = int(c.point_clip[i])
        self.w.runner.start("hover", originals_task(c.dataset, clip),
                            on_result=lambda sounds: self.w.audio.play(sounds[0].y, sounds[0].sr))

    # --- the current sound out of the app -------------------------------------------------------------------------
    def sound_drag_file(self) -> Path | None:
        """The sound panel's current sound as a 24-bit WAV in the drag folder (one file per sound).

        The folder is the morph drag's (setting ``drag/dir``): a DAW may reference a dropped file,
        so it is kept, never overwritten.
        """
        from models.morphing.export_audio import ExportOptions, finish_signals, free_stem, write_export

        d = self.w.controller.decoded
        if d is None:
            return None
        sound = d.decoded
        if self._drag is not None and self._drag[0] is sound and self._drag[1].exists():
            return self._drag[1]
        folder = Path(str(self.w.settings.value("drag/dir", "") or default_drag_folder()))
        options = ExportOptions(what="sound", subtype="pcm24", sample_rate=self.w.path_panel.export_rate(),
                                normalize=False)
        (y,), sr = finish_signals([sound.y], sound.sr, options)
        base = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in sound.title)[:80] or "sound"
        stem = free_stem(folder, f"{base}_{time.strftime('%Y%m%d-%H%M%S')}", lambda s: [s + ".wav"])
        path = write_export(folder, [(stem + ".wav", y)], sr=sr, subtype=options.subtype)[0]
        self._drag = (sound, Path(path))
        return Path(path)
