"""models.realtime.engine: the stream is continuous, follows its controls within 30 ms of stream
time, plays notes with fades and stealing, and reaches the sound card through a ring that
never hands out garbage.

The synths here are fakes with a known answer (the engine is under test, not the model):
``SineSynth`` plays a phase-continuous cosine whose frequency is the code, ``DCSynth`` a level
that ramps, within each hop, to the code's value (a crossfade, as an overlap-add does).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from models.errors import ConfigError
from models.realtime.engine import EngineConfig, PlayEngine, write_take
from models.realtime.producer import Producer
from models.realtime.position import PositionField

SR, HOP = 16000, 256
#: largest sample-to-sample step of a click-free stream here: the fakes' own steepest slope is
#: 2*pi*400/16000*0.8 = 0.13 (SineSynth) and a gate opening without a fade would step by ~0.6
CLICK = 0.2


class SineSynth:
    """cos of a phase that advances at f = 100 + 60 * code[0] Hz (times 2**(shift/12))."""

    sr, hop, latent_dim = SR, HOP, 2

    def __init__(self) -> None:
        self.phase, self.f = 0.0, None

    def reset(self) -> None:
        self.phase, self.f = 0.0, None

    def step(self, code, *, level=None, shift=0.0):
        f = (100.0 + 60.0 * float(code[0])) * 2.0 ** (shift / 12.0)
        f0 = f if self.f is None else self.f
        inst = np.linspace(f0, f, HOP, endpoint=False)
        ph = self.phase + np.cumsum(2 * np.pi * inst / SR) - 2 * np.pi * inst[0] / SR
        self.phase, self.f = float(ph[-1] + 2 * np.pi * f / SR), f
        return (np.cos(ph) * (0.2 + 0.1 * float(code[1]))).astype(np.float32)


class DCSynth:
    """A level ramping from the last code[0] to this one over the hop."""

    sr, hop, latent_dim = SR, HOP, 2

    def __init__(self) -> None:
        self.last = None

    def reset(self) -> None:
        self.last = None

    def step(self, code, *, level=None, shift=0.0):
        v = float(code[0])
        a = v if self.last is None else self.last
        self.last = v
        return np.linspace(a, v, HOP + 1, dtype=np.float32)[1:]


def line_field(n=6):
    """Sounds on a line: x = 0..n-1, code[0] = x (so SineSynth's pitch rises with x)."""
    pts = np.stack([np.arange(n, dtype=float), np.zeros(n)], axis=1)
    codes = np.stack([np.arange(n, dtype=float), np.ones(n)], axis=1)
    return PositionField(pts, codes, pitches=np.full(n, 60.0))


def engine(synth=SineSynth, **cfg):
    return PlayEngine(synth, sr=SR, config=EngineConfig(**cfg))


def pull(e, n, block=100):
    """The offline driver: odd-sized blocks, so hops straddle them."""
    return np.concatenate([e.process(min(block, n - i)) for i in range(0, n, block)])


def zero_crossing_hz(y):
    s = np.signbit(y)
    return np.count_nonzero(s[1:] != s[:-1]) / 2 / (len(y) / SR)


def test_scrub_follows_the_cursor_along_a_line_and_never_clicks():
    e = engine()
    e.set_field(line_field())
    e.set_xy(0.0, 0.0)
    e.start()
    seconds = 3.0
    for i in range(300):  # a gesture scripted in stream samples: left to right and back
        u = i / 299
        e.set_xy(5.0 * (1 - abs(1 - 2 * u)), 0.1, at=int(u * seconds * SR))
    y = pull(e, int(seconds * SR))
    assert np.isfinite(y).all() and np.abs(np.diff(y)).max() < CLICK
    seg = SR // 10
    f = np.array([zero_crossing_hz(y[i: i + seg]) for i in range(seg, len(y) - seg, seg)])
    xs = np.array([5.0 * (1 - abs(1 - 2 * (i + seg / 2) / len(y))) for i in range(seg, len(y) - seg, seg)])
    assert np.corrcoef(xs, f)[0, 1] > 0.98  # the pitch (here: the code) follows x
    assert f.max() > 350 and f.min() < 150


def test_start_fades_in_and_stop_fades_out_to_silence():
    e = engine(DCSynth)
    fld = line_field()
    e.set_field(fld)
    e.set_xy(4.0, 0.0)
    assert np.all(e.process(HOP) == 0.0)  # not started: silence, no synth work
    e.start()
    y = e.process(SR // 4)
    assert y[0] < 0.05 and np.abs(np.diff(y)).max() < CLICK  # an attack ramp, no step
    assert np.isclose(y[-1], np.tanh(0.8 * 4.0), atol=1e-3)
    e.stop()
    tail = e.process(SR // 4)
    assert np.abs(np.diff(np.concatenate([y[-1:], tail]))).max() < CLICK
    release = int(e.config.release_s * SR) + 2 * HOP
    assert tail[HOP // 2] > 0.1 and np.all(tail[release:] == 0.0) and e.active_voices == 0


@pytest.mark.parametrize("offset", [0, 37, 100, 255])
def test_a_control_is_audible_within_30_ms_of_stream_time(offset):
    e = engine(DCSynth)
    e.set_field(line_field())
    e.set_xy(1.0, 0.0)
    e.start()
    pull(e, 4 * HOP + offset)  # settled at x=1, then a jump posted mid-hop
    posted = e.position
    seq = e.set_xy(5.0, 0.0)
    y = pull(e, 20 * HOP)
    a, b = np.tanh(0.8 * 1.0), np.tanh(0.8 * 5.0)
    # "audible": a quarter of the way to the new sound (an OLA-like synth crossfades within a hop)
    heard = int(np.argmax(y > a + 0.25 * (b - a)))
    assert 0 < heard <= int(0.030 * SR)
    rec = next(r for r in e.control_log if r.seq == seq)
    assert rec.posted == posted and 0 <= rec.applied - rec.posted < HOP and rec.kind == "xy"
    assert np.abs(np.diff(y)).max() < CLICK  # the jump glides (one pole per hop), no click


def test_notes_play_at_their_pitch_release_with_a_fade_and_follow_velocity():
    e = engine(voices=4)
    e.set_field(line_field())
    e.set_xy(1.0, 0.0)  # code[0] = 1: 160 Hz, labelled pitch 60
    e.note_on(60, 127)
    e.note_on(72, 64)
    y = e.process(SR // 2)
    spec = np.abs(np.fft.rfft(y[SR // 8:] * np.hanning(len(y) - SR // 8)))
    hz = np.fft.rfftfreq(len(y) - SR // 8, 1 / SR)
    def at(f):
        return spec[np.abs(hz - f) < 5].max()

    assert hz[np.argmax(spec)] == pytest.approx(160, abs=3)  # 60 plays the sound at the cursor
    assert at(320) > 20 * at(240) and at(320) > 0.1 * at(160)  # 72 an octave up
    assert at(160) > 2.5 * at(320)  # velocity 127 vs 64 (square law: 4x)
    assert e.active_voices == 2
    e.note_off(60)
    e.note_off(72)
    tail = e.process(SR // 2)
    assert np.abs(np.diff(np.concatenate([y, tail]))).max() < CLICK
    assert np.abs(tail[: int(0.02 * SR)]).max() > 0.05  # a release, not a cut
    assert np.all(tail[int(e.config.release_s * SR) + 2 * HOP:] == 0.0) and e.active_voices == 0


def test_a_fifth_note_steals_the_oldest_voice_without_a_click():
    e = engine(voices=2)
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)
    e.note_on(60, 100)
    a = e.process(SR // 8)
    e.note_on(64, 100)
    b = e.process(SR // 8)
    e.note_on(67, 100)  # both voices busy: 60 (the oldest) fades out quickly and 67 takes it
    c = e.process(SR // 4)
    y = np.concatenate([a, b, c])
    assert np.abs(np.diff(y)).max() < CLICK
    pitches = sorted(v.pitch for v in e._voices[1:] if v.state == "on")
    assert pitches == [64, 67]
    e.note_off(60)  # already stolen: nothing happens
    assert e.active_voices == 2


def test_reference_pitch_is_estimated_when_the_map_has_no_labels():
    e = engine()
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    e.set_field(PositionField(pts, np.array([[4.0, 1.0], [4.0, 1.0]])))  # 340 Hz everywhere
    e.set_xy(0.5, 0.0)
    assert e.reference_pitch(timeout=30) == pytest.approx(69 + 12 * np.log2(340 / 440), abs=0.3)
    e.set_field(line_field())
    assert e.reference_pitch() == 60.0  # labels win


class ThreadSine(SineSynth):
    """A SineSynth that notes the threads it runs on."""

    threads: set = set()

    def step(self, code, *, level=None, shift=0.0):
        ThreadSine.threads.add(threading.get_ident())
        return super().step(code, level=level, shift=shift)


def test_a_note_never_estimates_its_reference_pitch_on_the_callers_thread():
    ThreadSine.threads = set()
    e = engine(ThreadSine)
    pts = np.array([[0.0, 0.0], [1.0, 0.0]])
    e.set_field(PositionField(pts, np.array([[4.0, 1.0], [0.0, 1.0]])))  # 340 Hz at x=0, 100 Hz at x=1
    e.set_xy(0.0, 0.0)  # asks the pitch worker for the point's pitch
    here = threading.get_ident()
    e.note_on(60, 100)  # whatever the worker has done by now, this thread synthesises nothing
    assert here not in ThreadSine.threads
    assert e.reference_pitch(timeout=30) == pytest.approx(69 + 12 * np.log2(340 / 440), abs=0.3)
    assert e.reference_pitch((1.0, 0.0), timeout=30) == pytest.approx(69 + 12 * np.log2(100 / 440), abs=0.3)
    assert here not in ThreadSine.threads and len(ThreadSine.threads) == 1  # the worker's probe only
    seq = e.note_on(72, 100)
    e.process(HOP)
    rec = next(r for r in e.control_log if r.seq == seq)
    assert rec.applied - rec.posted < HOP
    shift = next(v.shift for v in e._voices[1:] if v.pitch == 72)
    assert shift == pytest.approx(72 - (69 + 12 * np.log2(340 / 440)), abs=0.3)  # the cached estimate


def test_a_map_of_another_latent_size_is_refused_in_the_callers_thread():
    e = engine()
    with pytest.raises(ConfigError, match="3 values"):
        e.set_field(PositionField(np.zeros((2, 2)) + [[0, 0], [1, 0]], np.zeros((2, 3))))
    with pytest.raises(ConfigError, match="3 values"):
        e.set_code(np.zeros(3))
    assert e.field is None


def test_retriggering_a_key_whose_voice_is_being_stolen_keeps_the_stealing_note():
    e = engine(voices=2)
    e.set_field(line_field())
    e.set_xy(1.0, 0.0)
    for p in (60, 62):
        e.note_on(p, 100)
    e.process(HOP)
    e.note_on(64, 100)  # steals the voice of 60
    e.process(HOP // 4)
    e.note_on(60, 100)  # 60 again while its voice fades for 64: 64 must still come
    e.process(SR // 10)
    assert sorted(v.pitch for v in e._voices[1:] if v.state == "on") == [60, 64]


def test_set_code_drives_the_voice_and_none_returns_to_the_cursor():
    e = engine(DCSynth, smoothing_s=0.0)
    e.set_field(line_field())
    e.set_xy(1.0, 0.0)
    e.start()
    e.process(SR // 4)
    e.set_code(np.array([3.0, 0.0]))
    assert np.isclose(e.process(SR // 4)[-1], np.tanh(0.8 * 3.0), atol=1e-3)
    e.set_code(None)
    assert np.isclose(e.process(SR // 4)[-1], np.tanh(0.8 * 1.0), atol=1e-3)


def test_a_quick_take_start_and_stop_leaves_no_take_running_under_a_producer():
    e = engine()
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)
    e.start()
    p = Producer(e)
    done = threading.Event()

    def card():  # reads blocks as a sound card does, so the engine keeps making hops
        out = np.empty(160, np.float32)
        while not done.is_set():
            if p.wait_ready(timeout=30):
                p.read_into(out)

    p.start()
    reader = threading.Thread(target=card)
    reader.start()
    try:
        for _ in range(20):  # Ctrl+R, Ctrl+R: the stop is queued behind the start, never ahead of it
            e.start_take()
            take = e.stop_take(timeout=30)
            assert e._take is None and not take.full
        e.start_take()
        mark = e.position
        while e.position < mark + SR // 4:  # a quarter second of the card's reads
            done.wait(0.001)
        take = e.stop_take(timeout=30)
        assert len(take.y) > 0 and e._take is None and p.error is None
    finally:
        done.set()
        reader.join()
        p.close()


def test_a_take_reaching_its_longest_says_so():
    e = engine(take_max_s=0.1)
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)
    e.start()
    e.start_take()
    e.process(SR // 2)
    take = e.stop_take()
    assert take.full and len(take.y) == pytest.approx(0.1 * SR, abs=HOP)


def test_take_is_recorded_and_written_with_the_export_rules(tmp_path):
    e = engine()
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)
    e.start()
    e.start_take()
    for x in np.linspace(2, 4, 10):
        e.set_xy(x, 0.0)
        e.process(SR // 20)
    take = e.stop_take()
    assert len(take.y) >= SR // 2 - HOP and take.path.shape[1] == 3 and take.path[-1, 1] > take.path[0, 1]
    path = write_take(tmp_path / "take.wav", take)
    y, sr = sf.read(path)
    assert sr == 48000 and abs(len(y) - 3 * len(take.y)) <= 3
    assert y[0] == 0.0 and y[-1] == 0.0 and np.abs(y).max() > 0.1  # edge fades, and sound
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]  # atomic: no temporary left


def test_reading_an_empty_ring_counts_an_underrun_and_plays_silence():
    e = engine()
    p = Producer(e)
    out = np.full(128, 7.0, np.float32)
    p.read_into(out)
    assert p.underruns == 1 and e.underruns == 1 and np.all(out == 0.0)


def test_a_short_ring_fades_out_what_it_has_and_fades_back_in():
    e = engine(DCSynth, lookahead=HOP, attack_s=0.0)
    e.set_field(line_field())
    e.set_xy(4.0, 0.0)
    e.start()
    p = Producer(e)
    p.fill_up()
    have = p.fill
    out = np.empty(have + 50, np.float32)
    p.read_into(out)
    assert p.underruns == 1 and np.all(out[have:] == 0.0) and p.fill == 0
    assert np.abs(np.diff(out[:have])).max() < CLICK and abs(out[have - 1]) < CLICK  # faded, not cut
    p.fill_up()
    again = np.empty(64, np.float32)
    p.read_into(again)
    assert again[0] < 0.2 and np.abs(np.diff(again)).max() < CLICK and p.underruns == 1


def test_an_underrun_after_full_blocks_fades_out_the_reserve_it_kept():
    """The producer stops (or stalls) with the card reading full-level blocks: the first block it
    cannot fill fades out over the reserve the last full read left, however empty the ring."""
    e = engine(DCSynth, attack_s=0.0)
    e.set_field(line_field())
    e.set_xy(4.0, 0.0)
    e.start()
    p = Producer(e, card_block=128)
    y = []
    for _ in range(8):
        p.fill_up()
        out = np.empty(128, np.float32)
        p.read_into(out)
        y.append(out.copy())
    assert p.underruns == 0 and p.fill >= p.fade and abs(y[-1][-1]) > 0.9
    while p.fill:  # no more fill_up: the ring runs dry
        out = np.empty(128, np.float32)
        p.read_into(out)
        y.append(out.copy())
    y = np.concatenate(y)
    assert p.underruns >= 1 and y[-1] == 0.0
    assert np.abs(np.diff(y)).max() < CLICK  # it faded: never a full-level sample next to silence


class Broken(SineSynth):
    calls = 0

    def step(self, code, *, level=None, shift=0.0):
        Broken.calls += 1
        if Broken.calls > 40:
            raise RuntimeError("the decoder broke")
        return super().step(code, level=level, shift=shift)


def test_a_failure_on_the_audio_side_is_kept_reported_and_fades_to_silence():
    Broken.calls = 0
    e = engine(Broken)
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)
    e.start()
    p = Producer(e, lookahead=600)
    p.fill_up()
    p.start()
    y = []
    try:
        for _ in range(300):
            out = np.empty(160, np.float32)
            p.wait_ready(timeout=30)
            p.read_into(out)
            y.append(out.copy())
    finally:
        p.close()
    assert isinstance(p.error, RuntimeError) and e.failure is p.error and not p.running
    y = np.concatenate(y)
    assert np.abs(y[:4000]).max() > 0.1 and np.all(y[-1000:] == 0.0)  # played, then silence
    assert np.abs(np.diff(y)).max() < CLICK  # faded out, not cut


def scripted(e):
    e.set_field(line_field())
    e.set_xy(0.0, 0.0)
    e.start()
    for i in range(40):
        e.set_xy(i / 8, 0.0, at=i * 400)
    e.note_on(67, 90, at=3000)
    e.note_off(67, at=9000)


def test_threaded_producer_gives_the_offline_stream_with_no_underrun():
    offline = engine()
    scripted(offline)
    n_blocks, block = 200, 160
    want = offline.process(n_blocks * block)
    live = engine()
    scripted(live)
    p = Producer(live, card_block=block)
    got = np.empty(n_blocks * block, np.float32)
    p.start()
    try:
        for i in range(n_blocks):  # the handshake: wait until the ring is ready, then read a block
            assert p.wait_ready(timeout=30.0)
            p.read_into(got[i * block: (i + 1) * block])
    finally:
        p.close()
    assert p.error is None and p.underruns == 0
    assert np.array_equal(got, want)
    assert p._thread is None


def test_producer_resamples_to_the_device_rate_continuously():
    e = engine()
    e.set_field(line_field())
    e.set_xy(2.0, 0.0)  # 220 Hz
    e.start()
    assert Producer(e, device_sr=48000).lookahead == 3 * e.config.lookahead
    p = Producer(e, device_sr=48000, card_block=480)
    margin = max(3 * e.config.lookahead // 4, round(e.config.stall_s * 48000))  # a stalled step ridden out
    assert p.lookahead == 480 + margin + p.fade  # a block, the margin, the reserve
    chunks = []
    for _ in range(300):
        p.fill_up()
        out = np.empty(480, np.float32)
        p.read_into(out)
        chunks.append(out)
    y = np.concatenate(chunks)[4800:]
    assert p.underruns == 0 and np.abs(np.diff(y)).max() < CLICK / 3
    assert zero_crossing_hz(y) * 48000 / SR == pytest.approx(220, abs=3)  # the pitch survives


def test_recording_sink_pulls_a_stream_source_like_a_callback():
    from explorer.sound.audio_out import RecordingSink

    offline = engine()
    scripted(offline)
    want = offline.process(4096)
    live = engine()
    scripted(live)
    p = Producer(live, lookahead=4096 + 128)  # the whole read and the callback's reserve
    p.fill_up()
    sink = RecordingSink(sr=SR)
    sink.set_stream_source(p)
    got = sink.drive(4096, block=512)
    assert np.array_equal(got, want) and p.underruns == 0 and sink.streamed[-1] is got


# --- the real synth on the demo model -------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from explorer.core.paths import DEMO_DATASET, best_sounding_demo_checkpoint

    ckpt_path = best_sounding_demo_checkpoint()
    if ckpt_path is None:
        pytest.skip("the bundled demo is not built")
    from models.checkpoints.checkpoint import load_checkpoint
    from models.datasets import open_dataset
    from models.inference.encode import encode_sound
    from models.inference.layout import layout_for
    from models.representations import representation_from_dict
    from models.realtime.synth import make_synth

    ckpt = load_checkpoint(ckpt_path)
    rep = representation_from_dict(dict(ckpt.representation))
    ds = open_dataset(DEMO_DATASET)
    names = [c.name for c in ds.clips]
    # two different clips: a low electronic bass and a high flute
    low = min(range(len(ds.clips)), key=lambda i: (ds.clips[i].labels["instrument_family_str"] != "bass",
                                                   ds.clips[i].labels["pitch"], names[i]))
    high = max(range(len(ds.clips)), key=lambda i: (ds.clips[i].labels["instrument_family_str"] == "flute",
                                                    ds.clips[i].labels["pitch"], names[i]))
    codes = np.stack([encode_sound(ckpt.model, rep, ds.load(i, sr=rep.sample_rate)) for i in (low, high)])
    layout = layout_for(ckpt.model, rep)

    def factory():
        return make_synth(ckpt.model, rep, latent_shape=ckpt.model.latent_shape, layout=layout)

    return factory, int(rep.sample_rate), codes, int(rep.stft_params.n_fft)


def centroid(y, sr, n_fft=1024, hop=256):
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    hz = np.fft.rfftfreq(n_fft, 1 / sr)
    return (mag * hz).sum(axis=1) / np.maximum(mag.sum(axis=1), 1e-12)


def test_real_synth_scrub_moves_the_centroid_with_x_between_two_clips(demo):
    factory, sr, codes, _ = demo
    e = PlayEngine(factory, sr=sr, config=EngineConfig())
    fld = PositionField(np.array([[0.0, 0.0], [1.0, 0.0]]), codes)
    e.set_field(fld)
    e.set_xy(0.0, 0.0)
    e.start()
    seconds = 4.0
    for i in range(200):
        e.set_xy(i / 199, 0.0, at=int(i / 199 * seconds * sr))
    y = np.concatenate([e.process(256) for _ in range(int(seconds * sr) // 256)])
    assert np.isfinite(y).all() and np.abs(y[sr // 2:]).max() > 0.01
    # continuous: no sample step far past the sound's own steepest (its 99.9th percentile)
    d = np.abs(np.diff(y))
    assert d.max() < max(4 * np.quantile(d, 0.999), 0.05)
    c = centroid(y, sr)
    t = (np.arange(len(c)) * 256 + 512) / sr
    x = np.clip(t / seconds, 0, 1)
    ok = (t > 0.3) & (t < seconds - 0.1)
    cs = np.convolve(c, np.ones(15) / 15, mode="same")
    first, last = np.median(cs[ok & (x < 0.15)]), np.median(cs[ok & (x > 0.85)])
    assert abs(last - first) > 150  # two different sounds

    def held(x0: float) -> float:  # the sound at x0, the cursor resting there
        h = PlayEngine(factory, sr=sr, config=EngineConfig())
        h.set_field(fld)
        h.set_xy(x0, 0.0)
        h.start()
        return float(np.median(centroid(np.concatenate([h.process(256) for _ in range(sr // 256)]), sr)[10:]))

    # the scrub follows the controls: passing x it sounds as the cursor resting at x does (the
    # blend's centroid need not be monotonic in x: a decoder is not linear in its code)
    for x0 in (0.1, 0.3, 0.5, 0.7, 0.9):
        near = ok & (np.abs(x - x0) < 0.04)
        assert np.median(cs[near]) == pytest.approx(held(x0), rel=0.15), x0


@pytest.mark.parametrize("ring", ["emptiest", "fullest"])
@pytest.mark.parametrize("when", [40, 41, 42, 43])
def test_real_synth_jump_is_heard_within_30_ms_of_the_sound_cards_clock(demo, when, ring):
    """End to end, as the sound card hears it: the producer's ring (its lookahead), the engine's
    hop, the synth's low-delay frame and the resampler to 48 kHz, with the app's callback block
    (explorer.sound.audio_out.CALLBACK_BLOCK). The jump is posted at callback block ``when``
    (several phases against the hop), either right after the card read it (the ring at its
    emptiest) or right after the producer refilled (at its fullest: the worst case, a whole
    lookahead queued before the jump); it is heard at the first sample where the output differs
    from the same stream without the jump by a quarter of that stream's level (5 ms RMS, -12 dB):
    the new sound has taken a quarter of the output."""
    from explorer.sound.audio_out import CALLBACK_BLOCK

    factory, sr, codes, _ = demo
    device, block = 48000, CALLBACK_BLOCK

    def run(jump: bool):
        e = PlayEngine(factory, sr=sr, config=EngineConfig())
        e.set_field(PositionField(np.array([[0.0, 0.0], [1.0, 0.0]]), codes))
        e.set_xy(0.0, 0.0)
        e.start()
        p = Producer(e, device_sr=device, card_block=block)
        buf, out, heard_from = np.zeros(block, np.float32), [], None
        for k in range(when + 24):
            p.fill_up()
            if k == when and ring == "fullest":
                assert p.fill >= p.lookahead
                heard_from = p.position  # what the card has played: the stream clock
                if jump:
                    e.set_xy(1.0, 0.0)
            p.read_into(buf)
            out.append(buf.copy())
            if k == when and ring == "emptiest":
                heard_from = p.position
                if jump:
                    e.set_xy(1.0, 0.0)
        assert p.underruns == 0
        return np.concatenate(out), heard_from

    y, posted = run(True)
    ref, _ = run(False)
    win = int(0.005 * device)
    diff = np.sqrt(np.convolve((y - ref) ** 2, np.ones(win) / win, mode="valid"))
    level = np.sqrt(np.convolve(ref ** 2, np.ones(win) / win, mode="valid"))
    assert np.all(diff[: posted - win] < 1e-6)  # nothing changes before the jump is posted
    heard = posted + int(np.argmax(diff[posted:] > 0.25 * level[posted:]))
    assert diff[heard] > 0.25 * level[heard]
    assert (heard - posted) / device <= 0.030, (heard - posted) / device
