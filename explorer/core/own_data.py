"""A user's own folder before and beside any model: the descriptor map and the map filter. No Qt.

* **The descriptor map.** A dataset that no loaded model can read (or opened with no model at
  all) is still a map: its clips placed by audio descriptors
  (:mod:`models.mapping.descriptors`), stored in the controller under the key
  :data:`DESCRIPTORS` like a model's encoding. There is nothing to decode: a click plays the
  original (:func:`originals_task`), a click in empty space the nearest sound's.
* **The filter.** Which sounds the map shows, by any label field and independently of the colour
  field ("colour by family, show pitch 55 only"): :class:`MapFilter`, owned by the controller,
  announces its changes like the controller does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from psygnal import Signal

from models.inference.decode import Sound, render_original

#: the key of the descriptor map's "encoding" in ``controller.encodings`` (never a model's key:
#: models are keyed by their checkpoint's absolute path)
DESCRIPTORS = "<audio descriptors>"
DESCRIPTOR_LABEL = "audio descriptors (no model)"


@dataclass(frozen=True)
class _Rate:
    """What :func:`render_original` reads of a representation: the rate to load at."""

    sample_rate: int


def original_of(dataset: Any, clip: int) -> Sound:
    """Clip ``clip`` as recorded, at its own rate (no model decides the rate here)."""
    rate = int(dataset.clips[clip].meta.get("sample_rate") or dataset.sample_rate or 22050)
    return render_original(_Rate(rate), dataset, clip)


def originals_task(dataset: Any, clip: int) -> Callable[[Any], tuple[Sound, Sound]]:
    """A worker task: ``(original, shown)`` for clip ``clip``; both are the recording.

    The sound panel shows a "decoded" sound; on the descriptor map that is the original itself,
    titled so the user sees no model made it.
    """

    def task(state: Any) -> tuple[Sound, Sound]:
        original = original_of(dataset, clip)
        shown = Sound(y=original.y, sr=original.sr, title=f"{original.title} (original: no model loaded)",
                      clip_index=clip, spectrogram=original.spectrogram)
        return original, shown

    return task


class MapFilter:
    """Show only the sounds whose ``field`` takes one of ``values`` (all sounds when off).

    Signals
    -------
    changed()
        The field or the values changed.
    """

    changed = Signal()

    def __init__(self) -> None:
        self.field: str | None = None
        self.values: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return self.field is not None

    def set(self, field: str | None, values: Iterable[Any] = ()) -> None:
        """Filter on ``field`` (None: off); values compare as text, as the legend shows them."""
        values = frozenset(str(v) for v in values) if field is not None else frozenset()
        if (field, values) != (self.field, self.values):
            self.field, self.values = field, values
            self.changed.emit()

    def clear(self) -> None:
        self.set(None)

    def mask(self, dataset: Any, clips: np.ndarray) -> np.ndarray:
        """Which map points pass [shape=(len(clips),), dtype=bool]; ``clips`` are their clip indices."""
        clips = np.asarray(clips, dtype=int)
        if not self.active or dataset is None or self.field not in getattr(dataset, "label_fields", ()):
            return np.ones(len(clips), bool)
        text = np.array([str(v) for v in dataset.labels(self.field)], dtype=object)
        return np.isin(text[clips], list(self.values))

    def describe(self) -> str:
        """``"pitch = 55"``, ``"pitch in 55, 60"``, or ``""`` when off."""
        if not self.active:
            return ""
        vals = sorted(self.values)
        return f"{self.field} = {vals[0]}" if len(vals) == 1 else f"{self.field} in {', '.join(vals)}"
