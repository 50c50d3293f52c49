"""A morph rendered side by side gives the samples of its sounds rendered one by one (the speed is bench/'s).

render_path rebuilds the phases of the continuous morph and of the steps on several threads, each
step handed over as soon as it is decoded: each sound must still be the bits of its own decoding
(the end step is the click on its end point), whatever the thread count.
"""

from __future__ import annotations

import numpy as np
import pytest
from explorer_tiny import FakeState

from explorer.core import paths
from explorer.core.controller import load_model
from models.datasets import open_dataset
from models.inference import engine
from models.inference import layout as item_layout
from models.inference.decode import DecodeContext, decode_codes, fixed_threads, sound_from_features
from models.inference.decode import sounds_from_features
from models.morphing import render, sources
from models.morphing import trajectory as tj
from models.morphing.morph import MorphParams, MorphPath, Waypoint
from models.morphing.sources import grid
from models.representations import pghi as pghi_mod
from models.representations.stft import StftParams

demo = pytest.mark.skipif(not paths.demo_available(), reason="the bundled demo is not built")
FLUTE, BRASS = "flute_acoustic_073-062-127", "brass_acoustic_056-062-127"
N_STEPS = 5


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(paths.DEMO_DATASET)


def setup(dataset, stem: str):
    lm = load_model(next(p for p in paths.demo_checkpoints() if p.stem == stem))
    enc = engine.encode_dataset(lm.model, lm.representation, dataset)
    book = sources.TrajectoryBook(enc, lm.representation, dataset, input_shape=lm.model.input_shape)
    names = [c.name for c in dataset.clips]
    ends = [names.index(FLUTE), names.index(BRASS)]
    wps = [Waypoint.make("point", enc.clip_codes[i], np.zeros(2), label=names[i], clip=i) for i in ends]
    path = MorphPath(waypoints=wps, params=MorphParams(n_steps=N_STEPS, crossfade=0.5))
    return lm, enc, path, [book.point(i) for i in ends]


def stacked_morph(lm, enc, path, trajectories, r) -> np.ndarray:
    """A whole-clip model's continuous morph as it was assembled before: every window stretched to
    the whole morph and stacked (the oracle of the window-by-window assembly)."""
    rep, p = lm.representation, path.params
    n = len(r.morph)
    cum = tj.path_lengths(np.stack([t.mean for t in trajectories]))
    k = int(np.clip(np.ceil(n / (render.WINDOW_SECONDS * rep.sample_rate)) + 1, 2, render.MAX_WINDOWS))
    places = np.linspace(0.0, 1.0, k)
    parts = [tj.interpolate(trajectories[i], trajectories[i + 1], float(f), lambda m: (1, None))
             for i, f in zip(*tj.locate(cum, places))]
    n_src = int(round(float(np.mean([t.n_samples for t in parts]))))
    shape = tuple(rep.feature_shape(n_src))
    natural, m_out = min(rep.stft_params.n_frames(n_src), shape[-1]), rep.stft_params.n_frames(n)
    with fixed_threads():  # as render_path decodes
        items = decode_codes(lm.model, np.stack([t.codes[0] for t in parts]), tuple(enc.latent_shape))
    refs = [float(t.side["ref_db"][0]) for t in parts]
    top = float(rep.config.top_db)
    maps = []
    for it, ref in zip(items, refs):
        f = item_layout.from_items(it[None], item_layout.CLIPS, shape).astype(np.float64)
        f = np.moveaxis(f[..., :natural], -1, 0)
        f = tj.resample_at(f, tj.stretch_positions(natural, m_out, keep=render.KEEP_ENDS))
        maps.append(np.where(f > 0, np.maximum(f + (ref - max(refs)) / top, 0.0), 0.0))
    s = tj.morph_schedule(m_out, n_samples=n, step_samples=r.step_samples, hop_samples=r.hop_samples,
                          n_steps=p.n_steps)
    j, w = render._window_weights(s, places)
    stack, rows = np.stack(maps), np.arange(m_out)
    feats = np.moveaxis((1.0 - w)[:, None] * stack[j, rows] + w[:, None] * stack[j + 1, rows], 0, -1)
    ctx = DecodeContext(n_samples=n, feature_shape=feats.shape, side={"ref_db": np.array([max(refs)], np.float32)})
    return sound_from_features(rep, feats.astype(np.float32), context=ctx, phase=render.ESTIMATED_PHASE).y


