"""Dataset readers: folder, FSDD names, NSynth index, Hydrogen kits; filters and fingerprints."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.audio import save_wav
from models.datasets import classify_instrument, detect_kind, open_dataset, parse_fsdd_name
from models.datasets.hydrogen import is_placeholder
from models.errors import DatasetError

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def _wav(path: Path, *, sr: int = 8000, seconds: float = 0.1, freq: float = 300.0) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    return save_wav(path, 0.3 * np.sin(2 * np.pi * freq * t), sr=sr)


# -- folder ---------------------------------------------------------------------------------

def test_folder_labels_from_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "sounds"
    _wav(root / "kick" / "a.wav")
    _wav(root / "kick" / "acoustic" / "b.wav")
    _wav(root / "snare" / "c.wav", sr=16000)
    _wav(root / "loose.wav")
    (root / "notes.txt").write_text("ignored")
    _wav(root / ".hidden" / "d.wav")
    ds = open_dataset(root)
    assert ds.kind == "folder" and ds.group_key is None
    assert [c.name for c in ds.clips] == ["kick/a.wav", "kick/acoustic/b.wav", "loose.wav", "snare/c.wav"]
    assert ds.labels("label") == ["kick", "kick", "sounds", "snare"]
    assert ds.labels("folder") == ["kick", "kick/acoustic", ".", "snare"]
    assert ds.label_fields == ("label", "folder")
    assert ds.sample_rate == 8000  # the most common rate
    assert ds.counts("label") == {"kick": 2, "snare": 1, "sounds": 1}
    assert ds.clips[0].meta["frames"] == 800
    assert len(ds.load(3, sr=8000)) == 800  # 16 kHz file resampled
    assert len(open_dataset(root, label="kick")) == 2


# -- FSDD -----------------------------------------------------------------------------------

def test_fsdd_names_parse() -> None:
    assert parse_fsdd_name("3_jackson_12.wav") == (3, "jackson", 12)
    assert parse_fsdd_name("0_en-us-m3-s150-p50_0.wav") == (0, "en-us-m3-s150-p50", 0)
    for bad in ("jackson_3_1.wav", "12_jackson_1.wav", "3_jackson.wav", "3_a_b_1.wav", "3_jackson_x.wav",
                "3_jackson_1.flac"):
        with pytest.raises(DatasetError, match="does not follow"):
            parse_fsdd_name(bad)


def test_fsdd_reader_and_rejects(tmp_path: Path) -> None:
    rec = tmp_path / "free-spoken-digit-dataset" / "recordings"
    for digit in range(3):
        for speaker in ("jackson", "theo"):
            for index in (0, 7):
                _wav(rec / f"{digit}_{speaker}_{index}.wav")
    _wav(rec / "seven_jackson_1.wav")
    (rec / "4_theo_2.wav").write_bytes(b"")
    ds = open_dataset(tmp_path / "free-spoken-digit-dataset")  # repository root: recordings/ is used
    assert ds.kind == "fsdd" and ds.group_key == "speaker" and ds.default_label == "digit"
    assert ds.sample_rate == 8000 and len(ds) == 12
    assert ds.counts("digit") == {0: 4, 1: 4, 2: 4}
    assert ds.counts("speaker") == {"jackson": 6, "theo": 6}
    assert ds.groups()[:4] == ["jackson", "jackson", "theo", "theo"]
    assert {c.meta["split"] for c in ds.clips if c.meta["index"] == 0} == {"test"}
    reasons = {r.path.name: r.reason for r in ds.rejected}
    assert reasons == {
        "seven_jackson_1.wav": "name does not follow {digit}_{speaker}_{index}.wav",
        "4_theo_2.wav": "empty file",
    }
    assert len(open_dataset(rec, digit=[1, 2], speaker="theo")) == 4


# -- NSynth ---------------------------------------------------------------------------------

def _nsynth_entry(note: int, family: str, fam: int, source: str, src: int, inst: int, pitch: int, vel: int) -> dict:
    note_str = f"{family}_{source}_{inst:03d}-{pitch:03d}-{vel:03d}"
    return {
        "note": note, "note_str": note_str, "instrument": inst, "instrument_str": f"{family}_{source}_{inst:03d}",
        "pitch": pitch, "velocity": vel, "sample_rate": 16000, "qualities": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        "qualities_str": ["dark"], "instrument_family": fam, "instrument_family_str": family,
        "instrument_source": src, "instrument_source_str": source,
    }


def test_nsynth_reader_fields_filters_and_rejects(tmp_path: Path) -> None:
    root = tmp_path / "nsynth-valid"
    entries = [
        _nsynth_entry(1, "brass", 1, "acoustic", 0, 2, 60, 100),
        _nsynth_entry(2, "brass", 1, "acoustic", 0, 2, 62, 50),
        _nsynth_entry(3, "flute", 2, "synthetic", 2, 5, 60, 127),
        _nsynth_entry(4, "guitar", 3, "electronic", 1, 7, 60, 25),
    ]
    index = {e["note_str"]: e for e in entries}
    index["organ_electronic_001-060-100"] = {"note_str": "organ_electronic_001-060-100"}  # fields missing
    root.mkdir()
    (root / "examples.json").write_text(json.dumps(index))
    for e in entries[:3]:
        _wav(root / "audio" / f"{e['note_str']}.wav", sr=16000)
    _wav(root / "audio" / "stray-000-000.wav", sr=16000)
    assert detect_kind(root) == "nsynth"
    assert detect_kind(root / "examples.json") == "nsynth"
    with pytest.raises(DatasetError, match="nsynth-valid"):
        open_dataset(tmp_path, kind="nsynth")  # the parent: names the split to choose

    ds = open_dataset(root)
    assert ds.kind == "nsynth" and ds.group_key == "instrument_str" and ds.sample_rate == 16000
    assert [c.name for c in ds.clips] == [e["note_str"] for e in entries[:3]]
    assert ds.clips[2].meta == entries[2]
    assert ds.clips[2].labels == {"instrument_family_str": "flute", "instrument_source_str": "synthetic",
                                  "instrument_str": "flute_synthetic_005", "pitch": 60, "velocity": 127}
    reasons = {r.path.name: r.reason for r in ds.rejected}
    assert reasons["guitar_electronic_007-060-025.wav"] == "listed in examples.json but the file is missing"
    assert reasons["organ_electronic_001-060-100.wav"].startswith("examples.json entry lacks note, ")
    assert reasons["stray-000-000.wav"] == "not listed in examples.json"

    assert [c.name for c in open_dataset(root, instrument_family_str=["flute"]).clips] == [entries[2]["note_str"]]
    assert len(open_dataset(root, pitch=60)) == 2
    assert len(open_dataset(root, pitch="60")) == 2  # as typed on a command line
    assert len(open_dataset(root, velocity=range(50, 101))) == 2
    assert len(open_dataset(root, instrument_family_str=["brass", "flute"], velocity=lambda v: v > 60)) == 2
    with pytest.raises(DatasetError, match="cannot filter"):
        open_dataset(root, timbre="warm")
    # list fields match a value they hold: every written entry has qualities_str == ["dark"]
    assert len(open_dataset(root, qualities_str="dark")) == 3
    assert len(open_dataset(root, qualities_str=["bright", "dark"], pitch=62)) == 1
    assert len(open_dataset(root, qualities_str="bright")) == 0
    assert len(open_dataset(root, instrument_source_str="synthetic", instrument_family=2)) == 1


# -- Hydrogen -------------------------------------------------------------------------------

def test_classify_instrument_names() -> None:
    cases = {
        "Kick (Tama Superstar 22\")": "kick", "BassDrum": "kick", "c3 - bass drum 1": "kick",
        "Snare Rimshot": "snare", "Closed HH": "hihat", "Hi-Hat Pedal": "hihat", "Hat Op Dirty": "hihat",
        "Side OHH": "hihat", "Floor Tom": "tom", "tomhi2": "tom", "Ride Bell": "cymbal",
        "Zildjian Splash": "cymbal", "crash16inch": "cymbal", "Hand Clap": "clap", "Finger Snaps": "clap",
        "Cowbell": "percussion", "Djembe1 Bass": "percussion", "Tambourine": "percussion",
        "Zap 1": "percussion",
    }
    assert {name: classify_instrument(name) for name in cases} == cases
    assert [is_placeholder(n) for n in ("17", "", "  ", "f#4 - ", "Kick", "a#4 -  ")] == [
        True, True, True, True, False, True]


NS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info xmlns="http://www.hydrogen-music.org/drumkit">
 <name>Tiny Kit</name>
 <instrumentList>
  <instrument><id>0</id><name>Kick Hard</name>
   <layer><filename>kick1.wav</filename><min>0</min><max>0.5</max></layer>
   <layer><filename>kick2.wav</filename><min>0.5</min><max>1</max></layer>
  </instrument>
  <instrument><id>1</id><name>Open HH</name>
   <instrumentComponent><layer><filename>hh.wav</filename></layer></instrumentComponent>
  </instrument>
  <instrument><id>2</id><name>Crash</name><layer><filename>gone.wav</filename></layer></instrument>
  <instrument><id>3</id><name>17</name><layer><filename>kick1.wav</filename></layer></instrument>
 </instrumentList>
</drumkit_info>
"""

