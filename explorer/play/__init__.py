"""Playing the map: the play engine's controls as the controllers (mouse, MIDI, OSC) see them.

This package mixes a Qt half (``scrub_tool``, ``play_flow``) with a Qt-free half (``midi_in``,
``osc_link``, this module). The Qt-free half talks to the engine only through the small protocols
below, so its tests drive a fake engine that records calls, and import-linter keeps Qt out of it.
"""

from __future__ import annotations

from typing import Protocol


class Normaliser(Protocol):
    """What a controller needs from :class:`models.realtime.position.PositionField`."""

    def normalised(self, u: float, v: float) -> tuple[float, float]:
        """(0..1, 0..1) -> map coordinates over the points' bounding box."""
        ...

    def unit(self, x: float, y: float) -> tuple[float, float]:
        """Map coordinates -> (0..1, 0..1), the inverse of ``normalised`` (clipped)."""
        ...


class PlayControls(Protocol):
    """The thread-safe controls of :class:`models.realtime.engine.PlayEngine` a controller calls.

    MIDI messages arrive on mido's callback thread and OSC messages on the server's thread: every
    method here must be callable from any thread (the engine stamps each with a stream sample).
    """

    def set_xy(self, x: float, y: float) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def note_on(self, pitch: int, velocity: int) -> None: ...
    def note_off(self, pitch: int) -> None: ...

    @property
    def field(self) -> Normaliser | None: ...

    @property
    def cursor(self) -> tuple[float, float] | None: ...


def clamp01(value: float) -> float:
    """``value`` clamped to [0, 1]; controllers overshoot (TouchOSC faders, 14-bit rounding)."""
    return min(1.0, max(0.0, float(value)))


def to_map(field: Normaliser, u: float, v: float) -> tuple[float, float]:
    """Controller position (0..1, 0..1), clamped, -> map coordinates."""
    x, y = field.normalised(clamp01(u), clamp01(v))
    return float(x), float(y)
