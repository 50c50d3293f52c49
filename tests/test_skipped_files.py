"""Every refused file with its reason, in one list and in `dataset info`; `presets`; `train --help`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.audio import save_wav
from models.datasets import open_dataset
from models.datasets.skipped import DECODE, HEADER, SkippedFiles
from trainer.cli import build_parser, main


def _broken_folder(root: Path) -> Path:
    save_wav(root / "good" / "a.wav", 0.1 * np.ones(1600, np.float32), sr=16000)
    save_wav(root / "good" / "b.wav", 0.1 * np.ones(1600, np.float32), sr=16000)
    (root / "good" / "empty.wav").write_bytes(b"")
    (root / "bad").mkdir()
    (root / "bad" / "text.wav").write_text("not audio")
    sf.write(root / "good" / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    return root


def test_skipped_list_has_header_and_decode_failures(tmp_path: Path) -> None:
    ds = open_dataset(_broken_folder(tmp_path / "mixed"))
    skipped = SkippedFiles(ds)
    assert {s.name: s.stage for s in skipped} == {"bad/text.wav": HEADER, "good/empty.wav": HEADER}
    assert skipped.add_rejected(ds.validate()) == 1  # the NaN file fails only when decoded
    assert skipped.add_rejected(ds.rejected) == 0  # each file once
    names = {s.name: (s.stage, s.reason) for s in skipped}
    assert names["good/nan.wav"][0] == DECODE and "NaN" in names["good/nan.wav"][1]
    assert "good/nan.wav: contains NaN or infinite samples" in skipped.lines()
    assert skipped.summary() == "3 files skipped (1 when decoded)"


def test_an_encodings_failures_join_the_list(tmp_path: Path) -> None:
    ds = open_dataset(_broken_folder(tmp_path / "m"))
    skipped = SkippedFiles(ds)
    i = [c.name for c in ds.clips].index("good/nan.wav")
    assert skipped.add_failed(ds, [(i, "the sound could not be decoded")]) == 1
    assert skipped.items[-1].line() == "good/nan.wav: the sound could not be decoded"


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_dataset_info_says_what_it_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = _broken_folder(tmp_path / "f")
    code, out = _run(capsys, "dataset", "info", str(folder))
    assert code == 0 and "rejected (2):" in out and "  bad/text.wav: not a readable audio file" in out
    assert out.strip().splitlines()[-1].startswith("checked: headers only; files that fail only when decoded")
    code, out = _run(capsys, "dataset", "info", str(folder), "--check")
    assert code == 0 and "rejected (3):" in out and "  good/nan.wav: contains NaN" in out
    assert out.strip().splitlines()[-1] == "checked: every clip decoded (5 files)"
    code, out = _run(capsys, "dataset", "info", str(folder), "--check", "--json")
    summary = json.loads(out)
    assert summary["checked"] == "decoded"
    assert {r["name"]: r["stage"] for r in summary["rejected"]} == {
        "bad/text.wav": HEADER, "good/empty.wav": HEADER, "good/nan.wav": DECODE}


def test_presets_lists_every_preset_one_line_each(capsys: pytest.CaptureFixture) -> None:
    from models.nets.registry import PRESETS

    code, out = _run(capsys, "presets")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == len(PRESETS)
    assert [ln.split()[0] for ln in lines] == list(PRESETS)
    colonel = next(ln for ln in lines if ln.startswith("colonel-hybrid "))
    assert "Colonel et al." in colonel and "stft_frames 1025 22.05 kHz" in colonel and "latent 64" in colonel
    code, out = _run(capsys, "presets", "--names")
    assert out.split() == list(PRESETS)


def test_help_names_only_commands_that_exist(capsys: pytest.CaptureFixture) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = set(sub.choices)
    for name, p in sub.choices.items():
        text = p.format_help()
        for mentioned in re.findall(r"latent-trainer ([a-z][a-z-]+)", text):
            assert mentioned in commands, f"`latent-trainer {name} --help` names `latent-trainer {mentioned}`"
    assert "latent-trainer presets" in sub.choices["train"].format_help()
