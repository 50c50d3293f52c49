"""Live input (models.realtime.live_input): rolling-buffer frames equal offline analysis, a file moves
the map cursor towards the clips it sounds like, the path is smooth, a missing sound card is a reason."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from explorer.core import paths
from models.audio import resample, save_wav
from models.checkpoints.checkpoint import load_checkpoint
from models.datasets import open_dataset
from models.inference import layout as item_layout
from models.inference.encode import analyse_clip, encode_items
from models.mapping.projection import PCAProjector, TSNEEmbedding
from models.realtime import live_input as live
from models.realtime.live_input import FileInput, InputUnavailable, LiveCursor, LiveEncoder, SoundCardInput, run_live
from models.representations.base import representation_from_dict
from models.representations.nn_frames import NNFrames
from models.representations.stft_frames import StftFrames

SR = 16000
#: two demo notes far apart on the map of the pitch-55 loud notes, each its own nearest point there
CLIP_A, CLIP_B = "guitar_acoustic_024-055-127.wav", "organ_electronic_016-055-127.wav"


def _noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.1 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _feed_features(encoder: LiveEncoder, y: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    idx, feats, s, j = [], [], 0, 0
    while s < len(y):
        i, f = encoder.features(y[s: s + sizes[j % len(sizes)]])
        idx += list(i)
        feats += list(f)
        s += sizes[j % len(sizes)]
        j += 1
    i, f = encoder.features(np.zeros(0, np.float32), final=True)
    return np.array(idx + list(i)), np.array(feats + list(f))


@pytest.mark.parametrize("rep", [
    StftFrames(sample_rate=SR, n_fft=1024, hop_length=256),
    StftFrames(sample_rate=SR, n_fft=512, hop_length=160, center=False, magnitude="log"),
    StftFrames(sample_rate=SR, n_fft=1000, hop_length=300, win_length=600),
    NNFrames(sample_rate=SR, frame=256),
], ids=["centred", "uncentred-log", "odd-hop", "nn_frames"])
def test_rolling_buffer_frames_equal_offline_analysis(rep):
    y = _noise(SR + 123)
    fake_model = types.SimpleNamespace(input_shape=(rep.feature_shape(len(y))[1],))
    enc = LiveEncoder(fake_model, rep, latent_shape=(4,), layout="frames")
    idx, feats = _feed_features(enc, y, [300, 1, 777, 64])
    offline = rep.analyze(y).features
    assert list(idx) == list(range(len(offline)))
    np.testing.assert_allclose(feats, offline, rtol=0, atol=1e-6)


# --- the demo model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    """Colonel's frame model on the demo notes, and a PCA map of the 20 loud notes at pitch 55."""
    if not paths.demo_available():
        pytest.skip("the demo is not bundled")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ck = load_checkpoint(paths.DEMO_CHECKPOINTS / "colonel-notes.safetensors")
    rep = representation_from_dict(ck.representation)
    ds = open_dataset(paths.DEMO_DATASET)
    rows = [i for i, c in enumerate(ds.clips) if c.labels["pitch"] == 55 and c.labels["velocity"] == 127]
    sounds, trajectories = [], []
    for i in rows:
        y, analysis = analyse_clip(ds, i, rep)
        sounds.append(y)
        codes = encode_items(ck.model, analysis.features)
        trajectories.append(codes.reshape(len(codes), -1).astype(np.float64))
    clip_codes = np.stack([t.mean(axis=0) for t in trajectories])  # as encode_dataset makes them
    names = [ds.clips[i].path.name for i in rows]
    yield types.SimpleNamespace(model=ck.model, rep=rep, names=names, sounds=sounds, trajectories=trajectories,
                                clip_codes=clip_codes, embedding=PCAProjector().fit(clip_codes))
    torch.set_num_threads(before)


def _encoder(demo, **kw) -> LiveEncoder:
    return LiveEncoder(demo.model, demo.rep, latent_shape=(demo.clip_codes.shape[1],), layout="frames", **kw)


