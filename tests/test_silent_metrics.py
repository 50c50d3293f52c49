"""Measures a silent sound leaves undefined read "n/a (silent)", never a huge number."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.controller import Decoded
from explorer.core.metrics_task import (
    DTW_PREFIX,
    SILENT,
    ClassDTWCache,
    ClassRef,
    class_deviation,
    metrics_task,
    sound_metrics,
)
from models.inference.decode import _finish, display_spectrogram
from models.metrics.mfcc_dtw import ClassDTW, is_silent, mfcc

SR = 16000
T = np.arange(SR) / SR


def _tone(f: float, a: float = 0.3) -> np.ndarray:
    return (a * np.sin(2 * np.pi * f * T)).astype(np.float32)


def test_is_silent() -> None:
    assert is_silent(np.zeros(100)) and is_silent(np.full(10, np.nan)) and is_silent(np.zeros(0))
    assert is_silent(1e-4 * _tone(440, 1.0))  # -80 dBFS
    assert not is_silent(_tone(440, 0.01))  # -40 dBFS: quiet, not silent


def test_a_silent_member_makes_the_raw_deviation_explode() -> None:
    """Why the guard exists: the spread of a constant MFCC frame's distances is tiny."""
    ys = [_tone(f) for f in (220, 330, 440, 550)] + [np.zeros(SR, np.float32)]
    cls = ClassDTW([mfcc(y, sr=SR) for y in ys])
    assert abs(cls.deviation(4, mfcc(0.9 * ys[4] + 1e-6, sr=SR))) > 10 * abs(cls.deviation(0, mfcc(0.9 * ys[0], sr=SR)))


def test_silent_original_gets_na_not_numbers() -> None:
    silent, tone = _finish(np.zeros(SR), SR, "s"), _finish(_tone(440), SR, "t")
    m = sound_metrics(silent, tone)
    assert m["spectral convergence"] == SILENT
    assert m["harmonic precision"] == m["harmonic recall"] == m["harmonic F1"] == SILENT
    assert isinstance(m["RMSE (spectrogram)"], float)
    # a silent decoding of a tone: no decoded peaks, so no precision; recall is a plain 0
    m = sound_metrics(tone, silent)
    assert m["harmonic precision"] == SILENT and m["harmonic recall"] == pytest.approx(0.0)
    assert all(isinstance(v, str) or np.isfinite(v) for v in m.values())


class _Dataset:
    """Clip 0 is silent; 1-4 are tones of one class."""

    label_fields = ("label",)
    default_label = "label"

    def __init__(self) -> None:
        self.ys = [np.zeros(SR, np.float32)] + [_tone(f) for f in (220, 330, 440, 550)]

    def load(self, i: int, *, sr: int) -> np.ndarray:
        return self.ys[i]

    def labels(self, field: str) -> list[str]:
        return ["a"] * len(self.ys)


class _Controller:
    def __init__(self) -> None:
        self.dataset, self.colour_field, self.hidden, self.selection = _Dataset(), "label", set(), None
        self.class_dtw = ClassDTWCache()


class _State:
    def partial(self, result: object) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def test_the_deviation_of_a_silent_clip_reads_na() -> None:
    c = _Controller()
    silent = _finish(c.dataset.ys[0], SR, "silent", clip_index=0)
    decoded = _finish(1e-3 * _tone(300), SR, "decoded", clip_index=0)
    out = metrics_task(Decoded(silent, decoded), c)(_State())
    (name,) = [k for k in out if k.startswith(DTW_PREFIX)]
    assert out[name] == SILENT
    # a tone of the same class gets a number, and a modest one
    tone = _finish(c.dataset.ys[2], SR, "tone", clip_index=2)
    out = metrics_task(Decoded(tone, _finish(0.9 * c.dataset.ys[2], SR, "d", clip_index=2)), c)(_State())
    (name,) = [k for k in out if k.startswith(DTW_PREFIX)]
    assert isinstance(out[name], float) and abs(out[name]) < 10


def test_silent_class_mates_are_left_out_of_the_spread() -> None:
    ds, cache = _Dataset(), ClassDTWCache()
    ref = ClassRef(field="label", label="a", members=np.arange(5), size=5)
    got = cache.get(ds, ref, SR)
    assert got is not None and list(got[1]) == [1, 2, 3, 4]
    dev = class_deviation(cache, ds, ref, _finish(0.9 * ds.ys[2], SR, "d"), clip=2)
    assert np.isfinite(dev) and abs(dev) < 10


def test_spectrogram_of_silence_is_at_the_floor() -> None:
    S = display_spectrogram(np.zeros(SR, np.float32), SR)
    assert S.max() <= -79.0  # drawn at the bottom of the colour scale, not all at 0 dB
    T_ = display_spectrogram(_tone(440), SR)
    assert T_.max() == pytest.approx(0.0, abs=1e-3) and T_.min() >= -80.0
