"""Builders (FluidSynth notes, espeak-ng digits) read back by the readers, and the CLI."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.audio import save_wav
from models.datasets import BuildCancelled, build_digits, build_notes, open_dataset
from models.datasets.build_notes import DEFAULT_SOUNDFONT
from models.datasets.gm import gm_family
from models.datasets.nsynth import FIELDS
from models.errors import ConfigError

needs_fluidsynth = pytest.mark.skipif(not DEFAULT_SOUNDFONT.is_file(), reason="fluid-soundfont-gm not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def estimate_f0(y: np.ndarray, sr: int, *, fmin: float = 30.0, fmax: float = 2000.0) -> float:
    """Fundamental frequency of a steady note, blind to the pitch asked for.

    A harmonic product spectrum picks the fundamental's region (robust to a strong second
    harmonic), then parabolic interpolation of the finest peak there gives a precise value.
    (pyin quantises to 10 cents, about 0.6 %, too coarse to test a 1 % bound, and its first
    call spends many seconds compiling.)
    """
    seg = y[int(0.1 * sr): int(2.1 * sr)]
    n = 1 << 18
    mag = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n=n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    hps = np.log(mag + 1e-12)
    for h in range(2, 5):
        hps[: len(mag[::h])] += np.log(mag[::h] + 1e-12)
    band = (freqs >= fmin) & (freqs <= fmax)
    coarse = freqs[band][np.argmax(hps[band])]
    window = np.flatnonzero((freqs > coarse * 0.97) & (freqs < coarse * 1.03))
    k = window[np.argmax(mag[window])]
    a, b, c = np.log(mag[k - 1: k + 2] + 1e-12)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n)


@pytest.mark.system
@needs_fluidsynth
def test_rendered_notes_have_the_pitch_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    report = build_notes(out, programs=[0, 24, 32, 56, 73], pitches=[45, 60, 69], velocities=[100])
    assert report.written == 15 and report.skipped == []
    ds = open_dataset(out)
    errors = []
    for i, clip in enumerate(ds.clips):
        y = ds.load(i, sr=16000)
        want = 440.0 * 2 ** ((clip.labels["pitch"] - 69) / 12)
        errors.append(abs(estimate_f0(y, 16000) / want - 1))
    assert max(errors) < 0.01, dict(zip([c.name for c in ds.clips], np.round(errors, 4)))


@pytest.mark.system
@needs_fluidsynth
def test_notes_builder_writes_real_nsynth_layout(tmp_path: Path) -> None:
    out = tmp_path / "nsynth-mini"
    seen: list[tuple[int, int]] = []
    report = build_notes(out, programs=[40, 118], pitches=[60, 108], velocities=[50, 127],
                         progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8) and len(seen) == 8
    # FluidR3's violin has no sample at MIDI 108: both velocities render silent and are skipped.
    assert sorted(name for name, _ in report.skipped) == ["string_acoustic_040-108-050", "string_acoustic_040-108-127"]
    assert report.written == 6
    index = json.loads((out / "examples.json").read_text())
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(f"{k}.wav" for k in index)

    ds = open_dataset(out)
    assert ds.kind == "nsynth" and len(ds) == 6 and ds.rejected == []
    entry = ds.clips[0].meta
    assert set(entry) == set(FIELDS)
    assert entry == {
        "note": entry["note"], "note_str": "mallet_synthetic_118-060-050", "instrument": 118,
        "instrument_str": "mallet_synthetic_118", "pitch": 60, "velocity": 50, "sample_rate": 16000,
        "qualities": [0] * 10, "qualities_str": [], "instrument_family": 5,
        "instrument_family_str": "mallet", "instrument_source": 2, "instrument_source_str": "synthetic",
    }
    assert sorted(c.meta["note"] for c in ds.clips) == list(range(6))
    violin = open_dataset(out, instrument_family_str="string", velocity=127)
    assert [c.name for c in violin.clips] == ["string_acoustic_040-060-127"]
    y = violin.load(0, sr=16000)
    assert len(y) == 64000
    rms = lambda s: float(np.sqrt(np.mean(s ** 2)))  # noqa: E731
    assert rms(y[8000:40000]) > 0.01  # the note sounds while held (3 s)
    assert rms(y[60000:]) < 0.2 * rms(y[8000:40000])  # and decays after its release
    soft = open_dataset(out, instrument_family_str="string", velocity=50)
    assert rms(soft.load(0)[8000:40000]) < rms(y[8000:40000])  # velocity is kept, not normalised


@needs_fluidsynth
def test_notes_builder_errors_and_cancel(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fluid-soundfont-gm"):
        build_notes(tmp_path / "a", soundfont=tmp_path / "none.sf2")
    (tmp_path / "junk.sf2").write_text("not a SoundFont")
    with pytest.raises(ConfigError, match="could not load"):
        build_notes(tmp_path / "a", soundfont=tmp_path / "junk.sf2", programs=[0], pitches=[60])
    (tmp_path / "junk.sf2").unlink()
    with pytest.raises(ConfigError, match="sound effect"):
        build_notes(tmp_path / "a", programs=[122])
    with pytest.raises(ConfigError, match="pitch"):
        build_notes(tmp_path / "a", pitches=[200])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty"):
        build_notes(tmp_path / "full")
    calls = iter(range(100))
    with pytest.raises(BuildCancelled):
        build_notes(tmp_path / "b", should_stop=lambda: next(calls) >= 3)
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written


def test_gm_family_table() -> None:
    assert gm_family(0) == ("keyboard", "acoustic")
    assert gm_family(4) == ("keyboard", "electronic")
    assert gm_family(33) == ("bass", "electronic")
    assert gm_family(38) == ("bass", "synthetic")
    assert gm_family(52) == ("vocal", "acoustic")
    assert gm_family(81) == ("synth_lead", "synthetic")
    assert gm_family(109) == ("reed", "acoustic")


@pytest.mark.system
@needs_espeak
def test_digits_builder_fsdd_layout(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    report = build_digits(out, variants=["m3", "f2"], digits=[0, 1, 7])
    assert report.written == 6 and report.skipped == []
    ds = open_dataset(out)
    assert ds.kind == "fsdd" and ds.sample_rate == 8000 and ds.rejected == []
    assert ds.counts("speaker") == {"en-us-f2-s150-p50": 3, "en-us-m3-s150-p50": 3}
    assert ds.counts("digit") == {0: 2, 1: 2, 7: 2}
    for i, clip in enumerate(ds.clips):
        y = ds.load(i)
        assert clip.meta["sample_rate"] == 8000 and clip.meta["channels"] == 1
        assert 0.2 < len(y) / 8000 < 1.5
        frame = 160  # 20 ms: trimmed, so speech starts and ends within a few frames
        energy = np.array([np.sqrt(np.mean(y[j: j + frame] ** 2)) for j in range(0, len(y) - frame, frame)])
        loud = np.flatnonzero(energy > 0.01 * energy.max())  # within 40 dB of the peak
        assert loud[0] <= 3 and loud[-1] >= len(energy) - 4
    m3 = open_dataset(out, speaker="en-us-m3-s150-p50", digit=1).load(0)
    f2 = open_dataset(out, speaker="en-us-f2-s150-p50", digit=1).load(0)
    assert not np.allclose(m3[:1000], f2[:1000])  # two speakers, two voices


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The real command line, in a child process (as a user or the explorer runs it)."""
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)


