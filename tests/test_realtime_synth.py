"""models.realtime.synth: codes in, a continuous stream of audio out, for frame and clip models."""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import pytest
import torch

from models.errors import ConfigError
from models.inference import decode
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import build_model, get_preset
from models.realtime.synth import FrameSynth, GrainSynth, make_synth
from models.representations import LogMel, StftFrames, Waveform

SR = 8000
N_FFT, HOP = 256, 64
F_LOW, F_HIGH = 440.0, 1330.0  # not whole cycles per hop: a wrong phase advance shows
W_LOW, W_HIGH = 310.0, 1230.0  # the waveform model's tones, neither a whole number of cycles per grain hop
LOW, HIGH = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


# --- tiny models whose decodings are known tones ----------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ToneConfig:
    input_shape: tuple[int, ...]


class TwoTones(LatentModel):
    """A linear decoder of a 2-value code onto two fixed items (``basis`` [shape=(2, *input_shape)])."""

    name = "two_tones_test"
    config_class = ToneConfig

    def __init__(self, basis: np.ndarray) -> None:
        super().__init__(ToneConfig(input_shape=basis.shape[1:]))
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.float32))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (2,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        return LatentCode(mean=x[:, :2])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.basis


def tone_frames(rep: StftFrames) -> TwoTones:
    """Code (a, b) -> the magnitude frame of a*sine(F_LOW) + b*sine(F_HIGH), scaled to the first's peak."""
    w = rep.stft_params.window_array()
    t = np.arange(N_FFT) / SR
    frames = np.stack([np.abs(np.fft.rfft(w * np.sin(2 * np.pi * f * t))) for f in (F_LOW, F_HIGH)])
    return TwoTones(frames / frames[0].max())


def tone_wave(n: int = 4096) -> TwoTones:
    """Code (a, b) -> n samples of 0.4 * (a*sine(W_LOW) + b*sine(W_HIGH))."""
    t = np.arange(n) / SR
    return TwoTones(0.4 * np.stack([np.sin(2 * np.pi * W_LOW * t), np.sin(2 * np.pi * W_HIGH * t)]))


@pytest.fixture(scope="module")
def frames():
    rep = StftFrames(sample_rate=SR, n_fft=N_FFT, hop_length=HOP)
    return tone_frames(rep).eval(), rep


@pytest.fixture(scope="module")
def wave():
    return tone_wave(4096).eval(), Waveform(sample_rate=SR, n_samples=4096)


# --- measures -----------------------------------------------------------------------------------------
def play(synth, codes, **kw) -> np.ndarray:
    blocks = [synth.step(c, **kw) for c in codes]
    assert all(b.shape == (synth.hop,) and b.dtype == np.float32 for b in blocks)
    return np.concatenate(blocks)


def rms_db(y: np.ndarray, sr: int = SR, win: float = 0.02) -> np.ndarray:
    n = int(win * sr)
    k = len(y) // n
    r = np.sqrt(np.mean(y[: k * n].reshape(k, n).astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(r + 1e-12)


def clicks(y: np.ndarray, *, factor: float = 8.0, floor: float = 0.02) -> int:
    """Samples whose step from the previous one is above ``factor`` x the median step plus a floor."""
    d = np.abs(np.diff(y.astype(np.float64)))
    return int(np.sum(d > factor * np.median(d) + floor))


def centroid(y: np.ndarray) -> float:
    return float(np.mean(librosa.feature.spectral_centroid(y=y.astype(np.float32), sr=SR, n_fft=1024)))


def dominant(y: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * SR / len(y))


# --- frames ---------------------------------------------------------------------------------------------
def test_a_steady_code_gives_a_steady_tone_without_clicks(frames):
    synth = make_synth(*frames, latent_shape=(2,))
    assert isinstance(synth, FrameSynth) and synth.hop == HOP // 2 and synth.sr == SR  # half the STFT hop
    y = play(synth, [LOW] * 250)[N_FFT * 2:]  # past the warm-up of the overlap-add
    env = rms_db(y)
    assert np.ptp(env) < 1.0 and env.mean() > -30  # steady, and not silence
    assert clicks(y) == 0
    assert abs(dominant(y) - F_LOW) < 20
    # the level: a feature of 1 at the default level is a sinusoid of the representation's default_level
    assert np.sqrt(2) * np.sqrt(np.mean(y ** 2)) == pytest.approx(frames[1].config.default_level, rel=0.1)


def test_jumping_between_codes_does_not_click(frames):
    synth = FrameSynth(*frames, latent_shape=(2,))
    codes = ([LOW] * 20 + [HIGH] * 20) * 6
    y = play(synth, codes)[N_FFT * 2:]
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert clicks(y) == 0


def test_the_spectrum_follows_the_code_as_decode_to_sound_does(frames):
    model, rep = frames
    ctx = decode.DecodeContext(n_samples=SR, feature_shape=rep.feature_shape(SR))
    offline, live = {}, {}
    for name, code in (("low", LOW), ("mid", np.array([1.0, 1.0], np.float32)), ("high", HIGH)):
        s = decode.decode_to_sound(model, rep, code[None], latent_shape=(2,), context=ctx, phase="pghi",
                                   spectrogram=False)
        offline[name] = centroid(s.y)
        live[name] = centroid(play(FrameSynth(model, rep, latent_shape=(2,)), [code] * 125)[N_FFT:])
    assert live["low"] < live["mid"] < live["high"]
    assert offline["low"] < offline["mid"] < offline["high"]
    for name in live:
        assert live[name] == pytest.approx(offline[name], rel=0.1)


def near(y: np.ndarray, f: float, width: float = 40.0) -> float:
    """The fraction of ``y``'s energy within ``width`` Hz of ``f``."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    return float(spec[np.abs(freqs - f) < width].sum() / spec.sum())


def test_an_octave_up_doubles_the_frequency(frames):
    synth = FrameSynth(*frames, latent_shape=(2,))
    up = play(synth, [LOW] * 200, shift=12.0)[N_FFT * 2:]
    assert dominant(up) == pytest.approx(2 * F_LOW, rel=0.03)
    assert near(up, 2 * F_LOW) > 0.9  # one clean partial: its window lobe moved, not stretched
    assert np.sqrt(2) * np.sqrt(np.mean(up ** 2)) == pytest.approx(frames[1].config.default_level, rel=0.1)
    assert clicks(up) == 0
    synth.reset()
    fifth = play(synth, [LOW] * 200, shift=7.0)[N_FFT * 2:]
    assert dominant(fifth) == pytest.approx(F_LOW * 2 ** (7 / 12), rel=0.03)


def test_level_scales_and_loud_codes_stay_within_full_scale(frames):
    model, rep = frames
    synth = FrameSynth(model, rep, latent_shape=(2,))
    quiet = play(synth, [LOW] * 100, level=synth.default_level / 4)[N_FFT * 2:]
    synth.reset()
    normal = play(synth, [LOW] * 100)[N_FFT * 2:]
    assert np.sqrt(np.mean(normal ** 2)) / np.sqrt(np.mean(quiet ** 2)) == pytest.approx(4.0, rel=0.05)
    synth.reset()
    loud = play(synth, [np.array([40.0, -30.0], np.float32)] * 50)
    assert np.isfinite(loud).all() and np.abs(loud).max() <= 1.0
    with pytest.raises(ConfigError):
        synth.step(np.zeros(3, np.float32))


def test_reset_starts_a_new_note_from_silence(frames):
    synth = FrameSynth(*frames, latent_shape=(2,))
    a = play(synth, [LOW] * 30)
    synth.reset()
    b = play(synth, [LOW] * 30)
    assert np.array_equal(a, b)  # deterministic, and reset forgets the overlap and the phase
    assert np.abs(a[:2]).max() < 0.05 * np.abs(a).max()  # the first grain rises from zero (over half a hop)


# --- grains ---------------------------------------------------------------------------------------------
def test_grains_of_a_held_code_are_steady_and_decoded_once(wave):
    synth = make_synth(*wave, latent_shape=(2,), background=False)
    assert isinstance(synth, GrainSynth) and synth.hop == round(0.02 * SR)
    y = play(synth, [LOW] * 150)[synth.grain:]  # 3 s: the 0.5 s segment loops several times
    env = rms_db(y)
    assert np.ptp(env) < 1.0 and env.mean() > -20
    assert clicks(y) == 0
    assert synth.decodes == 1
    assert abs(dominant(y) - W_LOW) < 10


def test_grains_follow_the_code_and_crossfade(wave):
    synth = GrainSynth(*wave, latent_shape=(2,), background=False)
    y = play(synth, [LOW] * 60 + [HIGH] * 60 + [LOW] * 60)
    assert clicks(y) == 0 and np.isfinite(y).all() and np.abs(y).max() <= 1.0
    n = 60 * synth.hop
    assert centroid(y[n // 2: n]) < 600 < centroid(y[n + n // 2: 2 * n]) and centroid(y[2 * n + n // 2:]) < 600
    assert synth.decodes == 3  # one decoding per new code, none while it is held
    # a code that moves a little, smoothly, does not click either
    ramp = [np.array([1 - a, a], np.float32) for a in np.linspace(0, 1, 100)]
    before = synth.decodes
    assert clicks(play(synth, ramp)) == 0
    assert 40 <= synth.decodes - before <= 51  # at most one decoding every decode_every=2 steps


def test_grains_shift_by_resampling(wave):
    synth = GrainSynth(*wave, latent_shape=(2,), background=False)
    y = play(synth, [LOW] * 100, shift=12.0)[synth.grain:]
    assert dominant(y) == pytest.approx(2 * W_LOW, rel=0.02)
    assert clicks(y) == 0


class Gate(torch.nn.Module):
    """Wraps a model so that its decodings wait for ``open`` (a decoding slower than the audio)."""

    def __init__(self, model: LatentModel) -> None:
        super().__init__()
        self.inner, self.open, self.threads = model, __import__("threading").Event(), []
        self.entered = __import__("threading").Event()  # a decoding has started (and may be waiting)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        self.entered.set()
        assert self.open.wait(timeout=30)
        self.left = getattr(self, "left", 0) + 1
        return self.inner.decode(z)


def test_background_grains_never_wait_for_a_decoding_and_crossfade_when_it_arrives(wave):
    model, rep = wave
    gate = Gate(model)
    synth = GrainSynth(gate, rep, latent_shape=(2,))
    assert synth.background
    assert not play(synth, [LOW] * 5).any()  # the first sound is being decoded: silence, no wait
    gate.open.set()
    assert synth.wait_decoded(timeout=30)
    low = play(synth, [LOW] * 40)
    gate.open.clear()
    held = play(synth, [HIGH] * 40)  # HIGH is asked for; its decoding waits: the LOW sound plays on
    assert synth.decodes == 1 and centroid(held[synth.grain:]) < 600
    gate.open.set()
    assert synth.wait_decoded(timeout=30)
    after = play(synth, [HIGH] * 40)
    assert synth.decodes == 2 and centroid(after[synth.grain:]) > 600
    assert clicks(np.concatenate([low, held, after])[synth.grain:]) == 0  # the switch is a crossfade
    assert gate.threads == [1, 1]  # the decode thread runs torch on one thread of its own
    synth.close()


def test_background_decoding_does_not_take_the_process_wide_thread_lock(wave):
    from models.threads import TORCH_THREADS_LOCK

    synth = GrainSynth(*wave, latent_shape=(2,))
    synth.step(LOW)
    assert synth.wait_decoded(timeout=30)  # the decode thread has started
    done = __import__("threading").Event()

    def hold():  # a click decoding or an encoding holding the lock on another thread
        with TORCH_THREADS_LOCK:
            done.wait(timeout=60)

    holder = __import__("threading").Thread(target=hold)
    holder.start()
    try:
        play(synth, [HIGH] * 3)  # asked for at the second step (decode_every=2)
        assert synth.wait_decoded(timeout=30) and synth.decodes == 2
    finally:
        done.set()
        holder.join()


def test_a_held_codes_grains_read_the_same_samples_as_decode_to_sound(wave):
    model, rep = wave
    synth = GrainSynth(model, rep, latent_shape=(2,), offset=0.0)
    code = np.array([0.7, 0.3], np.float32)
    n, _ = synth._span(0.0)
    want = decode.decode_to_sound(model, rep, code.astype(np.float64).reshape(1, -1), latent_shape=(2,),
                                  context=synth.context(None, n), phase=decode.ESTIMATED_PHASE,
                                  spectrogram=False, estimated=True).y
    synth.step(code)
    assert synth.wait_decoded(timeout=30)
    first = synth.step(code)  # the sound is swapped in here
    assert np.array_equal(synth._seg[: len(want)], want.astype(np.float64))
    # and the first grain reads it from its start (the grain's rising quarter, within one hop)
    w = np.hanning(synth.grain + 1)[:-1][: synth.hop] * synth._gain
    np.testing.assert_allclose(first, (want[: synth.hop] * w).astype(np.float32), atol=1e-6)


def test_a_grain_synth_through_the_producer_never_waits_for_its_decoding(wave):
    from models.realtime.engine import EngineConfig, PlayEngine
    from models.realtime.producer import Producer
    from models.realtime.position import PositionField

    model, rep = wave
    gate = Gate(model)
    e = PlayEngine(lambda: GrainSynth(gate, rep, latent_shape=(2,)), sr=SR, config=EngineConfig(voices=1))
    # labelled pitches: no f0 estimate decodes through the gated model on the engine's pitch thread
    e.set_field(PositionField(np.array([[0.0, 0.0], [1.0, 0.0]]), np.stack([LOW, HIGH]),
                              pitches=np.array([60.0, 60.0])))
    e.set_xy(0.0, 0.0)
    e.start()
    p = Producer(e, card_block=128)
    gate.open.set()
    p.fill_up()  # the offline driver lets the decode thread finish: the LOW sound is in
    block = np.empty(128, np.float32)

    def play_blocks(k, *, settle):
        out = []
        for _ in range(k):
            p.fill_up() if settle else p._fill(settle=False)  # _fill(False): the producer thread's pull
            p.read_into(block)
            out.append(block.copy())
        return np.concatenate(out)

    low = play_blocks(60, settle=True)
    gate.open.clear()
    gate.entered.clear()
    e.set_xy(1.0, 0.0)
    held = [play_blocks(4, settle=False)]  # the move asks for HIGH's decoding
    assert gate.entered.wait(timeout=30)  # it has started, and waits on the closed gate
    held.append(play_blocks(56, settle=False))  # the pulls go on meanwhile (a wait would hang here), LOW plays on
    held = np.concatenate(held)
    gate.open.set()
    e.settle(timeout=30)
    high = play_blocks(60, settle=True)
    assert p.underruns == 0 and e.failure is None
    assert centroid(low[2000:]) < 600 and centroid(held[2000:]) < 600 < centroid(high[2000:])
    assert clicks(np.concatenate([low, held, high])[2000:]) == 0


def test_a_tiny_lionello_plays_continuously():
    p = get_preset("lionello-dcvae-digits")
    torch.manual_seed(0)
    model = build_model(p.model, {**p.model_config, **p.tiny_model}).eval()
    rep = Waveform(**p.tiny_representation)  # 256 samples: shorter than a grain, so it loops whole
    synth = make_synth(model, rep, latent_shape=model.latent_shape, background=False)
    assert isinstance(synth, GrainSynth)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, synth.latent_dim)).astype(np.float32)
    y = play(synth, [a] * 40 + [b] * 40)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0 and np.sqrt(np.mean(y ** 2)) > 1e-4
    assert synth.decodes == 2
    # the held code's grains repeat the same decoded sound: later blocks equal earlier ones in level
    env = rms_db(y[synth.grain: 40 * synth.hop])
    assert np.ptp(env) < 6.0


def test_a_windows_model_plays_its_decoded_window_as_grains():
    rep = StftFrames(sample_rate=SR, n_fft=128, hop_length=32)
    torch.manual_seed(0)
    model = build_model("lstm_ae", {"input_shape": [8, 65], "latent_dim": 3, "hidden_size": 8}).eval()
    synth = make_synth(model, rep, latent_shape=model.latent_shape, background=False)
    assert isinstance(synth, GrainSynth) and synth.latent_dim == 8 * 3  # a window's code: one row per frame
    code = np.random.default_rng(1).standard_normal(synth.latent_dim).astype(np.float32)
    y = play(synth, [code] * 50)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0 and np.sqrt(np.mean(y ** 2)) > 1e-3
    assert synth.decodes == 1


def test_make_synth_picks_by_layout(frames):
    model, rep = frames
    assert isinstance(make_synth(model, rep, latent_shape=(2,), layout="frames"), FrameSynth)
    deep = build_model("deep_ae", {"input_shape": [N_FFT // 2 + 1], "hidden": [16], "latent_dim": 4})
    assert isinstance(make_synth(deep, rep, latent_shape=(4,)), FrameSynth)
    # a sequence model's windows are decoded whole and played as grains
    assert isinstance(make_synth(deep, rep, latent_shape=(4,), layout="windows"), GrainSynth)
    with pytest.raises(ConfigError):
        GrainSynth(deep, rep, latent_shape=(4,), phase="original")


def test_a_frame_model_on_log_mel_frames_plays_through_the_mel_inversion():
    rep = LogMel(sample_rate=SR, n_fft=N_FFT, hop_length=HOP, win_length=None, window="hann", n_mels=32, n_frames=None)
    t = np.arange(SR) / SR
    mel = [rep.analyze((0.25 * np.sin(2 * np.pi * f * t)).astype(np.float32)).features[:, 20] for f in (F_LOW, F_HIGH)]
    synth = FrameSynth(TwoTones(np.stack(mel)).eval(), rep, latent_shape=(2,))
    assert synth.default_level == pytest.approx(rep.default_ref_db)
    low = play(synth, [LOW] * 150)[N_FFT * 2:]
    synth.reset()
    high = play(synth, [HIGH] * 150)[N_FFT * 2:]
    assert np.isfinite(low).all() and np.sqrt(np.mean(low ** 2)) > 1e-3 and clicks(low) == 0
    assert abs(dominant(low) - F_LOW) < 40 and abs(dominant(high) - F_HIGH) < 80
