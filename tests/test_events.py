"""The trainer's JSON-lines event schema (models/events.py)."""

from __future__ import annotations

import json

import pytest

from models.events import (
    EVENT_SCHEMA_VERSION,
    EVENT_TYPES,
    CheckpointWritten,
    Error,
    EventError,
    Progress,
    Started,
    encode_event,
    parse_event,
)


def test_round_trip_keeps_every_field():
    ev = Progress(epoch=1, step=20, total_steps=100, losses={"loss": 0.5, "kl": 0.1}, lr=1e-3,
                  steps_per_sec=12.5, eta_s=6.4, time=123.0)
    line = encode_event(ev)
    assert "\n" not in line
    data = json.loads(line)
    assert data["v"] == EVENT_SCHEMA_VERSION and data["event"] == "progress"
    assert parse_event(line) == ev


def test_non_finite_losses_become_null_and_still_parse():
    line = encode_event(Progress(epoch=0, step=1, losses={"loss": float("nan")}, lr=1e-3))
    assert json.loads(line)["losses"] == {"loss": None}
    assert parse_event(line).losses == {"loss": None}


def test_every_type_is_registered_under_its_name():
    assert set(EVENT_TYPES) == {
        "started", "progress", "validation", "checkpoint", "evaluation", "finished", "stopped", "error",
    }
    ev = parse_event(encode_event(Error(message="boom", traceback="tb")))
    assert isinstance(ev, Error) and ev.message == "boom"


def test_unknown_extra_keys_are_ignored_for_forward_compatibility():
    data = json.loads(encode_event(CheckpointWritten(path="p", kind="best", epoch=0, step=3)))
    data["future_field"] = 1
    assert parse_event(json.dumps(data)).kind == "best"


@pytest.mark.parametrize(
    "line, match",
    [
        ("not json", "not a JSON"),
        ("[1]", "object"),
        ('{"event": "progress"}', "schema version"),
        (json.dumps({"v": EVENT_SCHEMA_VERSION + 1, "event": "error", "message": "m"}), "newer"),
        (json.dumps({"v": 1, "event": "teleport"}), "unknown event"),
        (json.dumps({"v": 1, "event": "error"}), "lacks field"),
        (json.dumps({"v": 1, "event": "progress", "epoch": "one", "step": 1, "losses": {}, "lr": 1.0}),
         "integer"),
        (json.dumps({"v": 1, "event": "progress", "epoch": 1, "step": 1, "losses": {"loss": "x"},
                     "lr": 1.0}), "not a number"),
        (json.dumps({"v": 1, "event": "checkpoint", "path": "p", "kind": "middle", "epoch": 0,
                     "step": 0}), "not one of"),
    ],
)
def test_invalid_lines_raise_event_error(line, match):
    with pytest.raises(EventError, match=match):
        parse_event(line)


def test_started_defaults():
    ev = Started(run_dir="r", preset="p", model="m", device="cpu", seed=0, step=0, epoch=0,
                 n_train=1, n_val=0, n_test=0)
    back = parse_event(encode_event(ev))
    assert back.resumed is False and back.world_size == 1 and back.total_steps is None
