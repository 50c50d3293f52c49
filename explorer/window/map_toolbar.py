"""The main toolbar's choices: model, projection, colour field, one point per clip or frame.

A view like the others: it shows the controller's state (re-reading it whenever the controller
announces a change) and emits what the user picked; the window turns a pick into an action.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar, QWidget

from explorer.core.controller import Controller, LoadedModel
from explorer.core.field_names import field_display_name
from explorer.core.training_runs import checkpoint_label


class MapToolbar(QToolBar):
    """Combos over the controller's models, projections, colour fields and point modes.

    Signals
    -------
    model_chosen(str), projection_chosen(str), colour_chosen(str), point_mode_chosen(str)
        The user picked a model key, ``"pca"``/``"tsne"``, a label field, ``"clip"``/``"frame"``.
    """

    model_chosen = Signal(str)
    projection_chosen = Signal(str)
    colour_chosen = Signal(str)
    point_mode_chosen = Signal(str)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__("main", parent)
        self.setObjectName("main-toolbar")
        self.controller = controller
        self.model_combo = QComboBox()
        # short names in the combo, the whole story in its tooltip
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
        self.model_combo.activated.connect(self._on_model_combo_activated)
        self.projection_combo.activated.connect(lambda _i: self.projection_chosen.emit(self.projection_combo.currentData()))
        self.colour_combo.activated.connect(lambda _i: self.colour_chosen.emit(self.colour_combo.currentData()))
        self.mode_combo.activated.connect(lambda _i: self.point_mode_chosen.emit(self.mode_combo.currentData()))
        c = controller
        for sig in (c.dataset_changed, c.models_changed, c.model_changed, c.encoding_changed, c.mapping_changed,
                    c.colours_changed):
            sig.connect(self.sync)

    def add_combos(self) -> None:
        """Put the combos (with their labels) after whatever actions the window added first."""
        for label, w in (("Model", self.model_combo), ("Map", self.projection_combo),
                         ("Colour", self.colour_combo), ("", self.mode_combo)):
            if label:
                self.addWidget(QLabel(f" {label} "))
            self.addWidget(w)
        self.sync()

    def _on_model_combo_activated(self, index: int) -> None:
        key = self.model_combo.itemData(index)
        if key and key != self.controller.current_key:
            self.model_chosen.emit(key)

    def sync(self) -> None:
        """Show the controller's state; a combo changed from code emits nothing."""
        c = self.controller
        combos = (self.model_combo, self.colour_combo, self.projection_combo, self.mode_combo)
        for combo in combos:
            combo.blockSignals(True)
        self.model_combo.clear()
        for key, lm in c.models.items():
            self.model_combo.addItem(model_short_label(lm), key)
            self.model_combo.setItemData(self.model_combo.count() - 1, model_tooltip(lm), Qt.ItemDataRole.ToolTipRole)
        if c.current_key:
            self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(c.current_key)))
        if c.current is not None:
            self.model_combo.setToolTip(model_tooltip(c.current))
        self.colour_combo.clear()
        for name in c.colour_fields():  # human names, the real field as item data
            self.colour_combo.addItem(field_display_name(name), name)
            self.colour_combo.setItemData(self.colour_combo.count() - 1, f"label field: {name}", Qt.ItemDataRole.ToolTipRole)
        if c.colour_field:
            self.colour_combo.setCurrentIndex(max(0, self.colour_combo.findData(c.colour_field)))
        self.projection_combo.setCurrentIndex(self.projection_combo.findData(c.method))
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(c.point_mode))
        self.mode_combo.setEnabled(c.encoding is not None and c.encoding.has_time)
        for combo in combos:
            combo.blockSignals(False)


def model_short_label(lm: LoadedModel) -> str:
    """What the model combo shows: the checkpoint's name (a run's: run, step, validation loss) and model type."""
    if lm.checkpoint is None or not lm.key:
        return Path(lm.key).stem if lm.key else lm.label
    info = lm.checkpoint.info
    return checkpoint_label(lm.key, model_name=info.model_name or "", training=info.training)


def model_tooltip(lm: LoadedModel) -> str:
    """Checkpoint path, preset, model, representation and sample rate of a loaded model."""
    rep = lm.representation
    info = lm.checkpoint.info if lm.checkpoint is not None else None
    lines = [lm.label, f"checkpoint: {lm.key}"]
    preset = getattr(info, "preset", None)
    if preset:
        lines.append(f"preset: {preset}")
    model_name = getattr(info, "model_name", None)
    if model_name:
        lines.append(f"model: {model_name}")
    lines.append(f"representation: {getattr(rep, 'kind', '?')}, {getattr(rep, 'sample_rate', '?')} Hz")
    return "\n".join(lines)