OLD_XML = """<drumkit_info>
 <name>Old Kit</name>
 <instrumentList>
  <instrument><id>0</id><name>Snare 1</name><filename>sn.flac</filename></instrument>
  <instrument><id>1</id><name>Hand Clap</name><filename>clap.wav</filename></instrument>
  <instrument><id>2</id><name>32</name><filename>missing-placeholder.wav</filename></instrument>
 </instrumentList>
</drumkit_info>
"""


def _kits(tmp_path: Path) -> Path:
    kits = tmp_path / "drumkits"
    (kits / "tiny").mkdir(parents=True)
    (kits / "tiny" / "drumkit.xml").write_text(NS_XML)
    for name in ("kick1.wav", "kick2.wav", "hh.wav"):
        _wav(kits / "tiny" / name, sr=44100)
    (kits / "old").mkdir()
    (kits / "old" / "drumkit.xml").write_text(OLD_XML)
    _wav(kits / "old" / "clap.wav", sr=48000)
    import soundfile as sf

    sf.write(kits / "old" / "sn.flac", np.full(4410, 0.2, np.float32), 44100)
    return kits


def test_hydrogen_kit_in_tmp(tmp_path: Path) -> None:
    kits = _kits(tmp_path)
    one = open_dataset(kits / "tiny")
    assert one.kind == "hydrogen" and one.group_key == "kit"
    assert [(c.name, c.labels["class"], c.labels["instrument"]) for c in one.clips] == [
        ("kick1.wav", "kick", "Kick Hard"), ("kick2.wav", "kick", "Kick Hard"), ("hh.wav", "hihat", "Open HH")]
    assert [(r.path.name, r.reason) for r in one.rejected] == [
        ("gone.wav", "listed for 'Crash' in Tiny Kit's drumkit.xml but missing")]

    both = open_dataset(kits)
    assert detect_kind(kits) == "hydrogen"
    assert both.counts("kit") == {"Old Kit": 2, "Tiny Kit": 3}
    assert both.counts("class") == {"clap": 1, "hihat": 1, "kick": 2, "snare": 1}
    assert both.sample_rate == 44100
    assert [c.name for c in both.clips][:2] == ["old/sn.flac", "old/clap.wav"]
    assert len(both.load(0, sr=22050)) == 2205
    assert len(open_dataset(kits, **{"class": "kick"})) == 2


