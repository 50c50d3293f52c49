"""Files a DAW can use: no click at a file's edges, a full disk leaves nothing and says so,
ordinary file modes, and a dragged file that stays where it was dropped from."""

from __future__ import annotations

import builtins
import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_hardening_cli import make_spec_file

from models.morphing.export_audio import (
    EDGE_FADE_S,
    ExportOptions,
    ExportWriteError,
    finish_signals,
    write_export,
)

#: a click: the first (or last) half millisecond reaching 5 % of the file's peak
CLICK_RATIO = 0.05


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """A decoded sound as the model makes it (its first sample is far from zero)."""
    from models.morphing.export_audio import load_spec_model
    from models.morphing.morph import Template, decode_step

    spec = json.loads(make_spec_file(tmp_path_factory.mktemp("spec")).read_text())
    model, rep = load_spec_model(spec)
    y = decode_step(model, rep, np.asarray(spec["sound"]["code"]), latent_shape=spec["latent_shape"],
                    template=Template.from_dict(spec["sound"]["template"]))
    return Decoded(signals=[y], sr=int(rep.sample_rate))


@dataclass
class Decoded:
    signals: list
    sr: int


def _edge_ratio(y: np.ndarray, sr: int) -> float:
    n = max(1, int(0.0005 * sr))
    return float(max(np.abs(y[:n]).max(), np.abs(y[-n:]).max()) / np.abs(y).max())


def test_file_starts_and_ends_stay_below_a_click_threshold(decoded):
    from models.audio import resample

    y, sr = decoded.signals[0], decoded.sr
    assert _edge_ratio(y, sr) > CLICK_RATIO  # what the model decodes starts loud: exports used to click
    for rate in (None, 44100, 48000):
        (out,), out_sr = finish_signals([y], sr, ExportOptions(sample_rate=rate, normalize=False))
        assert _edge_ratio(out, out_sr) < CLICK_RATIO and out[0] == 0.0 and out[-1] == 0.0
        # the fade is at most 5 ms: past it the file holds the decoded sound unchanged
        n = int(np.ceil(EDGE_FADE_S * out_sr))
        assert np.allclose(out[n:-n], resample(y, sr, out_sr)[n:-n], atol=1e-6)


def test_steps_files_each_start_without_a_click(decoded, tmp_path):
    y, sr = decoded.signals[0], decoded.sr
    steps = [y * g for g in (1.0, 0.5, 0.25)]
    out, out_sr = finish_signals(steps, sr, ExportOptions(what="steps", sample_rate=48000))
    written = write_export(tmp_path, [(f"s{k}.wav", s) for k, s in enumerate(out)], sr=out_sr, subtype="pcm24")
    for p in written:
        data, rate = sf.read(p, dtype="float32")
        assert rate == 48000 and _edge_ratio(data, rate) < CLICK_RATIO


class _FullDisk:
    """``open`` for files in ``folder``: the first write of more than ``room`` bytes fails with ENOSPC."""

    def __init__(self, folder: Path, room: int) -> None:
        self.folder, self.room, self.real = str(folder), room, builtins.open

    def __call__(self, file, mode="r", *args, **kwargs):
        f = self.real(file, mode, *args, **kwargs)
        if "w" not in mode or not os.fspath(file).startswith(self.folder):
            return f
        full = self

        class Limited:
            def __init__(self, inner):
                self.inner = inner

            def write(self, data):
                if len(data) > full.room:
                    self.inner.write(bytes(data[: full.room]))
                    raise OSError(errno.ENOSPC, "No space left on device")
                full.room -= len(data)
                return self.inner.write(data)

            def __getattr__(self, name):
                return getattr(self.inner, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.inner.close()

        return Limited(f)


@pytest.mark.parametrize("subtype", ["pcm24", "float32", "pcm16"])
def test_a_full_disk_gives_the_clear_message_and_leaves_nothing(decoded, tmp_path, monkeypatch, subtype):
    out = tmp_path / "exports"
    out.mkdir()
    (out / "earlier.wav").write_bytes(b"an earlier export")
    y = decoded.signals[0]
    monkeypatch.setattr(builtins, "open", _FullDisk(out, room=3000))
    with pytest.raises(ExportWriteError) as err:
        write_export(out, [("a.wav", y), ("b.wav", y)], sr=decoded.sr, subtype=subtype,
                     spec={"x": 1}, spec_name="a.json")
    monkeypatch.undo()
    assert str(err.value) == f"the disk is full (No space left on device): nothing was written to {out}"
    assert ".part" not in str(err.value) and isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert sorted(p.name for p in out.iterdir()) == ["earlier.wav"]


def test_exported_files_get_ordinary_modes(decoded, tmp_path):
    old = os.umask(0o022)
    try:
        import models.atomic as atomic

        atomic._UMASK = None  # read it again under this umask
        written = write_export(tmp_path, [("a.wav", decoded.signals[0])], sr=decoded.sr, subtype="pcm16",
                               spec={"x": 1}, spec_name="a.json")
    finally:
        os.umask(old)
        atomic._UMASK = None
    assert [oct(p.stat().st_mode & 0o777) for p in written] == [oct(0o644)] * 2


# --- dragging out of the app -------------------------------------------------------------------------------
@pytest.mark.gui
def test_the_drag_file_survives_closing_the_app_and_is_never_overwritten(qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from explorer_tiny import make_dataset_folder, tiny_loaded_model
    from test_explorer_paths import draw_path, empty_spots, open_window, wait_render

    data = make_dataset_folder(tmp_path / "sounds", per_class=10)
    w, _ = open_window(qtbot, tmp_path, data, tiny_loaded_model())
    drags = tmp_path / "drags"
    w.settings.setValue("drag/dir", str(drags))
    panel = w.path_panel
    qtbot.keyClick(w, Qt.Key.Key_M)
    a, b = empty_spots(w)
    draw_path(qtbot, w, a, b)
    wait_render(qtbot, w)
    first = panel.drag_file()
    assert first.parent == drags and sf.info(first).samplerate == 48000
    assert panel.drag_file() == first  # the same render: the same file, not a new one
    before = first.read_bytes()
    panel.steps_spin.setValue(panel.steps_spin.value() + 1)  # a new render gets a new file
    qtbot.waitUntil(lambda: panel.book.render_of(panel.book.path) is not None
                    and len(panel.book.render_of(panel.book.path).steps) == panel.steps_spin.value(), timeout=20000)
    second = panel.drag_file()
    assert second != first and first.read_bytes() == before
    w.runner.cancel_all()
    w.runner.wait(5000)
    w.close()
    assert first.is_file() and second.is_file() and first.read_bytes() == before
    assert oct(first.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
