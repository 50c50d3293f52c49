"""One QObject whose named, past-tense signals carry news between views (spikeinterface-gui).

Views never call each other: they call the controller, then the window emits here, and every
view that cares listens. Payloads are small (indices, names); views read the rest from the
controller.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Notifier(QObject):
    dataset_changed = Signal()
    models_changed = Signal()
    model_changed = Signal()
    encoding_changed = Signal()
    #: a new layout, full or partial (t-SNE iterations); the bool says whether it is final
    embedding_changed = Signal(bool)
    colours_changed = Signal()
    hidden_classes_changed = Signal()
    selection_changed = Signal()
    #: decoded and original sounds are ready (engine.Sound objects live in the controller)
    sound_decoded = Signal()
    metrics_computed = Signal()
    gains_changed = Signal()
    status_posted = Signal(str)
    error_occurred = Signal(str)
