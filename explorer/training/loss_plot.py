"""Live training and validation loss curves (pyqtgraph), redrawn at most ten times a second.

Progress events can come at hundreds per second on a GPU; each one only marks the plot dirty
and a timer redraws every curve with one ``setData`` each, so the GUI thread stays free.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from explorer.core.training_runs import MAX_CURVE_POINTS

#: colours of the loss terms, in order of appearance ("loss", the total, first)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
REDRAW_MS = 100


class LossPlot(QWidget):
    """Train (lines) and validation (lines with dots) curves of every loss term, by step."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(150)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.legend = self.plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.log_y = QCheckBox("log scale")
        self.log_y.setToolTip("Logarithmic loss axis: early steps stop dwarfing the rest")
        self.log_y.toggled.connect(self.set_log_y)
        self.caption = QLabel("")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.caption, 1)
        top.addWidget(self.log_y)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        self._data: dict[tuple[str, str], list[tuple[int, float]]] = {}
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._colours: dict[str, str] = {}
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    # --- data --------------------------------------------------------------------------------------
    def clear(self) -> None:
        for item in self._curves.values():
            self.plot.removeItem(item)
        self.legend.clear()
        self._data.clear()
        self._curves.clear()
        self._colours.clear()
        self._dirty = False

    def set_series(self, train: dict[str, list[tuple[int, float]]], val: dict[str, list[tuple[int, float]]]) -> None:
        """Show a whole run's curves (switching runs in the list)."""
        self.clear()
        for name, pts in train.items():
            self._data[("train", name)] = list(pts)
        for name, pts in val.items():
            self._data[("val", name)] = list(pts)
        self._dirty = True
        self.redraw()

    def add(self, split: str, step: int, losses: dict[str, float | None]) -> None:
        """Append one event's losses; ``split`` is ``"train"`` or ``"val"``. Drawn on the next tick."""
        for name, value in losses.items():
            if value is not None and np.isfinite(value):
                pts = self._data.setdefault((split, name), [])
                pts.append((int(step), float(value)))
                if len(pts) > MAX_CURVE_POINTS:  # bounded: thin out, as the run record does
                    pts[:] = pts[::2]
                self._dirty = True

    def values(self, split: str, name: str = "loss") -> np.ndarray:
        """The points of one curve [shape=(n, 2)]: (step, value)."""
        return np.asarray(self._data.get((split, name), []), dtype=float).reshape(-1, 2)

    # --- drawing -------------------------------------------------------------------------------------
    def set_log_y(self, on: bool) -> None:
        self.plot.setLogMode(x=False, y=bool(on))
        self._dirty = True
        self.redraw()

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        log = self.log_y.isChecked()
        for key, pts in self._data.items():
            arr = np.asarray(pts, dtype=float).reshape(-1, 2)
            if log:
                arr = arr[arr[:, 1] > 0]  # log of zero or less has no place on the axis
            item = self._curves.get(key) or self._make_curve(*key)
            item.setData(arr[:, 0], arr[:, 1])
        n_val = len(self.values("val"))
        tr = self.values("train")
        self.caption.setText(f"train loss {tr[-1, 1]:.4g}" + (f", {n_val} validations" if n_val else "")
                             if len(tr) else "")

    def _make_curve(self, split: str, name: str) -> pg.PlotDataItem:
        colour = self._colours.setdefault(name, PALETTE[len(self._colours) % len(PALETTE)])
        width = 2 if name == "loss" else 1
        if split == "train":
            item = self.plot.plot(pen=pg.mkPen(colour, width=width), name=f"train {name}")
        else:
            item = self.plot.plot(pen=pg.mkPen(colour, width=width, style=pg.QtCore.Qt.PenStyle.DashLine),
                                  symbol="o", symbolSize=5, symbolBrush=colour, symbolPen=None, name=f"val {name}")
        self._curves[(split, name)] = item
        return item
