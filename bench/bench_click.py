"""A click on a map point: time until its first buffer is handed to the audio output.

Issue 15's row "click -> first buffer handed to the audio output, vs reading that clip's WAV and
handing it over". For each demo model (resources/demo/notes: Colonel, Natsiou, Roche VAE), the
controller as the window leaves it (encoded, PCA map), then for several clips, interleaved:

* ``click``: ``Controller.decode_task(stream=out.stream)`` run as the window's worker runs it,
  timed from the task's creation to the first block appended to the output (the click's sound
  streams: the first chunk of its estimated phase is handed over while the rest is computed);
* ``wav``: ``models.audio.load_audio`` of the clip's file at the model's rate, then ``out.play``.

The output is the app's own mixing (``explorer.sound.audio_out``: a ``Mixer`` behind
``ResampledStream`` / ``play``), at the model's rate (``--rate model``, default: the row's
measure, nothing resampled on either side) or at 48 kHz as a sound card would be (``--rate
48000``: both sides resample). Medians over ``--repeats`` rounds; the ratio is click / wav. Also
printed: the time to the whole sound (the click's task done, spectrogram and original included)
and whether the streamed blocks join into the sound the task returns.

The machine is shared with other agents: absolute times vary; the ratios are taken side by side.

    .venv/bin/python bench/bench_click.py [--clips 8] [--repeats 5] [--rate model|48000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from explorer.core import paths
from explorer.core.controller import Controller, load_model
from explorer.sound.audio_out import GrowingSound, Mixer, ResampledStream
from models.audio import load_audio, resample
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.inference.encode import NullState

GOAL = 2.0


class _TimedSound(GrowingSound):
    """A Mixer entry that notes when its first block arrives."""

    def append(self, y: np.ndarray) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
        super().append(y)

    first_at: float | None = None


class _TimedMixer(Mixer):
    def stream(self) -> GrowingSound:
        sound = _TimedSound(self._up)
        self._commands.append(sound)
        self.last = sound
        return sound


class BenchOutput:
    """The app's mixing without a sound card: ``play`` and ``stream`` as SoundDeviceOutput's."""

    def __init__(self, sr: int) -> None:
        self.sr = int(sr)
        self.mixer = _TimedMixer(self.sr)

    def play(self, y: np.ndarray, sr: int) -> None:
        self.mixer.play(resample(y, sr, self.sr))

    def stream(self, sr: int) -> ResampledStream:
        return ResampledStream(self.mixer, sr)

    def drain(self) -> None:
        self.mixer._commands.clear()
        self.mixer._current = None


def app_with(dataset, stem: str, cache: FeatureCache) -> Controller:
    """The controller as the window leaves it after opening the demo with one checkpoint: a feature
    cache (the app's default), encoded, PCA map."""
    c = Controller(cache=cache)
    c.set_dataset(dataset)
    c.add_model(load_model(next(p for p in paths.demo_checkpoints() if p.stem == stem)))
    c.set_encoding(c.current_key, c.encode_task()(NullState()))
    c.set_embedding(c.project_task("pca")(NullState()))
    return c


def one_click(c: Controller, point: int, out: BenchOutput) -> tuple[float, float, bool | None]:
    """(seconds to the first block, seconds to the whole result, blocks == returned sound; None
    where that cannot hold: another output rate, or a peak that limit_peak scaled down)."""
    c.select_point(point)
    out.drain()
    t0 = time.perf_counter()
    task = c.decode_task(stream=out.stream)
    d = task(NullState())
    t_all = time.perf_counter() - t0
    sound = out.mixer.last
    first = sound.first_at - t0
    joined = np.concatenate([sound._y[sound._pos:], *list(sound._incoming)])
    if out.sr != c.current.representation.sample_rate or np.abs(joined).max() >= 1.0:
        return first, t_all, None
    return first, t_all, bool(np.array_equal(joined, d.decoded.y))


def one_click_whole(c: Controller, point: int, out: BenchOutput) -> float:
    """The click as before streaming: the whole task, then the whole sound handed over."""
    c.select_point(point)
    out.drain()
    t0 = time.perf_counter()
    d = c.decode_task()(NullState())
    out.play(d.decoded.y, d.decoded.sr)
    return time.perf_counter() - t0


def one_wav(path: str, sr: int, out: BenchOutput) -> float:
    out.drain()
    t0 = time.perf_counter()
    y = load_audio(path, sr=sr)
    out.play(y, sr)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rate", default="model", help='"model" (no resampling) or an output rate in Hz')
    args = ap.parse_args()
    if not paths.demo_available():
        print("verdict: FAIL the bundled demo is not built (scripts/build_demo.py)")
        return
    print(f"machine: {os.cpu_count()} cores, shared with other agents (times vary; ratios are side by side)")
    ds = open_dataset(paths.DEMO_DATASET)
    ratios = {}
    cache = FeatureCache(tempfile.mkdtemp(prefix="bench-click-"))  # built once per model by its first encode
    for stem in ("colonel-notes", "natsiou-notes", "roche-vae-notes"):
        c = app_with(ds, stem, cache)
        sr = c.current.representation.sample_rate
        out = BenchOutput(sr if args.rate == "model" else int(args.rate))
        clips = c.map_codes()[1]
        picks = np.linspace(0, len(ds.clips) - 1, args.clips).astype(int)
        points = [int(np.flatnonzero(clips == k)[0]) for k in picks]
        one_click(c, points[0], out)  # warm-up: numba, torch, soxr
        one_wav(str(ds.clips[picks[0]].path), sr, out)
        clicks, wavs, whole, unstreamed, same = [], [], [], [], []
        for _ in range(args.repeats):
            for k, p in zip(picks, points):
                f, a, s = one_click(c, p, out)
                clicks.append(f)
                whole.append(a)
                same.append(s)
                wavs.append(one_wav(str(ds.clips[k].path), sr, out))
                unstreamed.append(one_click_whole(c, p, out))
        click, wav, before = float(np.median(clicks)), float(np.median(wavs)), float(np.median(unstreamed))
        ratios[stem] = click / wav
        print(f"{stem:16s} output {out.sr} Hz: first buffer {1e3 * click:7.2f} ms, wav {1e3 * wav:6.2f} ms, "
              f"ratio {click / wav:6.1f}x | not streamed (whole task, then play) {1e3 * before:6.1f} ms = "
              f"{before / wav:6.1f}x | whole result {1e3 * float(np.median(whole)):6.1f} ms; "
              f"streamed == returned: {sum(x is True for x in same)}/{len(same)} "
              f"({sum(x is None for x in same)} not comparable: clipped at full scale or resampled)")
    worst = max(ratios, key=ratios.get)
    verdict = "PASS" if ratios[worst] <= GOAL else "FAIL"
    print(f"verdict: {verdict} worst {worst} {ratios[worst]:.1f}x (goal <= {GOAL:g}x)")


if __name__ == "__main__":
    main()
