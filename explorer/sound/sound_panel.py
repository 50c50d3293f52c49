"""The selected sound: waveforms, spectrograms, metrics, play buttons; and the latent gains.

Both panels only draw and emit intents; spectrograms and metrics arrive computed.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDial,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.core.controller import N_BANDS, Decoded
from explorer.morph.path_panel import DragSource

ORIGINAL_PEN = pg.mkPen("#9aa0a6", width=1)
DECODED_PEN = pg.mkPen("#f28e2b", width=1)
ESTIMATE_TEXT = "Estimated from map position: no original sound here"
STEP_TEXT = "A step of a morph path: no original sound"
ROW_PX = 20
#: what a metric means, shown on hover (keys are prefixes of the table's metric names)
METRIC_HELP = {
    "RMSE": "root-mean-square difference of the [0, 1]-scaled dB spectrograms (0: identical)",
    "SSIM": "structural similarity of the spectrograms (1: identical)",
    "spectral convergence": "‖S − Ŝ‖ / ‖S‖ on linear STFT magnitudes (0: identical)",
    "harmonic": "spectral peaks of the decoding that match the original's within 3 % (Natsiou)",
    "MFCC-DTW": "(DTW to the decoding − mean DTW to class mates) / their std, on MFCCs (Lionello 5.1). "
                "Negative: the decoding is closer to the original than its class mates are. "
                "For an estimate: the class mean, with the estimate in the centre's place.",
}


class SoundPanel(QWidget):
    """Original and decoded sound side by side, with metrics and play buttons."""

    play_decoded_requested = Signal()
    play_original_requested = Signal()
    stop_requested = Signal()
    #: Export… under the sound: the export dialog, on the current sound
    export_requested = Signal()
    #: the "original phase" reference was switched on (True) or off: clicks on clips decode again
    original_phase_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Click a sound on the map, or anywhere between sounds")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold;")
        self.estimate_label = QLabel(ESTIMATE_TEXT)
        self.estimate_label.setStyleSheet("color: #d9a300;")
        self.estimate_label.setVisible(False)
        #: how the decoded sound was made (model magnitude, which phase), always said
        self.made_label = QLabel("")
        self.made_label.setStyleSheet("color: palette(mid);")
        self.original_phase = QCheckBox("original phase (reference)")
        self.original_phase.setToolTip(
            "Decode a clicked clip with the clip's own STFT phase instead of the estimated phase every other "
            "sound uses (empty space, morph steps): a reference for the model's magnitudes alone. Off, a path's "
            "end step is exactly what clicking its end point plays.")
        self.original_phase.toggled.connect(self.original_phase_toggled)

        self.wave = pg.PlotWidget(background="#1e1f22")
        self.wave.setMinimumHeight(60)
        self.wave.setMouseEnabled(x=True, y=False)
        self.wave.getPlotItem().getAxis("left").setStyle(showValues=False)
        self.wave.setLabel("bottom", "time", units="s")
        self.wave_orig = self.wave.plot(pen=ORIGINAL_PEN, name="original")
        self.wave_dec = self.wave.plot(pen=DECODED_PEN, name="decoded")

        self.spec_orig, self.img_orig = self._spec_plot("original")
        self.spec_dec, self.img_dec = self._spec_plot("decoded")

        self.metrics = QTableWidget(0, 2)
        self.metrics.setHorizontalHeaderLabels(["metric", "value"])
        self.metrics.verticalHeader().setVisible(False)
        # the names take what the numbers leave, elided in a narrow window (full name on hover)
        self.metrics.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.metrics.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.metrics.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.metrics.setWordWrap(False)
        self.metrics.verticalHeader().setDefaultSectionSize(ROW_PX)
        self.metrics.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

        self.play_dec = QPushButton("▶ Decoded (Space)")
        self.play_orig = QPushButton("▶ Original (O)")
        self.stop_btn = QPushButton("■ Stop (Esc)")
        self.export_btn = QPushButton("Export…")
        self.export_btn.setToolTip("Write this sound as a WAV file (with a spec that renders it again)")
        # the window gives the drag its file maker: the current sound, written into the drag folder
        self.drag = DragSource(lambda: None)
        self.drag.setText("⇩ drag")
        self.drag.setToolTip("Drag this sound onto a DAW track or a folder: a 24-bit WAV")
        self.play_dec.clicked.connect(self.play_decoded_requested)
        self.play_orig.clicked.connect(self.play_original_requested)
        self.stop_btn.clicked.connect(self.stop_requested)
        self.export_btn.clicked.connect(self.export_requested)
        buttons = QHBoxLayout()
        for b in (self.play_dec, self.play_orig, self.stop_btn, self.export_btn, self.drag):
            buttons.addWidget(b)

        specs = QHBoxLayout()
        specs.addWidget(self.spec_orig)
        specs.addWidget(self.spec_dec)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.estimate_label)
        made = QHBoxLayout()
        made.addWidget(self.made_label, 1)
        made.addWidget(self.original_phase)
        lay.addLayout(made)
        lay.addLayout(buttons)
        lay.addWidget(self.wave, 1)
        lay.addLayout(specs, 2)
        lay.addWidget(self.metrics)
        self.set_decoded(None)

    def _spec_plot(self, title: str) -> tuple[pg.PlotWidget, pg.ImageItem]:
        w = pg.PlotWidget(background="#1e1f22", title=title)
        w.setMinimumHeight(70)
        w.setMouseEnabled(x=False, y=False)
        w.hideAxis("left")
        w.hideAxis("bottom")
        img = pg.ImageItem(axisOrder="row-major")
        img.setColorMap(pg.colormap.get("magma"))
        w.addItem(img)
        return w, img

    def set_decoded(self, d: Decoded | None) -> None:
        """Show a decoded sound (and its original when it has one); ``None`` clears."""
        if d is None:
            for curve in (self.wave_orig, self.wave_dec):
                curve.setData([], [])
            for img in (self.img_orig, self.img_dec):
                img.clear()
            self.estimate_label.setVisible(False)
            self.made_label.setText("")
            for w in (self.play_dec, self.play_orig, self.export_btn, self.drag):
                w.setEnabled(False)
            self.set_metrics({})
            return
        self.title.setText(d.decoded.title)
        self.estimate_label.setVisible(d.decoded.estimated)
        is_step = d.morph_step is not None
        self.estimate_label.setText(STEP_TEXT if is_step else ESTIMATE_TEXT)
        self.made_label.setText(f"decoded: {d.decoded.made}" if d.decoded.made else "")
        self.play_dec.setEnabled(True)
        self.export_btn.setEnabled(True)
        self.drag.setEnabled(True)
        self.play_orig.setEnabled(d.original is not None)
        self._show(d.decoded, self.wave_dec, self.img_dec)
        if d.original is not None:
            self._show(d.original, self.wave_orig, self.img_orig)
            self.spec_orig.setTitle("original")
        else:
            self.wave_orig.setData([], [])
            self.img_orig.clear()
            self.spec_orig.setTitle("no original")
        self.set_metrics(d.metrics)

    @staticmethod
    def _show(sound, curve: pg.PlotDataItem, img: pg.ImageItem) -> None:  # noqa: ANN001 - engine.Sound
        y = sound.y
        step = max(1, len(y) // 4000)  # draw at most ~4000 samples: min/max would be nicer, this is enough
        t = np.arange(0, len(y), step) / sound.sr
        curve.setData(t, y[::step])
        if sound.spectrogram is not None:
            img.setImage(sound.spectrogram, levels=(-80.0, 0.0))

    def set_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.setRowCount(len(metrics))
        for r, (k, v) in enumerate(metrics.items()):
            name, value = QTableWidgetItem(k), QTableWidgetItem(f"{v:.4g}" if isinstance(v, float) else str(v))
            tip = next((h for p, h in METRIC_HELP.items() if k.startswith(p)), "")
            name.setToolTip(f"{k}\n{tip}" if tip else k)
            value.setToolTip(f"{k}\n{tip}" if tip else k)
            self.metrics.setItem(r, 0, name)
            self.metrics.setItem(r, 1, value)
        # as tall as its rows (at least two): no scrolling inside a panel for seven numbers
        header = self.metrics.horizontalHeader().sizeHint().height()
        self.metrics.setFixedHeight(header + ROW_PX * max(2, len(metrics)) + 2 * self.metrics.frameWidth() + 2)


class GainsPanel(QGroupBox):
    """Colonel's dials: five gains over contiguous bands of latent units, band edges on sliders.

    Values are emitted when a dial or slider is released, so dragging does not queue decodes.
    """

    gains_edited = Signal(list, list)  # values, edges (fractions)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Latent gains (per band of latent units)", parent)
        self.dials: list[QDial] = []
        # keys and the wheel turn a dial without a slider release: apply once they settle
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(250)
        self._settle.timeout.connect(self._emit)
        self._setting = False
        self.value_labels: list[QLabel] = []
        self.edge_sliders: list[QSlider] = []
        grid = QGridLayout(self)
        grid.setVerticalSpacing(2)
        for k in range(N_BANDS):
            dial = QDial()
            dial.setRange(0, 300)  # percent
            dial.setValue(100)
            dial.setNotchesVisible(True)
            dial.setFixedSize(44, 44)
            dial.setToolTip(f"gain of band {k + 1}; double-click the label to reset")
            lab = QLabel("1.00")
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            dial.valueChanged.connect(lambda v, lab=lab: lab.setText(f"{v / 100:.2f}"))
            dial.sliderReleased.connect(self._emit)
            dial.valueChanged.connect(self._on_value_changed)
            grid.addWidget(dial, 0, k)
            grid.addWidget(lab, 1, k)
            self.dials.append(dial)
            self.value_labels.append(lab)
        self.edge_label = QLabel()
        grid.addWidget(self.edge_label, 2, 0, 1, N_BANDS)
        for e in range(N_BANDS - 1):
            s = QSlider(Qt.Orientation.Horizontal)
            s.setMaximumHeight(16)
            s.setRange(0, 100)
            s.setValue(int(round(100 * (e + 1) / N_BANDS)))
            s.setToolTip(f"edge between bands {e + 1} and {e + 2} (percent of latent units)")
            s.valueChanged.connect(lambda _v, e=e: self._keep_order(e))
            s.sliderReleased.connect(self._emit)
            s.valueChanged.connect(self._on_value_changed)
            grid.addWidget(s, 3 + e, 0, 1, N_BANDS)
            self.edge_sliders.append(s)
        self.reset_btn = QPushButton("Reset gains")
        self.reset_btn.clicked.connect(self.reset)
        grid.addWidget(self.reset_btn, 3 + N_BANDS, 0, 1, N_BANDS)
        self._update_edge_label()

    def _keep_order(self, e: int) -> None:
        vals = [s.value() for s in self.edge_sliders]
        for j in range(len(vals)):
            s = self.edge_sliders[j]
            s.blockSignals(True)
            if j < e and vals[j] > vals[e]:
                s.setValue(vals[e])
            if j > e and vals[j] < vals[e]:
                s.setValue(vals[e])
            s.blockSignals(False)
        self._update_edge_label()

    def _update_edge_label(self) -> None:
        self.edge_label.setText("band edges: " + ", ".join(f"{s.value()}%" for s in self.edge_sliders))

    def values(self) -> list[float]:
        return [d.value() / 100 for d in self.dials]

    def edges(self) -> list[float]:
        return [s.value() / 100 for s in self.edge_sliders]

    def set_state(self, values: list[float], edges: list[float]) -> None:
        self._setting = True  # the controller's state shown, not an edit to send back
        try:
            for d, v in zip(self.dials, values):
                d.setValue(int(round(v * 100)))
            for s, e in zip(self.edge_sliders, edges):
                s.setValue(int(round(e * 100)))
        finally:
            self._setting = False
        self._update_edge_label()

    def _on_value_changed(self, _value: int) -> None:
        # a mouse drag sends its value on release; anything else (keys, wheel) once it settles
        if not self._setting and not any(w.isSliderDown() for w in (*self.dials, *self.edge_sliders)):
            self._settle.start()

    def reset(self) -> None:
        self.set_state([1.0] * N_BANDS, [(k + 1) / N_BANDS for k in range(N_BANDS - 1)])
        self._emit()

    def _emit(self) -> None:
        self._settle.stop()
        self.gains_edited.emit(self.values(), self.edges())