def test_live_codes_of_a_clip_are_its_offline_codes(demo):
    j = demo.names.index(CLIP_A)
    enc = _encoder(demo)
    codes = []
    for block in FileInput(demo.sounds[j], sr=SR, block_size=333):
        codes += enc.feed(block)
    codes += enc.flush()
    # the padding FileInput adds to the last block is extra audio; the clip's own frames come first
    got = np.stack([c for _, c in codes])[: len(demo.trajectories[j])]
    np.testing.assert_allclose(got, demo.trajectories[j], atol=1e-5)
    samples = [s for s, _ in codes]
    assert samples == sorted(samples) and samples[0] == 512  # frame 0 is centred on 0: complete at n_fft / 2


def _ranks(embedding, xy: np.ndarray, j: int) -> np.ndarray:
    """How many map points are nearer each cursor position than point ``j`` (0: j is the nearest)."""
    d = np.linalg.norm(embedding.points[None] - xy[:, None], axis=2)
    return (d < d[:, [j]]).sum(axis=1)


@pytest.fixture(scope="module")
def a_then_b(demo, tmp_path_factory):
    """2 s of clip A then 2 s of clip B, written at 44.1 kHz and played as a sound card would."""
    a, b = demo.names.index(CLIP_A), demo.names.index(CLIP_B)
    y = np.concatenate([demo.sounds[a][: 2 * SR], demo.sounds[b][: 2 * SR]])
    path = save_wav(tmp_path_factory.mktemp("live") / "a_then_b.wav", resample(y, SR, 44100), sr=44100,
                    subtype="float32")
    src = FileInput(path, block_size=512)
    assert src.sr == 44100
    enc = _encoder(demo, sr=src.sr)
    cursor = LiveCursor(demo.embedding, sr=SR)
    path_ = run_live(src, enc, cursor)
    t = np.array([s for s, _ in path_])
    xy = np.stack([p for _, p in path_])
    return types.SimpleNamespace(a=a, b=b, t=t, xy=xy, cursor=cursor)


def test_file_input_moves_the_cursor_towards_the_clips_it_resembles(demo, a_then_b):
    r = a_then_b
    playing_a = (r.t > 0.5 * SR) & (r.t < 2.0 * SR)
    playing_b = (r.t > 2.5 * SR) & (r.t < 4.0 * SR)
    # while A plays the cursor is among A's nearest few points on the map; then B's
    assert np.median(_ranks(demo.embedding, r.xy[playing_a], r.a)) < 3
    assert np.median(_ranks(demo.embedding, r.xy[playing_b], r.b)) < 3
    pa, pb = demo.embedding.points[r.a], demo.embedding.points[r.b]
    at = lambda sec: r.xy[np.searchsorted(r.t, sec * SR)]  # noqa: E731
    assert np.linalg.norm(at(1.5) - pa) < np.linalg.norm(at(1.5) - pb)
    assert np.linalg.norm(at(3.5) - pb) < np.linalg.norm(at(3.5) - pa)


def test_cursor_path_is_smooth(demo, a_then_b):
    r = a_then_b
    diagonal = np.linalg.norm(np.ptp(demo.embedding.points, axis=0))
    hop = demo.rep.stft_params.hop_length
    steps = np.linalg.norm(np.diff(r.xy, axis=0), axis=1)
    assert steps.max() <= r.cursor.max_step * hop * 1.001  # 2 diagonals a second at most
    assert steps.max() < 0.05 * diagonal
    # the frame codes themselves jump about: the summary and the smoothing are what remove the jumps
    raw = LiveCursor(demo.embedding, sr=SR, point_mode="frame", smooth_s=0.0, max_speed=0.0)
    enc = _encoder(demo)
    y = np.concatenate([demo.sounds[r.a][: 2 * SR], demo.sounds[r.b][: 2 * SR]])
    raw_xy = np.stack([p for _, p in run_live(FileInput(y, sr=SR), enc, raw)])
    assert np.linalg.norm(np.diff(raw_xy, axis=0), axis=1).max() > 3 * steps.max()


