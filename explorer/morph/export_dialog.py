"""The export dialog: what to write (morph, steps, selected sound), format, rate, folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from models.morphing.export_audio import DAW_RATE, ExportOptions

FORMATS = (("24-bit PCM", "pcm24"), ("16-bit PCM", "pcm16"), ("32-bit float", "float32"))
RATES = (44100, 48000, 88200, 96000)


class ExportDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, *, model_rate: int | None, has_sound: bool, has_path: bool,
                 last_dir: str = "", last_rate: int | None = DAW_RATE) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export audio")
        self.what = QComboBox()
        if has_path:
            self.what.addItem("The continuous morph (one WAV)", "morph")
            self.what.addItem("One WAV per step", "steps")
        if has_sound:
            self.what.addItem("The selected decoded sound", "sound")
        self.fmt = QComboBox()
        for text, key in FORMATS:
            self.fmt.addItem(text, key)
        self.rate = QComboBox()
        self.rate.addItem(f"model's rate ({model_rate} Hz)" if model_rate else "model's rate", None)
        for r in RATES:
            self.rate.addItem(f"{r} Hz", r)
        # a DAW's rate by default (48 kHz), or the one chosen last time
        self.rate.setCurrentIndex(max(0, self.rate.findData(last_rate)))
        self.normalize = QCheckBox("Normalise to -1 dBFS (one gain for all files)")
        self.normalize.setChecked(True)
        self.folder = QLineEdit(last_dir or str(Path.home()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Export", self.what)
        form.addRow("Format", self.fmt)
        form.addRow("Sample rate", self.rate)
        form.addRow("", self.normalize)
        form.addRow("Folder", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(self.what.count() > 0)
        form.addRow(buttons)

    def _on_browse_clicked(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if d:
            self.folder.setText(d)

    def result_values(self) -> tuple[str, ExportOptions]:
        return self.folder.text(), ExportOptions(what=self.what.currentData(), subtype=self.fmt.currentData(),
                                                 sample_rate=self.rate.currentData(), normalize=self.normalize.isChecked())
