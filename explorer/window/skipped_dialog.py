"""The files a dataset left out, with their reasons: a status-bar button and the list it opens.

The button lives in the status bar for as long as the dataset is open ("5 skipped"), so the
names and reasons are one click away at any time, not in a message that the next one covers.
The list is the controller's :class:`~models.datasets.skipped.SkippedFiles`: the same words
``latent-trainer dataset info`` prints, files refused at open and those that failed to decode.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

STAGE_TEXT = {"header": "when opening", "decode": "when decoding"}


class SkippedFilesDialog(QDialog):
    """A table of refused files: name, reason, when; the list can be copied as text."""

    def __init__(self, skipped: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Skipped files")
        self.resize(720, 360)
        self.skipped = skipped
        root = getattr(skipped, "root", None)
        head = QLabel(f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} of {root} are not on the map:"
                      if root else "No dataset is open.")
        head.setWordWrap(True)
        self.table = QTableWidget(len(skipped), 3)
        self.table.setHorizontalHeaderLabels(["file", "reason", "refused"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        for r, s in enumerate(skipped):
            for col, text in enumerate((s.name, s.reason, STAGE_TEXT.get(s.stage, s.stage))):
                item = QTableWidgetItem(text)
                item.setToolTip(str(s.path) if col == 0 else text)
                self.table.setItem(r, col, item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy list", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_list)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)

    def rows(self) -> list[tuple[str, str]]:
        """(file, reason) of every row, as shown."""
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]

    def copy_list(self) -> None:
        QApplication.clipboard().setText("\n".join(self.skipped.lines()))


class SkippedButton(QPushButton):
    """``"5 skipped"`` in the status bar (hidden when nothing was skipped); opens the list."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setFlat(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Files of this dataset that are not on the map, and why")
        self.dialog: SkippedFilesDialog | None = None
        self.clicked.connect(self.open_list)
        for sig in (controller.dataset_changed, controller.encoding_changed):
            sig.connect(self.update_count)
        self.update_count()

    def update_count(self) -> None:
        skipped = self.controller.skipped
        self.setText(f"⚠ {skipped.summary()}" if len(skipped) else "")
        self.setVisible(len(skipped) > 0)

    def open_list(self) -> SkippedFilesDialog:
        """Show the list (non-modal: the map stays usable beside it)."""
        if self.dialog is not None:
            self.dialog.close()
        d = self.dialog = SkippedFilesDialog(self.controller.skipped, self.window())
        d.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        d.finished.connect(lambda _r, d=d: self._forget(d))
        d.show()
        return d

    def _forget(self, d: SkippedFilesDialog) -> None:
        if self.dialog is d:
            self.dialog = None
