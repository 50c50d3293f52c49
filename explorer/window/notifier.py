"""One QObject for the window's messages to the user: status lines and errors.

State news (a new dataset, a selection, a decoded sound...) comes from the controller's own
signals (:class:`explorer.core.controller.Controller`); what is left here is not state: a line
for the status bar, an error for a message box, which any panel may post.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Notifier(QObject):
    status_posted = Signal(str)
    error_occurred = Signal(str)
