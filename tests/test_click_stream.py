"""A click streams: chunked estimated phase, a Mixer sound that grows while it plays, the click path."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_tiny import FakeState

from explorer.core import paths
from explorer.core.controller import Controller, load_model
from explorer.sound.audio_out import Mixer, RecordingSink, ResampledStream
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.inference import decode
from models.representations.griffinlim import griffin_lim
from models.representations.phase import PhaseConfig, reconstruct
from models.representations.phase_stream import FIRST_FRAMES, blocks_to, chunk_bounds
from models.representations.pghi import pghi
from models.representations.stft import StftParams, spectral_convergence, stft

SR = 16000
PARAMS = StftParams(n_fft=1024, hop_length=256, window="hann", center=True)
#: a sample step at a join above this is a click (the tones below move by < 0.05 per sample)
CLICK = 0.1


def tone(seconds: float = 1.5, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    vib = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(vib) / SR
    y = sum(np.sin(k * ph) / k for k in range(1, 8)) * np.exp(-1.5 * t) * np.minimum(1.0, t / 0.01)
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def test_chunks_cover_the_frames_in_order_and_grow():
    b = chunk_bounds(100)
    assert b[0] == (0, FIRST_FRAMES) and b[-1][1] == 100
    assert all(x[1] == y[0] for x, y in zip(b, b[1:]))
    sizes = [y - x for x, y in b]
    assert sizes[1] == 2 * sizes[0] and max(sizes) <= 32


def test_streamed_blocks_join_into_the_returned_sound_and_the_first_is_short():
    y = tone()
    mag = np.abs(stft(y, params=PARAMS))
    blocks: list[np.ndarray] = []
    with blocks_to(blocks.append):
        whole = reconstruct(mag, params=PARAMS, method="pghi+gla", length=len(y))
    assert len(blocks) > 3
    assert len(blocks[0]) <= FIRST_FRAMES * PARAMS.hop_length  # heard after one short chunk
    assert np.array_equal(np.concatenate(blocks), whole) and len(whole) == len(y)
    # no block sink outside the block: nothing is handed out, the same sound comes back
    again = reconstruct(mag, params=PARAMS, method="pghi+gla", length=len(y))
    assert np.array_equal(again, whole)
    # batched (a morph's steps) gives each clip's own samples
    batch = reconstruct(np.stack([mag, 0.5 * mag]), params=PARAMS, method="pghi+gla", length=len(y))
    assert np.allclose(batch[0], whole, atol=1e-6)


def test_chunked_phase_sounds_as_good_as_the_whole_clip_one():
    y = tone()
    mag = np.abs(stft(y, params=PARAMS))
    cfg = PhaseConfig()
    whole = griffin_lim(mag, params=PARAMS, n_iter=cfg.pghi_gla_iters, init=pghi(mag, params=PARAMS), length=len(y))
    chunked = reconstruct(mag, params=PARAMS, method="pghi+gla", length=len(y), config=cfg)
    sc_whole = spectral_convergence(mag, whole, params=PARAMS)
    sc_chunked = spectral_convergence(mag, chunked, params=PARAMS)
    assert sc_chunked < 0.2 and sc_chunked <= 1.15 * sc_whole + 0.01
    # the joins do not click: no sample step at a chunk's end beyond the sound's own steps
    ends = np.cumsum([len(b) for b in _blocks(mag, len(y))])[:-1]
    steps = np.abs(np.diff(chunked))
    assert steps[ends - 1].max() < CLICK and steps[ends - 1].max() <= 2 * steps.max()


def _blocks(mag, n):
    out: list[np.ndarray] = []
    with blocks_to(out.append):
        reconstruct(mag, params=PARAMS, method="pghi+gla", length=n)
    return out


def test_a_growing_sound_plays_what_the_whole_sound_plays():
    y = tone(0.5)
    whole, grown = Mixer(SR), Mixer(SR)
    whole.play(y)
    ref = whole.render(len(y) + 1000)
    sound = grown.stream()
    parts = np.split(y, [300, 1700, 2048, 5000])
    got, k = [], 0
    for part in parts:  # blocks arrive between callbacks, ahead of the playhead
        sound.append(part)
        got.append(grown.render(256))
        k += 256
    sound.close()
    got.append(grown.render(len(y) + 1000 - k))
    out = np.concatenate(got)
    assert np.array_equal(out, ref)
    assert not grown.is_playing
    assert np.abs(np.diff(out)).max() <= np.abs(np.diff(y)).max() + 1e-6  # no step at a join beyond the tone's own


def test_a_late_block_leaves_silence_and_a_new_sound_cuts_a_growing_one_smoothly():
    m = Mixer(SR)
    s = m.stream()
    assert np.all(m.render(128) == 0) and m.is_playing  # nothing arrived yet: silence, still playing
    s.append(np.full(4000, 0.5, np.float32))
    a = m.render(1000)
    assert a[-1] == pytest.approx(0.5)
    m.play(np.zeros(2000, np.float32))  # cut: the growing sound fades out
    b = m.render(1000)
    assert np.abs(np.diff(np.r_[a, b])).max() < CLICK and b[-1] == 0.0
    s.append(np.ones(1000, np.float32))  # a cut sound's later blocks go nowhere
    s.close()
    assert np.all(m.render(2000) == 0)


def test_a_resampled_stream_starts_its_entry_at_the_first_block():
    m = Mixer(48000)
    m.play(np.full(48000, 0.25, np.float32))
    m.render(1000)  # past its fade-in
    st = ResampledStream(m, SR)
    assert m.render(100)[-1] == pytest.approx(0.25)  # the old sound goes on until the new one has samples
    st.append(tone(0.1))
    st.close()
    out = m.render(48000)
    assert np.abs(out[2000:4000]).max() > 0.05


# --- the click on the demo ----------------------------------------------------------------------
needs_demo = pytest.mark.skipif(not paths.demo_available(), reason="the bundled demo is not built")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ds = open_dataset(paths.DEMO_DATASET)
    c = Controller(cache=FeatureCache(tmp_path_factory.mktemp("cache")))
    c.set_dataset(ds)
    c.add_model(load_model(next(p for p in paths.demo_checkpoints() if p.stem == "colonel-notes")))
    c.set_encoding(c.current_key, c.encode_task()(FakeState()))
    c.set_embedding(c.project_task("pca")(FakeState()))
    return c


@needs_demo
def test_the_clip_context_from_the_feature_cache_is_the_analysed_one(app):
    rep, ds = app.current.representation, app.dataset
    for i in (0, 77):
        cached = decode.envelope_context(rep, ds, i, cache=app.cache)
        analysed = decode.clip_context(rep, ds, i)
        assert cached.n_samples == analysed.n_samples and cached.feature_shape == analysed.feature_shape
        assert cached.side.keys() == analysed.side.keys() - {"phase"} == {"frame_max"}
        assert np.array_equal(cached.side["frame_max"], analysed.side["frame_max"])


@needs_demo
def test_a_click_streams_its_sound_sample_for_sample(app):
    sink = RecordingSink(sr=SR)
    clips = app.map_codes()[1]
    app.select_point(int(np.flatnonzero(clips == 12)[0]))
    d = app.decode_task(stream=sink.stream)(FakeState())
    assert len(sink.played) == 1  # streamed and closed by the task itself
    y, sr = sink.played[0]
    assert sr == d.decoded.sr and np.array_equal(y, d.decoded.y) and np.abs(y).max() > 0.01
    assert d.decoded.spectrogram is not None and d.original is not None  # display work came after
    # the same click without streaming is the same sound (morph end steps and exports decode so)
    assert np.array_equal(app.decode_task()(FakeState()).decoded.y, y)
    # and the same as analysing the clip again instead of reading the feature cache
    enc, lm = app.encoding, app.current
    again = decode.render_clip(lm.model, lm.representation, app.dataset, enc, 12, phase=decode.ESTIMATED_PHASE)
    assert np.array_equal(again.y, y)


# --- the window: a sound card's output gets the click as a stream, once --------------------------
class _CardLikeSink(RecordingSink):
    """A recording sink that says it is heard at once, as a sound card is: the window streams to it."""

    realtime = True
    opened = 0

    def stream(self, sr):
        self.opened += 1
        return super().stream(sr)


@pytest.mark.gui
def test_the_window_streams_a_click_to_a_realtime_output_and_plays_it_once(qtbot, tmp_path):
    from explorer_tiny import make_dataset_folder, tiny_loaded_model
    from PySide6.QtCore import QSettings, Qt

    from explorer.window.main_window import MainWindow

    sink = _CardLikeSink()
    w = MainWindow(audio=sink, audio_message="test", model_loader=tiny_loaded_model,
                   settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.open_dataset(make_dataset_folder(tmp_path / "ds", per_class=4))
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=20000)
    w.add_model(tiny_loaded_model())
    qtbot.waitUntil(lambda: w.controller.embedding is not None and len(w.controller.points) == 16
                    and not w.runner.is_running("project"), timeout=20000)
    x, y = w.controller.points[5]
    qtbot.mouseClick(w.map_view.plot.viewport(), Qt.MouseButton.LeftButton, pos=w.map_view.data_to_viewport(x, y))
    qtbot.waitUntil(lambda: w.controller.decoded is not None and not w.runner.is_running("decode"), timeout=20000)
    qtbot.waitUntil(lambda: not w.runner.is_running("metrics"), timeout=20000)
    assert sink.opened == 1 and len(sink.played) == 1  # streamed while decoding, not played again after
    assert np.array_equal(sink.played[0][0], w.controller.decoded.decoded.y)
    w.runner.cancel_all()
    w.runner.wait(5000)
