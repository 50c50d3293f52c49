"""Encoding that reports the clips done so far, and the map that fills in while it runs."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import torch
from explorer_tiny import FakeState, TinyAE, TinyAEConfig, make_dataset_folder, tiny_loaded_model
from PySide6.QtCore import QSettings

from explorer.core.controller import Controller
from explorer.core.progressive import FillingMap
from explorer.sound.audio_out import RecordingSink
from explorer.window.main_window import MainWindow
from models.datasets import open_dataset
from models.datasets.feature_cache import FeatureCache
from models.inference.code_cache import CODES_DIR
from models.inference.encode import CachedFeatures, encode_dataset

TIMEOUT = 20000
N_CLIPS = 100  # explorer_tiny: 4 classes x 25, 32 frames a clip


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=25)


@pytest.fixture(scope="module")
def dataset(dataset_dir):
    return open_dataset(dataset_dir)


def same(a, b) -> None:
    for name in ("clip_codes", "frame_codes", "frame_clip", "frame_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.latent_shape == b.latent_shape and a.layout == b.layout and a.failed == b.failed


def test_partials_arrive_in_order_and_the_final_equals_one_shot(dataset, one_torch_thread):
    lm = tiny_loaded_model()
    one_shot = encode_dataset(lm.model, lm.representation, dataset, batch_size=64)
    st = FakeState()
    final = encode_dataset(lm.model, lm.representation, dataset, state=st, batch_size=64)
    same(final, one_shot)
    assert len(st.partials) >= 10
    done = [int(p.ok.sum()) for p in st.partials]
    assert done == sorted(set(done)) and 0 < done[0] < N_CLIPS and done[-1] <= N_CLIPS  # growing, in order
    for p in st.partials:
        k = int(p.ok.sum())
        assert p.ok[:k].all() and not p.ok[k:].any()  # the first k clips, in index order
        # what a partial says of its clips is what the final encoding says of them
        np.testing.assert_array_equal(p.clip_codes[:k], final.clip_codes[:k])
        np.testing.assert_array_equal(p.frame_codes, final.frame_codes[: len(p.frame_codes)])
        assert set(np.unique(p.frame_clip)) == set(range(k))


def test_cache_path_streams_partials_and_matches_the_plain_encoding(dataset, tmp_path, one_torch_thread):
    lm = tiny_loaded_model()
    plain = encode_dataset(lm.model, lm.representation, dataset)
    c = Controller(cache=FeatureCache(tmp_path / "fc"))
    c.set_dataset(dataset)
    c.add_model(lm)
    st = FakeState()
    first = c.encode_task()(st)  # the cache is built, clips encoded as they are analysed
    assert st.partials and int(st.partials[0].ok.sum()) < N_CLIPS
    fs = FeatureCache(tmp_path / "fc").lookup(dataset, lm.representation)
    shutil.rmtree(fs.path / CODES_DIR)  # the features alone: encoded from them, partials again
    st2 = FakeState()
    second = c.encode_task()(st2)  # read from the cache
    assert st2.partials
    same(first, plain)
    same(second, plain)
    feats = CachedFeatures(fs, N_CLIPS, block_bytes=3000)  # a few clips a read
    for i in (0, 1, 57, 99, 3):
        np.testing.assert_array_equal(feats[i], fs[int(np.flatnonzero(fs.indices == i)[0])])


def test_a_model_that_encoded_the_dataset_before_reads_its_codes_back(dataset, tmp_path, one_torch_thread,
                                                                       monkeypatch):
    lm = tiny_loaded_model()
    plain = encode_dataset(lm.model, lm.representation, dataset)
    cache = FeatureCache(tmp_path / "fc")
    c = Controller(cache=cache)
    c.set_dataset(dataset)
    c.add_model(lm)
    same(c.encode_task()(FakeState()), plain)  # analysed, encoded, codes stored
    fs = cache.lookup(dataset, lm.representation)
    assert [p.suffix for p in (fs.path / CODES_DIR).iterdir()] == [".npz"]

    again = tiny_loaded_model("another-key")  # the same weights under another name: the same codes
    monkeypatch.setattr(type(again.model), "encode", lambda *a, **k: pytest.fail("a forward pass was run"))
    c2 = Controller(cache=cache)
    c2.set_dataset(dataset)
    c2.add_model(again)
    same(c2.encode_task()(FakeState()), plain)
    monkeypatch.undo()

    changed = tiny_loaded_model("retrained")
    with torch.no_grad():
        next(changed.model.parameters()).add_(0.5)  # new weights: never the old codes
    c3 = Controller(cache=cache)
    c3.set_dataset(dataset)
    c3.add_model(changed)
    mine = c3.encode_task()(FakeState())
    same(mine, encode_dataset(changed.model, changed.representation, dataset))
    assert not np.allclose(mine.frame_codes, plain.frame_codes)
    assert len(list((fs.path / CODES_DIR).iterdir())) == 2


def test_stored_codes_that_do_not_fit_are_ignored_and_a_failed_write_costs_nothing(dataset, tmp_path, one_torch_thread):
    from models.inference.code_cache import load_codes, model_fingerprint, save_codes

    lm = tiny_loaded_model()
    cache = FeatureCache(tmp_path / "fc")
    c = Controller(cache=cache)
    c.set_dataset(dataset)
    c.add_model(lm)
    first = c.encode_task()(FakeState())
    fs = cache.lookup(dataset, lm.representation)
    stored = fs.path / CODES_DIR / f"{model_fingerprint(lm.model)}.npz"
    assert load_codes(fs, model_fingerprint(lm.model), N_CLIPS - 1) is None  # another dataset's length
    stored.write_bytes(b"PK\x03\x04 not a zip")  # damaged
    assert load_codes(fs, model_fingerprint(lm.model), N_CLIPS) is None
    same(c.encode_task()(FakeState()), first)  # encoded again, and stored again
    assert load_codes(fs, model_fingerprint(lm.model), N_CLIPS) is not None
    stored.unlink()
    (fs.path / CODES_DIR).rmdir()
    (fs.path / CODES_DIR).write_text("a file where the folder goes")  # nothing can be written there
    assert save_codes(fs, model_fingerprint(lm.model), first) is False
    same(c.encode_task()(FakeState()), first)


def test_cancelled_build_returns_none_and_leaves_no_entry(dataset, tmp_path):
    lm = tiny_loaded_model()
    cache = FeatureCache(tmp_path / "fc")
    c = Controller(cache=cache)
    c.set_dataset(dataset)
    c.add_model(lm)
    assert c.encode_task()(FakeState(stop_after=1)) is None  # stopped after the first partial (64 clips)
    assert cache.lookup(dataset, lm.representation) is None


def test_filling_map_keeps_shown_points_in_place():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((400, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    clips, frames = np.arange(400), np.full(400, -1)
    fm = FillingMap()
    shown = fm.place("m", codes[:100], clips[:100], frames[:100])
    moved = []
    for n in (150, 250, 400):
        pts = fm.place("m", codes[:n], clips[:n], frames[:n])
        # the points already shown move little against the map's size (aligned, not refitted blind)
        moved.append(np.linalg.norm(pts[: len(shown)] - shown, axis=1).mean() / pts.std())
        shown = pts
    assert max(moved) < 0.2
    fm.complete = True
    final = fm.final_layout("m", codes, clips, frames)
    assert final is not None and final.shape == (400, 2) and fm.final_layout("m", codes, clips, frames) is None


# --- the window ---------------------------------------------------------------------------------------


class GatedAE(TinyAE):
    """The tiny model, which waits at its first forward pass past ``pass_items`` until released."""

    def __init__(self, pass_items: int) -> None:
        super().__init__(TinyAEConfig())
        self.gate, self.pass_items, self.seen = threading.Event(), pass_items, 0

    def encode(self, x):
        if self.seen >= self.pass_items:
            self.gate.wait(20.0)
        self.seen += len(x)
        return super().encode(x)


def gated_model(key: str = "gated"):
    lm = tiny_loaded_model(key)
    lm.model = GatedAE(pass_items=2048)  # the first batch (64 clips) passes, the second waits
    return lm


@pytest.fixture
def window(qtbot, tmp_path, dataset_dir):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(audio=RecordingSink(), audio_message="Sound off", settings=settings, model_loader=tiny_loaded_model)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.open_dataset(dataset_dir)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    yield w
    for lm in w.controller.models.values():
        if isinstance(lm.model, GatedAE):
            lm.model.gate.set()
    w.runner.cancel_all()
    w.runner.wait(5000)


def test_window_shows_points_while_encoding_and_ends_with_the_full_map(qtbot, window, one_torch_thread):
    w, c = window, window.controller
    lm = gated_model()
    w.add_model(lm)
    qtbot.waitUntil(lambda: len(c.points) == 64, timeout=TIMEOUT)
    assert w.runner.is_running("encode") and c.embedding is None  # points before the encoding ended
    assert len(w.map_view._hits) == 64 and w.progress.isVisible()
    partial = c.points.copy()
    lm.model.gate.set()
    qtbot.waitUntil(lambda: c.embedding is not None and len(c.points) == N_CLIPS
                    and not w.runner.is_running("project"), timeout=TIMEOUT)
    assert c.embedding.method == "pca" and not c.filling.filling
    assert np.isfinite(c.points).all() and len(w.map_view._hits) == N_CLIPS
    # the final map is the PCA of all the codes (the same picture as any later PCA), the filled
    # one its first 64 points up to a rotation
    from models.mapping.projection import PCAProjector
    np.testing.assert_allclose(c.points, PCAProjector().fit(c.map_codes()[0]).points, atol=1e-9)
    assert partial.shape == (64, 2) and np.isfinite(partial).all()
    plain = encode_dataset(TinyAE(TinyAEConfig()), lm.representation, c.dataset)
    np.testing.assert_allclose(c.encoding.clip_codes, plain.clip_codes, rtol=1e-6, atol=1e-9)


def test_cancel_mid_way_leaves_the_previous_state(qtbot, window, one_torch_thread):
    w, c = window, window.controller
    w.add_model(tiny_loaded_model("first"))
    qtbot.waitUntil(lambda: c.embedding is not None and len(c.points) == N_CLIPS
                    and not w.runner.running(), timeout=TIMEOUT)
    first_enc = c.encodings["first"]
    lm = gated_model()
    w.add_model(lm)
    qtbot.waitUntil(lambda: len(c.points) == 64, timeout=TIMEOUT)
    assert c.encodings["gated"] is not None and w.runner.is_running("encode")
    w.cancel_long_tasks()  # the status line's Cancel
    assert "gated" not in c.encodings and c.encoding is None
    assert c.embedding is None and len(c.points) == 0 and c.selection is None and not c.filling.filling
    assert c.current_key == "gated" and set(c.models) == {"first", "gated"}
    assert c.encodings["first"] is first_enc
    lm.model.gate.set()  # the cancelled worker finishes; what it delivers is dropped
    assert w.runner.wait(5000)
    qtbot.wait(50)
    assert "gated" not in c.encodings and len(c.points) == 0
    w.select_model("first")  # the other model's map comes back whole
    qtbot.waitUntil(lambda: c.embedding is not None and len(c.points) == N_CLIPS, timeout=TIMEOUT)
    lm.model.seen = 0  # and the cancelled one encodes again from the start
    w.select_model("gated")
    lm.model.gate.set()
    qtbot.waitUntil(lambda: c.embedding is not None and len(c.points) == N_CLIPS
                    and not w.runner.running(), timeout=TIMEOUT)
    assert c.encodings["gated"].ok.all()