def _main(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The same entry point in this process: the child's start-up (torch) costs seconds."""
    from trainer.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.system
@needs_fluidsynth
def test_cli_build_notes_and_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "n"
    sf2 = tmp_path / "elsewhere" / "my font.sf2"  # any .sf2 path, not only Debian's default
    sf2.parent.mkdir()
    sf2.symlink_to(DEFAULT_SOUNDFONT)
    code, stdout, stderr = _main(capsys, "dataset", "build", "notes", "--out", str(out), "--programs", "0", "73",
                                 "--pitches", "48-72:12", "--velocities", "100", "--soundfont", str(sf2))
    assert code == 0, stderr
    assert stdout.strip() == f"wrote 6 clips to {out}"
    assert "clip/s" not in stderr  # no progress bar off a terminal
    info = _cli("dataset", "info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["kind"] == "nsynth" and summary["clips"] == 6
    assert summary["counts"]["pitch"] == {"48": 2, "60": 2, "72": 2}
    assert summary["counts"]["instrument_family_str"] == {"flute": 3, "keyboard": 3}
    assert summary["sample_rates"] == {"16000": 6} and summary["total_duration_s"] == 24.0
    code, stdout, _ = _main(capsys, "dataset", "info", str(out), "--filter", "pitch=[48,72]")
    assert code == 0 and "pitch: 48: 2, 72: 2" in stdout
    code, _, stderr = _main(capsys, "dataset", "info", str(out), "--filter", "colour=red")
    assert code == 2 and "cannot filter" in stderr


@pytest.mark.system
@needs_espeak
def test_cli_build_digits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "d"
    code, stdout, stderr = _main(capsys, "dataset", "build", "digits", "--out", str(out), "--variants", "none")
    assert code == 0, stderr
    assert stdout.strip() == f"wrote 10 clips to {out}"
    assert sorted(p.name for p in out.iterdir())[:2] == ["0_en-us-s150-p50_0.wav", "1_en-us-s150-p50_0.wav"]


def test_cli_info_lists_rejected_with_reasons(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mixed"
    save_wav(folder / "good" / "a.wav", 0.1 * np.ones(1600, np.float32), sr=16000)
    (folder / "good" / "empty.wav").write_bytes(b"")
    (folder / "bad" / "text.wav").parent.mkdir()
    (folder / "bad" / "text.wav").write_text("not audio")
    sf.write(folder / "good" / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    code, stdout, _ = _main(capsys, "dataset", "info", str(folder), "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["kind"] == "folder" and summary["clips"] == 2
    assert summary["total_duration_s"] == 0.2  # a.wav 1600 / 16 kHz + nan.wav 800 / 8 kHz
    assert summary["sample_rates"] == {"16000": 1, "8000": 1}
    assert summary["counts"] == {"label": {"good": 2}}
    assert {Path(r["path"]).name: r["reason"].split(" (")[0] for r in summary["rejected"]} == {
        "text.wav": "not a readable audio file", "empty.wav": "empty file"}
    code, stdout, _ = _main(capsys, "dataset", "info", str(folder), "--check")
    assert code == 0
    assert "rejected (3):" in stdout and "nan.wav: contains NaN" in stdout
    assert "label: good: 1" in stdout


def test_cli_build_errors_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, stderr = _main(capsys, "dataset", "build", "notes", "--out", str(tmp_path / "x"),
                            "--soundfont", str(tmp_path / "no.sf2"))
    assert code == 2
    assert stderr.startswith("latent-trainer: error: SoundFont") and "Traceback" not in stderr
    with pytest.raises(SystemExit):
        _main(capsys, "dataset", "build", "notes", "--out", str(tmp_path / "x"), "--pitches", "6o")


class _Terminal(io.StringIO):
    """stderr as an interactive terminal would present it."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for k in range(3):
        save_wav(tmp_path / "s" / f"{k}.wav", 0.1 * np.ones(800, np.float32), sr=8000)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, stdout, _ = _main(capsys, "dataset", "info", str(tmp_path / "s"), "--check")
    assert code == 0 and "3 clips" in stdout
    bar = terminal.getvalue()
    assert "check" in bar and "3/3" in bar  # tqdm drew the bar up to the last clip
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe: no bar
    code, _, _ = _main(capsys, "dataset", "info", str(tmp_path / "s"), "--check")
    assert code == 0 and sys.stderr.getvalue() == ""