def test_frame_mode_cursor_places_the_code_itself(demo):
    j = demo.names.index(CLIP_A)
    frames = np.concatenate(demo.trajectories[:4] + [demo.trajectories[j]])
    emb = PCAProjector().fit(frames)
    cursor = LiveCursor(emb, sr=SR, point_mode="frame", smooth_s=0.0, max_speed=0.0)
    code = demo.trajectories[j][40]
    np.testing.assert_allclose(cursor.push([(1000, code)]), emb.transform(code[None])[0])
    # clip mode averages the recent window, as a clip point is the mean of its frame codes
    clip = LiveCursor(demo.embedding, sr=SR, smooth_s=0.0, max_speed=0.0, summary_s=1.0)
    codes = demo.trajectories[j][10:20]
    xy = clip.push([(1000 + 256 * i, c) for i, c in enumerate(codes)])
    np.testing.assert_allclose(xy, demo.embedding.transform(codes.mean(0)[None])[0])


def test_tsne_map_places_by_the_nearest_map_codes(demo):
    # no openTSNE work: "auto" on a t-SNE map never calls its transform (slow, see the module docstring)
    emb = TSNEEmbedding(demo.embedding.points * 10, demo.clip_codes, tsne_embedding=object())
    cursor = LiveCursor(emb, sr=SR, smooth_s=0.0, max_speed=0.0, k=4)
    assert cursor.placement == "neighbours"
    j = demo.names.index(CLIP_A)
    np.testing.assert_allclose(cursor.place(demo.clip_codes[j]), emb.points[j])
    near = cursor.place(demo.clip_codes[j] + 1e-3 * np.ones(demo.clip_codes.shape[1]))
    assert np.linalg.norm(near - emb.points[j]) < 0.05 * np.linalg.norm(np.ptp(emb.points, axis=0))


def test_tsne_transform_placement_is_rate_limited(demo):
    calls = []

    class Fake:
        def transform(self, X):
            calls.append(len(X))
            return np.zeros((len(X), 2))

    emb = TSNEEmbedding(demo.embedding.points, demo.clip_codes, tsne_embedding=Fake())
    cursor = LiveCursor(emb, sr=SR, placement="transform", transform_every_s=0.25)
    cursor.push([(256 * i, demo.clip_codes[0]) for i in range(1, 63)])  # one second of frames
    assert len(calls) == 4


def test_resynthesis_target_gets_every_code_in_order(demo):
    class FakeEngine:
        def __init__(self):
            self.codes = []

        def set_code(self, code):
            self.codes.append(np.array(code))

    engine = FakeEngine()
    enc = _encoder(demo, target=engine)
    out = []
    for block in FileInput(demo.sounds[0][:SR], sr=SR, block_size=1000):
        out += enc.feed(block)
    assert len(engine.codes) == len(out) > 50
    np.testing.assert_array_equal(np.stack(engine.codes), np.stack([c for _, c in out]))
    assert enc.level is not None and enc.level > 0  # the latest frame's level, for the synth


# --- windows and clips ------------------------------------------------------------------------------
class _MeanOverTime(torch.nn.Module):
    """A stand-in sequence model: the code of a window is its mean frame."""

    sequence = True

    def __init__(self, input_shape):
        super().__init__()
        self.input_shape = input_shape
        self.w = torch.nn.Parameter(torch.ones(1))

    def latent(self, x):
        return x.mean(dim=1) * self.w


def test_windows_equal_offline_windows():
    rep = StftFrames(sample_rate=SR, n_fft=512, hop_length=128)
    y = _noise(SR, seed=1)
    model = _MeanOverTime((8, 257))
    enc = LiveEncoder(model, rep, latent_shape=(257,), layout="windows", item_hop=8)
    codes = []
    for s in range(0, len(y), 500):
        codes += enc.feed(y[s: s + 500])
    offline = encode_items(model, item_layout.to_items(rep.analyze(y).features, "windows", (8, 257)))
    got = np.stack([c for _, c in codes])
    np.testing.assert_allclose(got, offline[: len(got)], atol=1e-6)
    assert len(got) >= len(offline) - 2