@pytest.mark.system
@pytest.mark.skipif(not DRUMKITS.is_dir(), reason="hydrogen-drumkits not installed")
def test_installed_hydrogen_kits() -> None:
    ds = open_dataset(DRUMKITS)
    assert ds.kind == "hydrogen"
    assert len(ds.counts("kit")) >= 10 and len(ds) > 500
    counts = ds.counts("class")
    assert set(counts) == {"kick", "snare", "hihat", "tom", "cymbal", "clap", "percussion"}
    assert min(counts.values()) >= 10
    assert not any(c.labels["instrument"].strip().isdigit() for c in ds.clips)  # placeholders dropped
    assert all(r.reason.endswith("but missing") for r in ds.rejected)
    y = ds.load(0, sr=22050)
    assert y.dtype == np.float32 and np.max(np.abs(y)) > 0.01


# -- fingerprint ----------------------------------------------------------------------------

def test_fingerprint_is_stable_and_content_based(tmp_path: Path) -> None:
    kits = _kits(tmp_path)
    first = open_dataset(kits).fingerprint
    assert len(first) == 32
    copy = tmp_path / "elsewhere" / "drumkits"
    shutil.copytree(kits, copy)
    os.utime(copy / "tiny" / "hh.wav", (1, 1))  # dates do not matter
    assert open_dataset(copy).fingerprint == first
    assert open_dataset(kits).fingerprint == first  # from the hash cache
    _wav(copy / "tiny" / "hh.wav", sr=44100, freq=301.0)  # same size, new content
    assert open_dataset(copy).fingerprint != first
    assert open_dataset(kits, kit="Tiny Kit").fingerprint != first  # a filter changes the clips
