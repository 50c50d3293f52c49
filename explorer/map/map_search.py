"""The bar above the map: search by name or label, a filter on any field, play-on-hover.

A view like the others: it emits what the user asked for; the map view lights up matches and
the controller's :class:`~explorer.core.own_data.MapFilter` decides which sounds are shown. The
filter is independent of the colour field: colour by instrument family, show pitch 55 only.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from explorer.core.field_names import field_display_name

ALL = "all sounds"


class MapSearchBar(QWidget):
    """Search box, "show only" field and value, play-on-hover.

    Signals
    -------
    query_changed(str)
        The search text changed (matches light up as the user types).
    jump_requested()
        Enter in the search box: show the matches.
    filter_chosen(object, object)
        A field (None: no filter) and the list of values to show.
    hover_play_toggled(bool)
    """

    query_changed = Signal(str)
    jump_requested = Signal()
    filter_chosen = Signal(object, object)
    hover_play_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name or label…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(150)
        self.search.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # the map, not the search box, has the keys at start
        self.search.setToolTip("Sounds whose name or labels contain every word light up; Enter shows them all")
        self.found = QLabel("")
        self.found.setMinimumWidth(70)
        self.field = QComboBox()
        self.field.setToolTip("Show only the sounds with this value of a field (independent of the colours)")
        self.value = QComboBox()
        self.value.setMinimumWidth(90)
        self.value.setEnabled(False)
        self.clear_btn = QPushButton("Show all")
        self.clear_btn.setEnabled(False)
        self.hover_play = QCheckBox("Play on hover")
        self.hover_play.setToolTip("Hear each sound as the pointer passes over it")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.search, 2)
        lay.addWidget(self.found)
        lay.addWidget(QLabel("Show"))
        lay.addWidget(self.field)
        lay.addWidget(self.value)
        lay.addWidget(self.clear_btn)
        lay.addWidget(self.hover_play)
        self.search.textChanged.connect(self.query_changed)
        self.search.returnPressed.connect(self.jump_requested)
        self.field.currentIndexChanged.connect(self._on_field_changed)
        self.value.currentIndexChanged.connect(self._on_value_changed)
        self.clear_btn.clicked.connect(lambda: self.field.setCurrentIndex(0))
        self.hover_play.toggled.connect(self.hover_play_toggled)
        self._dataset: Any = None
        self.set_dataset(None)

    def set_dataset(self, dataset: Any) -> None:
        """Offer the dataset's label fields (the filter is reset with a new dataset)."""
        self._dataset = dataset
        self.field.blockSignals(True)
        self.field.clear()
        self.field.addItem(ALL, None)
        for name in getattr(dataset, "label_fields", ()):
            self.field.addItem(field_display_name(name), name)
        self.field.blockSignals(False)
        self._fill_values(None)

    def set_found(self, n: int, query: str) -> None:
        self.found.setText(f"{n} found" if query.strip() else "")

    def choose(self, field: str | None, value: Any = None) -> None:
        """Pick a filter as the user would (tests, sessions)."""
        self.field.setCurrentIndex(max(0, self.field.findData(field)))
        if value is not None:
            self.value.setCurrentIndex(max(0, self.value.findData(str(value))))

    def _fill_values(self, field: str | None) -> None:
        self.value.blockSignals(True)
        self.value.clear()
        if field is not None and self._dataset is not None:
            values = sorted({str(v) for v in self._dataset.labels(field)}, key=_natural)
            for v in values:
                self.value.addItem(v, v)
        self.value.setEnabled(field is not None)
        self.clear_btn.setEnabled(field is not None)
        self.value.blockSignals(False)

    def _on_field_changed(self, _i: int) -> None:
        field = self.field.currentData()
        self._fill_values(field)
        self._emit_filter()

    def _on_value_changed(self, _i: int) -> None:
        self._emit_filter()

    def _emit_filter(self) -> None:
        field = self.field.currentData()
        value = self.value.currentData()
        self.filter_chosen.emit(field, [value] if field is not None and value is not None else [])


def _natural(text: str) -> tuple:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)