def test_clip_model_code_of_a_whole_clip_equals_offline(one_torch_thread):
    ckpt = paths.DEMO_CHECKPOINTS / "natsiou-notes.safetensors"
    if not ckpt.exists():
        pytest.skip("the demo is not bundled")
    ck = load_checkpoint(ckpt)
    rep = representation_from_dict(ck.representation)
    y = _noise(4 * SR, seed=2)
    enc = LiveEncoder(ck.model, rep, latent_shape=tuple(ck.model.latent_shape), layout="clips", item_hop=SR // 2)
    assert enc.clip_samples == 4 * SR
    codes = []
    for s in range(0, len(y), 4000):
        codes += enc.feed(y[s: s + 4000])
    assert [s for s, _ in codes] == [SR // 2 * (i + 1) for i in range(8)]
    offline = encode_items(ck.model, item_layout.to_items(rep.analyze(y).features, "clips", ck.model.input_shape))
    np.testing.assert_allclose(codes[-1][1], offline.reshape(-1), atol=1e-5)


# --- sources ----------------------------------------------------------------------------------------
def test_file_input_yields_card_sized_blocks(tmp_path):
    y = _noise(1000)
    blocks = list(FileInput(y, sr=SR, block_size=256))
    assert [len(b) for b in blocks] == [256] * 4
    np.testing.assert_array_equal(np.concatenate(blocks)[:1000], y)
    assert not np.concatenate(blocks)[1000:].any()
    path = save_wav(tmp_path / "x.wav", y, sr=22050, subtype="float32")
    src = FileInput(path, block_size=100)
    assert src.sr == 22050 and len(list(src)) == 10
    with pytest.raises(live.ConfigError, match="sample rate"):
        FileInput(y)


class _PortAudioError(Exception):
    pass


def _fake_sounddevice(*, devices: bool):
    class InputStream:
        def __init__(self, *, callback, blocksize, **kw):
            if not devices:
                raise _PortAudioError("Error querying device -1")
            self.callback, self.blocksize = callback, blocksize

        def start(self):
            for i in range(3):
                self.callback(np.full((self.blocksize, 1), i, np.float32), self.blocksize, None, None)

        def stop(self):
            pass

        def close(self):
            pass

    def query_devices(device=None, kind=None):
        if not devices:
            raise ValueError("No input device matching -1")
        return {"name": "fake mic", "default_samplerate": 48000.0}

    return types.SimpleNamespace(PortAudioError=_PortAudioError, InputStream=InputStream, query_devices=query_devices)


def test_sound_card_input_without_a_device_gives_the_reason(monkeypatch):
    monkeypatch.setattr(live, "_sounddevice", lambda: _fake_sounddevice(devices=False))
    with pytest.raises(InputUnavailable, match="no input device"):
        SoundCardInput().open()

    def no_portaudio():
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(live, "_sounddevice", no_portaudio)
    with pytest.raises(InputUnavailable, match="no input device: PortAudio is not installed"):
        SoundCardInput().open()


def test_sound_card_callback_only_queues_blocks(monkeypatch):
    monkeypatch.setattr(live, "_sounddevice", lambda: _fake_sounddevice(devices=True))
    with SoundCardInput(block_size=64, queue_blocks=2) as card:
        assert card.sr == 48000 and card.device_name == "fake mic"
        assert [float(card.read(timeout=0)[0]) for _ in range(2)] == [0.0, 1.0]
        assert card.read(timeout=0) is None and card.overflows == 1  # the third block found the queue full


def test_this_machines_sound_card_opens_or_says_why():
    # asked of PortAudio directly: a machine with a default input device opens it, one without
    # gets the reason in words (never a crash, never a card that "opens" with nothing behind it)
    try:
        import sounddevice as sd

        sd.query_devices(None, kind="input")
        has_input = True
    except Exception:  # noqa: BLE001 - OSError (no PortAudio), PortAudioError or ValueError (no device)
        has_input = False
    if has_input:
        card = SoundCardInput().open()
        try:
            assert card.sr > 0 and card._stream is not None
        finally:
            card.close()
    else:
        with pytest.raises(InputUnavailable, match="^no input device"):
            SoundCardInput().open()