@demo
@pytest.mark.parametrize("stem", ["colonel-notes", "natsiou-notes"])
def test_steps_and_morph_side_by_side_are_the_sounds_one_by_one_sample_for_sample(dataset, stem):
    lm, enc, path, trs = setup(dataset, stem)
    kw = dict(latent_shape=enc.latent_shape, layout=enc.layout, trajectories=trs)
    wide = render.render_path(lm.model, lm.representation, path, workers=3, **kw)
    alone = render.render_path(lm.model, lm.representation, path, workers=1, **kw)
    one_by_one = [render.decode_trajectory(lm.model, lm.representation, t, latent_shape=enc.latent_shape).y
                  for t in wide.trajectories]
    assert len(wide.steps) == N_STEPS
    for a, b, c in zip(wide.steps, alone.steps, one_by_one):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(wide.morph, alone.morph)
    assert np.abs(wide.steps[0]).max() > 1e-3 and not np.array_equal(wide.steps[0], wide.steps[-1])
    assert "estimated phase" in wide.made
    if item_layout.has_time(enc.layout):
        counts = grid(lm.representation, enc.layout, lm.model.input_shape)
        n = len(wide.morph)
        traj = tj.continuous(trs, tj.path_lengths(np.stack([t.mean for t in trs])), counts, n_samples=n,
                             schedule=lambda m: tj.morph_schedule(m, n_samples=n, step_samples=wide.step_samples,
                                                                  hop_samples=wide.hop_samples, n_steps=N_STEPS),
                             keep=render.KEEP_ENDS)
        ref = render.decode_trajectory(lm.model, lm.representation, traj, latent_shape=enc.latent_shape).y
    else:
        ref = stacked_morph(lm, enc, path, trs, wide)
    assert np.array_equal(wide.morph, ref)


@demo
def test_a_render_stopped_while_its_phases_are_rebuilt_returns_none(dataset):
    lm, enc, path, trs = setup(dataset, "colonel-notes")

    class StopAfterDecoding(FakeState):
        stop = False

        def report(self, progress, message=""):
            super().report(progress, message)
            self.stop = self.stop or message.startswith("rebuilding")

        def should_stop(self):
            return self.stop

    state = StopAfterDecoding()
    assert render.render_path(lm.model, lm.representation, path, latent_shape=enc.latent_shape, layout=enc.layout,
                              trajectories=trs, state=state, workers=1) is None
    assert state.stop


def test_sounds_from_features_refuses_before_working():
    from models.errors import ConfigError
    from models.representations.stft_frames import StftFrames, StftFramesConfig

    rep = StftFrames(StftFramesConfig(sample_rate=8000, n_fft=256, hop_length=64))
    ctx = DecodeContext(n_samples=1024, feature_shape=(17, 129))
    feats = np.random.default_rng(0).random((17, 129)).astype(np.float32)
    with pytest.raises(ConfigError):
        sounds_from_features(rep, [(feats, ctx)], phase="original")
    with pytest.raises(ConfigError):
        sounds_from_features(rep, [(feats, ctx)], phase="pghi+gla", workers=0)
    one = sounds_from_features(rep, [(feats, ctx)] * 3, phase="pghi+gla", workers=2)
    assert len(one) == 3 and all(np.array_equal(s.y, one[0].y) for s in one)
    assert np.array_equal(one[0].y, sound_from_features(rep, feats, context=ctx, phase="pghi+gla").y)


def test_sounds_from_features_takes_an_iterator_item_by_item_in_its_order():
    """Items made one by one (a morph's forward passes) are each synthesised as soon as they exist:
    the same sounds as from a list, in the iterator's order, and a stop between two items ends it."""
    from models.representations.stft_frames import StftFrames, StftFramesConfig

    rep = StftFrames(StftFramesConfig(sample_rate=8000, n_fft=256, hop_length=64))
    rng = np.random.default_rng(1)
    items = [(rng.random((17 + 4 * k, 129)).astype(np.float32), DecodeContext(n_samples=1024 + 256 * k,
                                                                              feature_shape=(17 + 4 * k, 129)))
             for k in range(4)]
    listed = sounds_from_features(rep, items, phase="pghi+gla", workers=2)
    made = []

    def one_by_one():
        for item in items:
            made.append(len(made))
            yield item

    lazy = sounds_from_features(rep, one_by_one(), phase="pghi+gla", workers=2)
    assert made == [0, 1, 2, 3]
    assert [len(s.y) for s in lazy] == [1024 + 256 * k for k in range(4)]
    assert all(np.array_equal(a.y, b.y) for a, b in zip(lazy, listed))

    def stop_after_two():
        return len(made) >= 2

    made.clear()
    assert sounds_from_features(rep, one_by_one(), phase="pghi+gla", workers=1, should_stop=stop_after_two) is None
    assert len(made) == 2  # nothing made after the stop


