"""Datasets, sessions and evaluation under hostile input: names in any encoding, paths confined
to the dataset, typed fields, vanished files. Each case here raised an uncaught exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_datasets import _nsynth_entry, _wav

from explorer.core.session import SCHEMA_VERSION, load_session, save_session
from models.datasets import open_dataset
from models.errors import ConfigError, DatasetError
from models.safe_paths import display_name


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def test_a_file_name_that_is_not_utf8_opens_and_is_shown_escaped(tmp_path):
    root = tmp_path / "sounds"
    _wav(root / "a" / "ok.wav")
    raw = os.path.join(os.fsencode(root / "a"), b"caf\xe9 \xff.wav")
    Path(os.fsdecode(raw)).write_bytes((root / "a" / "ok.wav").read_bytes())
    ds = open_dataset(root)
    assert len(ds.clips) == 2 and not ds.rejected
    odd = next(i for i, c in enumerate(ds.clips) if "ok" not in c.name)
    assert display_name(ds.clips[odd].name) == "a/caf\\xe9 \\xff.wav"
    assert np.allclose(ds.load(odd), ds.load(1 - odd)) and len(ds.fingerprint) == 32


def test_a_file_that_vanishes_before_fingerprinting_is_rejected(tmp_path):
    root = tmp_path / "sounds"
    for i in range(3):
        _wav(root / "x" / f"{i}.wav", freq=200.0 + 50 * i)
    ds = open_dataset(root)
    (root / "x" / "1.wav").unlink()
    fp = ds.fingerprint
    assert [c.name for c in ds.clips] == ["x/0.wav", "x/2.wav"]
    assert [r.path.name for r in ds.rejected] == ["1.wav"] and "vanished" in ds.rejected[0].reason
    assert fp == open_dataset(root).fingerprint  # what is left, as a fresh open sees it


def _nsynth(tmp_path, index: dict | str, wavs=()) -> Path:
    root = tmp_path / "nsynth"
    (root / "audio").mkdir(parents=True)
    (root / "examples.json").write_text(index if isinstance(index, str) else json.dumps(index))
    for name in wavs:
        _wav(root / "audio" / f"{name}.wav")
    return root


def test_nsynth_entries_of_the_wrong_type_are_rejected_with_a_reason(tmp_path):
    good = _nsynth_entry(1, "brass", 1, "acoustic", 0, 2, 60, 100)
    bad = {}
    for label, edit in {"fast": {"sample_rate": "fast"}, "none": {"sample_rate": None},
                        "dict": {"instrument_family_str": {"a": 1}}, "pitch": {"pitch": 1e9},
                        "bool": {"velocity": True}, "qual": {"qualities": "bright"}}.items():
        e = {**_nsynth_entry(2, "flute", 2, "synthetic", 2, 5, 60, 127), **edit}
        e["note_str"] = f"flute_{label}"
        bad[e["note_str"]] = e
    root = _nsynth(tmp_path, {good["note_str"]: good, **bad}, wavs=[good["note_str"], *bad])
    ds = open_dataset(root)
    assert [c.name for c in ds.clips] == [good["note_str"]]
    reasons = {r.path.stem: r.reason for r in ds.rejected}
    assert reasons["flute_fast"] == "examples.json entry: sample_rate must be an integer from 1000 to 384000, got 'fast'"
    assert "sample_rate" in reasons["flute_none"] and "instrument_family_str must be a string" in reasons["flute_dict"]
    assert "pitch" in reasons["flute_pitch"] and "velocity" in reasons["flute_bool"]
    assert "qualities must be a list" in reasons["flute_qual"]


def test_an_nsynth_key_cannot_read_outside_the_dataset(tmp_path):
    outside = _wav(tmp_path / "outside.wav")
    entry = _nsynth_entry(1, "brass", 1, "acoustic", 0, 2, 60, 100)
    index = {"../../outside": {**entry, "note_str": "../../outside"}, "/abs": {**entry, "note_str": "/abs"}}
    root = _nsynth(tmp_path, index)
    (root / "audio" / "outside.wav").symlink_to(outside)  # even where a same-named file sits in audio/
    ds = open_dataset(root)
    assert not ds.clips and len(ds.rejected) == 3
    assert all("plain file name" in r.reason or "not listed" in r.reason for r in ds.rejected)


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "levels deep"),
    ('{"a": ', "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_a_malformed_nsynth_index_is_a_dataset_error(tmp_path, text, message):
    root = _nsynth(tmp_path, text)
    with pytest.raises(DatasetError, match=message):
        open_dataset(root)


def test_dataset_info_prints_no_traceback_for_a_hostile_index(tmp_path, capsys):
    from trainer.cli import EXIT_INPUT, main

    root = _nsynth(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert main(["dataset", "info", str(root)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "Traceback" not in err and "levels deep" in err


# --- sessions ------------------------------------------------------------------------------------
def _session(**fields) -> dict:
    base = {"schema_version": SCHEMA_VERSION, "dataset": "/data", "models": [], "current_model": None, "projection": "pca",
            "point_mode": "clip", "colour_field": None, "hidden_classes": [], "selection": None,
            "gains": {"values": [], "edges": []}, "layout": None, "paths": []}
    return {**base, **fields}


def _path(n_steps) -> dict:
    wp = {"kind": "position", "label": "", "clip": None, "frame": -1, "xy": [0.0, 0.0], "code": [0.0, 1.0]}
    return {"name": "p", "model_key": None, "drawn": False, "waypoints": [wp, wp],
            "params": {"n_steps": n_steps, "interpolation": "linear", "step_duration": None, "crossfade": 0.5}}


@pytest.mark.parametrize("content, message", [
    (b"[" * 100_000 + b"]" * 100_000, "levels deep"),
    (b'{"schema_version": 3, "dataset": "\xff\xfe"}', "not UTF-8"),
    (json.dumps(_session(paths="garbage")).encode(), "paths must be a list"),
    (json.dumps(_session(paths=[1, 2])).encode(), r"paths\[0\] must be a JSON object"),
    (json.dumps(_session(paths=[{"waypoints": 3}])).encode(), r"paths\[0\] is"),
    (json.dumps(_session(paths=[_path(1e9)])).encode(), "n_steps must be between"),
    (json.dumps(_session(models="abc")).encode(), "models must be a list of strings"),
    (json.dumps(_session(layout=[[0, "x"]])).encode(), "layout"),
    (json.dumps(_session(selection={"kind": "point", "clip": "a"})).encode(), "selection"),
    (json.dumps(_session(gains={"values": "loud"})).encode(), "gains"),
    (json.dumps(_session(dataset=5)).encode(), "dataset must be a string"),
    (b"", "not valid JSON"),
])
def test_bad_sessions_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_session(path)


def test_a_good_session_round_trips(tmp_path):
    s = _session(paths=[_path(8)], layout=[[0.5, 1.0], [2.0, -1.0]], selection={"kind": "position", "xy": [1, 2]})
    save_session(tmp_path / "s.json", s)
    assert load_session(tmp_path / "s.json") == s
    assert oct((tmp_path / "s.json").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- evaluate: a checkpoint trained on other labels ------------------------------------------------
@pytest.mark.slow
def test_evaluate_refuses_a_checkpoint_trained_on_other_labels(tmp_path, capsys):
    import shutil

    from trainer.cli import EXIT_INPUT, main
    from trainer_helpers import make_tones, train_args

    tones = make_tones(tmp_path / "tones")
    other = tmp_path / "other"
    for i, p in enumerate(sorted(tones.rglob("*.wav"))):  # the same sounds, other class names
        (other / ("bright" if i % 2 else "dull")).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, other / ("bright" if i % 2 else "dull") / p.name.replace(".wav", f"_{i}.wav"))
    assert main(train_args(tones, tmp_path / "a", "--max-steps", "1")) == 0
    assert main(train_args(other, tmp_path / "b", "--max-steps", "1")) == 0
    capsys.readouterr()
    shutil.copy(tmp_path / "b" / "last.safetensors", tmp_path / "a" / "best.safetensors")
    assert main(["evaluate", "--run-dir", str(tmp_path / "a"), "--cache-dir", str(tmp_path / "cache")]) == EXIT_INPUT
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "trained on the classes bright, dull" in line and "high, low" in line
