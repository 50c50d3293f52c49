"""The trainer's event stream: one JSON object per line, a versioned schema.

The trainer writes these lines to stdout (with ``--events``) and always appends them to
``<run_dir>/events.jsonl``; the explorer, a terminal progress bar and the log all read the
same stream. The schema lives in ``models/`` because both sides need it and the explorer
may not import ``trainer``.

Every line is an object with three common keys and the fields of its type::

    {"v": 1, "event": "progress", "time": 1718000000.25, "epoch": 0, "step": 10, ...}

``v`` is :data:`EVENT_SCHEMA_VERSION`. Adding an optional field or a new event type keeps
the version (readers ignore keys they do not know); renaming, removing or retyping a field
bumps it. Non-finite numbers (a diverged loss) are written as ``null``, since JSON has no NaN.

Event types (fields beyond ``v``/``event``/``time``):

``started``
    run_dir, preset, model, device, world_size, seed, step, epoch, total_steps (None when
    unknown), n_train, n_val, n_test (items), resumed.
``progress``
    epoch, step, total_steps, losses {name: value}, lr, steps_per_sec, eta_s (None when unknown).
``validation``
    epoch, step, losses {name: value}, best (this is the best validation loss so far).
``checkpoint``
    path, kind ("last" | "best"), epoch, step, metrics {name: value}.
``evaluation``
    split, checkpoint, path (of evaluation.json), metrics {name: value}.
``finished``
    epoch, step, reason ("completed" | "early_stopping" | "max_steps"), best_val_loss,
    duration_s.
``stopped``
    epoch, step, reason ("signal" | "stop_file" | "stdin"), checkpoint (path of ``last``).
``error``
    message, traceback (tail of the Python traceback, may be empty), kind (why, optional:
    ``"input"`` a bad argument or file, ``"busy"`` the run folder is in use by another trainer,
    ``"disk"`` the disk is full, ``"files"`` another file system failure, ``"internal"`` a bug;
    ``""`` from older trainers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from models.config import config_from_dict
from models.errors import ConfigError, LatentExplorerError

#: Bumped when a field is renamed, removed or changes type (see module docstring).
EVENT_SCHEMA_VERSION = 1


class EventError(LatentExplorerError, ValueError):
    """A line is not a valid event of a schema version we can read."""


@dataclass(frozen=True, kw_only=True)
class Event:
    """Common part of every event. ``time`` is seconds since the epoch (``time.time()``)."""

    type: ClassVar[str] = ""
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class Started(Event):
    type: ClassVar[str] = "started"
    run_dir: str
    preset: str
    model: str
    device: str
    world_size: int = 1
    seed: int
    step: int
    epoch: int
    total_steps: int | None = None
    n_train: int
    n_val: int
    n_test: int
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    type: ClassVar[str] = "progress"
    epoch: int
    step: int
    total_steps: int | None = None
    losses: dict[str, float | None]
    lr: float
    steps_per_sec: float | None = None
    eta_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class Validation(Event):
    type: ClassVar[str] = "validation"
    epoch: int
    step: int
    losses: dict[str, float | None]
    best: bool = False


@dataclass(frozen=True, kw_only=True)
class CheckpointWritten(Event):
    type: ClassVar[str] = "checkpoint"
    path: str
    kind: Literal["last", "best"]
    epoch: int
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Evaluation(Event):
    type: ClassVar[str] = "evaluation"
    split: str
    checkpoint: str
    path: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Finished(Event):
    type: ClassVar[str] = "finished"
    epoch: int
    step: int
    reason: Literal["completed", "early_stopping", "max_steps"]
    best_val_loss: float | None = None
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class Stopped(Event):
    type: ClassVar[str] = "stopped"
    epoch: int
    step: int
    reason: Literal["signal", "stop_file", "stdin"]
    checkpoint: str


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    type: ClassVar[str] = "error"
    message: str
    traceback: str = ""
    kind: str = ""


#: event name -> class
EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (Started, Progress, Validation, CheckpointWritten, Evaluation, Finished, Stopped, Error)
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The JSON-ready dict of ``event``, with ``v`` and ``event`` first."""
    body = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return {"v": EVENT_SCHEMA_VERSION, "event": event.type, **_finite(body)}


def encode_event(event: Event) -> str:
    """One line of JSON (no trailing newline); NaN and infinities become ``null``."""
    return json.dumps(event_to_dict(event), allow_nan=False, separators=(",", ":"))


def parse_event(line: str | bytes) -> Event:
    """Parse and validate one line of the stream.

    Raises
    ------
    EventError
        Not JSON, not an object, a schema version newer than ours, an unknown event type,
        a missing field or a field of the wrong type.
    """
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"not a JSON line: {exc}") from None
    if not isinstance(data, dict):
        raise EventError("an event must be a JSON object")
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise EventError("event has no integer schema version 'v'")
    if version > EVENT_SCHEMA_VERSION:
        raise EventError(
            f"event schema version {version} is newer than this program's "
            f"({EVENT_SCHEMA_VERSION}); update latent-explorer"
        )
    name = data.get("event")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise EventError(f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}")
    known = {f.name for f in dataclasses.fields(cls)}
    body = {k: v for k, v in data.items() if k in known}
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in body
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise EventError(f"{name} event lacks field(s) {', '.join(missing)}")
    try:
        event = config_from_dict(cls, body)
    except ConfigError as exc:
        raise EventError(f"{name} event: {exc}") from None
    _check_numbers(event)
    return event


def _check_numbers(event: Event) -> None:
    # config_from_dict checks dict-ness only; the losses must hold numbers (or null).
    hints = typing.get_type_hints(type(event))
    for f in dataclasses.fields(event):
        if hints[f.name] == dict[str, float | None]:
            for k, v in getattr(event, f.name).items():
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    raise EventError(f"{event.type} event: {f.name}[{k!r}] is not a number: {v!r}")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _finite(obj.item())
    return obj