def test_overlap_add_equals_adding_frame_by_frame():
    from models.representations.phase_stream import overlap_add

    rng = np.random.default_rng(2)
    for n, hop, w in [(1024, 250, 40), (1024, 256, 7), (1024, 256, 1), (690, 250, 3), (8, 10, 5)]:
        frames = rng.standard_normal((2, w, n)).astype(np.float32)
        want = np.zeros((2, n + hop * (w - 1)), np.float32)
        for j in range(w):
            want[:, j * hop: j * hop + n] += frames[:, j]
        got = overlap_add(frames, hop)
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_pghi_sorting_only_what_it_integrates_gives_the_same_phase():
    """The partial magnitude order: the phase of the full argsort, bit for bit (ties and zeros included)."""
    p = StftParams(n_fft=256, hop_length=64, win_length=None, window="hann", center=True)
    rng = np.random.default_rng(3)
    t = np.arange(256 * 40) / 8000
    tone = np.abs(np.fft.rfft(np.sin(2 * np.pi * 440 * t)[:256 * 40].reshape(40, 256) * np.hanning(256), axis=1)).T
    mags = [tone, np.where(rng.random((129, 60)) < 0.6, 0.0, rng.exponential(size=(129, 60))),
            np.round(rng.random((129, 30)) * 3), 10.0 ** rng.uniform(-9, 0, size=(129, 50))]
    for mag in mags:
        mag = np.ascontiguousarray(mag, dtype=np.float64)
        full = np.empty(mag.shape, np.float32)
        start = np.random.default_rng(0).uniform(0.0, 2 * np.pi, size=mag.shape)
        tols = np.array([1e-1, 1e-5])
        pghi_mod._pghi_one(mag, 64.0, 256.0, p.gamma(), tols, np.argsort(-mag.ravel()), start.copy(), 0, full)
        assert np.array_equal(pghi_mod.pghi(mag, params=p, tol=(1e-1, 1e-5)), full)
        flat = mag.ravel()
        order = pghi_mod.magnitude_order(flat, 1e-5)
        strong = int(np.sum(flat > flat.max() * 1e-5))
        assert sorted(order.tolist()) == list(range(flat.size))  # a permutation
        assert np.array_equal(flat[order[:strong]], np.sort(flat)[::-1][:strong])  # the strong ones sorted first


@pytest.mark.parametrize("params", [StftParams(n_fft=2048, hop_length=512),
                                    StftParams(n_fft=1024, hop_length=256, win_length=690, window="blackman"),
                                    StftParams(n_fft=256, hop_length=64, center=False)])
def test_griffin_lims_inverse_stft_is_torchs_bit_for_bit(params):
    """The block overlap-add with a kept window envelope gives torch.istft's samples (and its error)."""
    import torch

    from models.representations.griffinlim import TorchStft

    ts = TorchStft(params)
    g = torch.Generator().manual_seed(0)
    with fixed_threads():
        for batch, n_frames in ((1, 1), (1, 7), (3, 126), (2, 401)):
            S = torch.randn(batch, params.n_bins, n_frames, dtype=torch.complex64, generator=g)
            natural = params.natural_length(n_frames)
            for length in (natural, natural + 300, max(1, natural - 77)):
                try:
                    want = torch.istft(S, n_fft=params.n_fft, hop_length=params.hop_length, win_length=params.n_fft,
                                       window=ts.window, center=params.center, length=length)
                except RuntimeError:
                    with pytest.raises(RuntimeError):
                        ts.istft(S, length)
                    continue
                got = ts.istft(S, length)
                assert got.shape == want.shape and torch.equal(got, want)
