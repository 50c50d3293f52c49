"""explorer.core.controller and models.inference.engine without Qt: encode, project, pick, decode, sessions."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_tiny import N_SAMPLES, SR, FakeState, FrameRep, make_dataset_folder, tiny_loaded_model

from explorer.core.controller import KMEANS, Controller, check_fit
from explorer.core.session import SCHEMA_VERSION, load_session, migrate, save_session, session_from_controller
from models.inference import engine
from models.datasets import open_dataset
from models.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(make_dataset_folder(tmp_path_factory.mktemp("ds"), per_class=6))


@pytest.fixture
def ctl(dataset):
    c = Controller()
    c.set_dataset(dataset)
    c.add_model(tiny_loaded_model())
    enc = c.encode_task()(FakeState())
    c.set_encoding(c.current_key, enc)
    c.set_embedding(c.project_task("pca")(FakeState()))
    return c


def test_encode_dataset_frames_layout(ctl, dataset):
    enc = ctl.encoding
    assert enc.layout == "frames" and enc.latent_shape == (12,)
    assert enc.clip_codes.shape == (24, 12) and not enc.failed
    assert enc.frame_codes.shape == (24 * 32, 12)
    # the clip code is the mean of its frame codes
    assert np.allclose(enc.clip_codes[3], enc.frame_codes[enc.frame_clip == 3].mean(0))


def test_encode_reports_and_stops(dataset):
    lm = tiny_loaded_model()
    st = FakeState()
    engine.encode_dataset(lm.model, lm.representation, dataset, state=st)
    assert st.reports[-1][0] == 1.0 and len(st.reports) == len(dataset.clips)

    class Stop(FakeState):
        def should_stop(self):
            return len(self.reports) >= 3

    assert engine.encode_dataset(lm.model, lm.representation, dataset, state=Stop()) is None


def test_items_round_trip_for_whole_clip_models():
    f = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)  # (n_mels, n_frames)
    items = engine.to_items(f, (1, 10, 9))
    assert items.shape == (1, 1, 10, 9) and np.all(items[0, 0, :, 7:] == 0)
    assert np.array_equal(engine.from_items(items, f.shape), f)
    assert engine.to_items(f, (10, 5)).shape == (1, 10, 5)
    with pytest.raises(Exception, match="differ on more than the time axis"):
        engine.to_items(f, (8, 9))


def test_hit_test_in_pixels_and_hidden_classes(ctl):
    p = ctl.points[5]
    assert ctl.hit_test(*p, pixel_size=(1e-3, 1e-3)) == 5
    # 10 px away with 1e-3 units per pixel: outside a 6 px radius
    assert ctl.hit_test(p[0] + 0.01, p[1], pixel_size=(1e-3, 1e-3)) in (None, *range(len(ctl.points)))
    far = ctl.points.max(0) + 100
    assert ctl.hit_test(*far, pixel_size=(1e-3, 1e-3)) is None
    label = ctl.point_labels()[5]
    ctl.toggle_class(label)
    assert ctl.hit_test(*p, pixel_size=(1e-3, 1e-3)) != 5
    assert not ctl.visible_mask()[5]
    ctl.toggle_class(label)
    assert ctl.visible_mask().all()


def test_decode_point_has_clip_length_and_sound(ctl):
    ctl.select_point(2)
    d = ctl.decode_task()(FakeState())
    assert d.original is not None and len(d.decoded.y) == N_SAMPLES and d.decoded.sr == SR
    assert np.sqrt(np.mean(d.decoded.y**2)) > 0.05 and not d.decoded.estimated
    # a linear AE on sines: the decoding correlates with the original
    assert np.corrcoef(d.decoded.y, d.original.y)[0, 1] > 0.5


def test_decode_position_is_estimate_and_gains_change_it(ctl):
    x, y = ctl.points[:2].mean(0)
    ctl.select_position(x, y)
    d = ctl.decode_task()(FakeState())
    assert d.original is None and d.decoded.estimated and len(d.decoded.y) == N_SAMPLES
    assert np.abs(d.decoded.y).max() > 0.01
    ctl.set_gains([0.0, 1, 1, 1, 1])
    g = ctl.gains_vector()
    assert g.shape == (12,) and np.all(g[:2] == 0) and np.all(g[3:] == 1)
    d2 = ctl.decode_task()(FakeState())
    assert not np.allclose(d.decoded.y, d2.decoded.y)


def test_frame_mode_and_kmeans(ctl):
    ctl.point_mode = "frame"
    codes, clips, frames = ctl.map_codes()
    assert len(codes) == 24 * 32 and frames.max() == 31
    ctl.set_embedding(ctl.project_task("pca")(FakeState()))
    ctl.select_point(40)
    d = ctl.decode_task()(FakeState())
    assert "frame 8 held" in d.decoded.title and len(d.decoded.y) == N_SAMPLES
    ctl.point_mode = "clip"
    ctl.set_embedding(ctl.project_task("pca")(FakeState()))
    ctl.set_colour_field(KMEANS)
    ctl.cluster_labels = ctl.kmeans_task()(FakeState())
    assert set(ctl.point_labels()) <= {f"cluster {k}" for k in range(1, 9)}
    # four well-separated classes of sounds: clusters never mix the sines of two classes much
    assert len(ctl.classes()) >= 4


def test_tsne_task_reports_partials(ctl):
    ctl.tsne_params = {"n_iter": 20, "early_exaggeration_iter": 20, "callbacks_every_iters": 10}
    st = FakeState()
    emb = ctl.project_task("tsne")(st)
    assert emb.method == "tsne" and len(st.partials) == 4 and st.partials[0].shape == (24, 2)


def test_model_that_does_not_fit_is_refused(dataset):
    lm = tiny_loaded_model()
    lm.representation.sample_rate = 16000
    with pytest.raises(CheckpointError, match="16000 Hz"):
        check_fit(lm, dataset)


def test_session_round_trip_and_versions(ctl, tmp_path):
    ctl.select_point(4)
    ctl.hidden = {"noise"}
    s = session_from_controller(ctl)
    save_session(tmp_path / "s.json", s)
    back = load_session(tmp_path / "s.json")
    assert back == s and back["schema_version"] == SCHEMA_VERSION
    assert back["selection"] == {"kind": "point", "clip": int(ctl.point_clip[4]), "frame": -1}
    assert np.allclose(back["layout"], ctl.points, atol=1e-5)
    with pytest.raises(ConfigError, match="newer"):
        migrate({"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(ConfigError):
        migrate({"dataset": "x"})


def test_band_gains_and_centres():
    g = engine.band_gains(10, [0.2, 0.4, 0.6, 0.8], [0, 1, 2, 3, 4])
    assert g.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    c = engine.class_centres(np.array([[0.0], [2.0], [10.0], [np.nan]]), ["a", "a", "b", "b"])
    assert c["a"][0] == 1.0 and c["b"][0] == 10.0


@pytest.mark.parametrize("preset", ["colonel-hybrid", "roche-lstm-ae", "natsiou-baseline"])
def test_real_preset_through_a_checkpoint(preset, dataset, tmp_path):
    """A real model at tiny size, saved and loaded as a checkpoint, encodes and decodes."""
    from explorer.core.controller import load_model
    from models.checkpoints.checkpoint import save_checkpoint
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset(preset)
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    save_checkpoint(tmp_path / "m.safetensors", model, representation=rep.to_dict())
    lm = load_model(tmp_path / "m.safetensors")
    c = Controller(cache=__import__("models.datasets.feature_cache", fromlist=["FeatureCache"]).FeatureCache(tmp_path))
    c.set_dataset(dataset)
    c.add_model(lm)
    c.set_encoding(c.current_key, c.encode_task()(FakeState()))
    assert c.encoding.layout == {"colonel-hybrid": "frames", "roche-lstm-ae": "chunks"}.get(preset, "whole")
    c.set_embedding(c.project_task("pca")(FakeState()))
    c.select_point(0)
    d = c.decode_task()(FakeState())
    assert len(d.decoded.y) == len(d.original.y) == N_SAMPLES and np.isfinite(d.decoded.y).all()
    c.select_position(*c.points[:2].mean(0))
    est = c.decode_task()(FakeState())
    assert est.decoded.estimated and len(est.decoded.y) == N_SAMPLES


# --- the sound panel's class metric, label placement, field names (UI polish) ----------------------
def test_metrics_task_scores_mfcc_dtw_deviation_in_its_class(ctl, dataset):
    from explorer.core.metrics_task import DTW_PREFIX, class_cache, metrics_task
    from models.metrics.mfcc_dtw import ClassDTW, mfcc

    ctl.select_point(2)
    d = ctl.decode_task()(FakeState())
    state = FakeState()
    out = metrics_task(d, ctl)(state)
    clip = int(ctl.point_clip[2])
    label = str(dataset.labels("label")[clip])
    key = f"{DTW_PREFIX} vs {label} (6 sounds)"
    assert key in out and np.isfinite(out[key])
    # the quick metrics went out first, without the class deviation
    assert state.partials and "RMSE (spectrogram)" in state.partials[0] and key not in state.partials[0]
    assert "spectral convergence" in out and 0.0 <= out["spectral convergence"] < 2.0
    # by hand: Lionello's deviation with the decoded sound in the centre's place
    members = [i for i, v in enumerate(dataset.labels("label")) if str(v) == label]
    by_hand = ClassDTW([mfcc(dataset.load(i, sr=SR), sr=SR) for i in members])
    expected = by_hand.deviation(members.index(clip), mfcc(d.decoded.y, sr=SR))
    assert out[key] == pytest.approx(expected, rel=1e-6)
    # the class is computed once: another member of the same class reuses it
    builds = class_cache(ctl).builds
    other = next(i for i, c in enumerate(ctl.point_clip) if int(c) in members and int(c) != clip)
    ctl.select_point(other)
    out2 = metrics_task(ctl.decode_task()(FakeState()), ctl)(FakeState())
    assert key in out2 and class_cache(ctl).builds == builds


def test_metrics_task_scores_an_estimate_against_the_nearest_class(ctl, dataset):
    from explorer.core.metrics_task import DTW_PREFIX, metrics_task

    centres = ctl.class_centres_2d()
    label, xy = next(iter(centres.items()))
    ctl.select_position(*xy)
    d = ctl.decode_task()(FakeState())
    out = metrics_task(d, ctl)(FakeState())
    key = f"{DTW_PREFIX} vs nearest class {label} (6 sounds)"
    assert list(out) == [key] and np.isfinite(out[key])


def test_centre_labels_do_not_overlap():
    from explorer.map.label_layout import place_labels

    # two centres on one spot: the bigger class keeps "above", the other moves
    sides = place_labels(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[40.0, 14.0]] * 2), np.array([5, 9]))
    assert sides[1] == "above" and sides[0] in ("below", "right", "left")
    # a crowd on one spot: four sides, the rest hidden; far-apart labels all stay above
    crowd = place_labels(np.zeros((6, 2)), np.tile([20.0, 10.0], (6, 1)), np.arange(6))
    assert sorted(s for s in crowd if s) == ["above", "below", "left", "right"] and crowd.count(None) == 2
    apart = place_labels(np.array([[0.0, 0.0], [500.0, 0.0]]), np.full((2, 2), 20.0), np.ones(2))
    assert apart == ["above", "above"]


def test_field_display_names():
    from explorer.core.field_names import field_display_name

    assert field_display_name("instrument_family_str") == "instrument family"
    assert field_display_name("instrument_source_str") == "instrument source"
    assert field_display_name("digit") == "digit"
    assert field_display_name("room_size_str") == "room size"
