"""explorer.core.controller and models.inference.engine without Qt: encode, project, pick, decode, sessions."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_tiny import N_SAMPLES, SR, FakeState, make_dataset_folder, tiny_loaded_model

from explorer.core.controller import KMEANS, Controller, check_fit
from explorer.core.session import SCHEMA_VERSION, load_session, migrate, save_session, session_from_controller
from models.inference import engine
from models.datasets import open_dataset
from models.errors import CheckpointError, ConfigError, DatasetError


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


def test_hit_test_in_pixels_and_hidden_classes(ctl):
    # points 10 units apart on the x axis; one screen pixel is 0.1 units along x, 0.01 along y
    n = len(ctl.points)
    ctl.set_partial_points(np.c_[10.0 * np.arange(n), np.zeros(n)])
    px = (0.1, 0.01)
    assert ctl.hit_test(50.0, 0.0, pixel_size=px, radius_px=6) == 5
    assert ctl.hit_test(50.5, 0.0, pixel_size=px, radius_px=6) == 5  # 5 px right: inside the radius
    assert ctl.hit_test(50.7, 0.0, pixel_size=px, radius_px=6) is None  # 7 px: outside
    assert ctl.hit_test(50.0, 0.05, pixel_size=px, radius_px=6) == 5  # 5 px up (y has its own scale)
    assert ctl.hit_test(50.0, 0.07, pixel_size=px, radius_px=6) is None
    assert ctl.hit_test(54.0, 0.0, pixel_size=(1.0, 1.0), radius_px=6) == 5  # the nearer of two in reach
    assert ctl.hit_test(56.0, 0.0, pixel_size=(1.0, 1.0), radius_px=6) == 6
    label = ctl.point_labels()[5]
    ctl.toggle_class(label)
    assert not ctl.visible_mask()[5]
    assert ctl.hit_test(50.0, 0.0, pixel_size=px, radius_px=6) is None  # hidden points cannot be hit
    ctl.toggle_class(label)
    assert ctl.visible_mask().all() and ctl.hit_test(50.0, 0.0, pixel_size=px, radius_px=6) == 5


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
    assert ctl.set_point_mode("frame")
    codes, clips, frames = ctl.map_codes()
    assert len(codes) == 24 * 32 and frames.max() == 31
    ctl.set_embedding(ctl.project_task("pca")(FakeState()))
    ctl.select_point(40)
    d = ctl.decode_task()(FakeState())
    assert "frame 8 held" in d.decoded.title and len(d.decoded.y) == N_SAMPLES
    assert ctl.set_point_mode("clip")
    ctl.set_embedding(ctl.project_task("pca")(FakeState()))
    ctl.set_colour_field(KMEANS)
    ctl.set_cluster_labels(ctl.kmeans_task()(FakeState()))
    assert set(ctl.point_labels()) <= {f"cluster {k}" for k in range(1, 9)}
    # four well-separated classes of sounds: clusters never mix the sines of two classes much
    assert len(ctl.classes()) >= 4


def test_tsne_task_reports_partials(ctl):
    ctl.tsne_params = {"n_iter": 20, "early_exaggeration_iter": 20, "callbacks_every_iters": 10}
    st = FakeState()
    emb = ctl.project_task("tsne")(st)
    # the starting layout, then one every 10 of the 40 iterations
    assert emb.method == "tsne" and len(st.partials) == 1 + 4 and st.partials[0].shape == (24, 2)


def test_model_at_another_rate_fits_and_one_that_cannot_is_refused(dataset):
    lm = tiny_loaded_model()
    lm.representation.sample_rate = 16000  # the clips are resampled to the model's rate
    assert check_fit(lm, dataset).notes == ("clips resampled from 8000 Hz to the model's 16000 Hz",)
    from explorer_tiny import TinyAE, TinyAEConfig

    lm.model = TinyAE(TinyAEConfig(input_shape=(32,)))  # frames of 32 values; the features have 64
    with pytest.raises(CheckpointError, match="cannot feed a model taking frames of shape"):
        check_fit(lm, dataset)


def test_session_round_trip_and_versions(ctl, tmp_path):
    ctl.select_point(4)
    ctl.restore_view(hidden={"noise"})
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
    assert c.encoding.layout == {"colonel-hybrid": "frames", "roche-lstm-ae": "windows"}.get(preset, "clips")
    c.set_embedding(c.project_task("pca")(FakeState()))
    c.select_point(0)
    d = c.decode_task()(FakeState())
    assert len(d.decoded.y) == len(d.original.y) == N_SAMPLES and np.isfinite(d.decoded.y).all()
    c.select_position(*c.points[:2].mean(0))
    est = c.decode_task()(FakeState())
    assert est.decoded.estimated and len(est.decoded.y) == N_SAMPLES


# --- the sound panel's class metric, label placement, field names --------------------------------
def test_metrics_task_scores_mfcc_dtw_deviation_in_its_class(ctl, dataset):
    from explorer.core.metrics_task import DTW_PREFIX, metrics_task
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
    builds = ctl.class_dtw.builds
    other = next(i for i, c in enumerate(ctl.point_clip) if int(c) in members and int(c) != clip)
    ctl.select_point(other)
    out2 = metrics_task(ctl.decode_task()(FakeState()), ctl)(FakeState())
    assert key in out2 and ctl.class_dtw.builds == builds


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


# --- the controller owns its state and announces every change ------------------------------------------
SIGNALS = ("dataset_changed", "models_changed", "model_changed", "encoding_changed", "mapping_changed",
           "embedding_changed", "colours_changed", "hidden_classes_changed", "selection_changed", "gains_changed",
           "decoded_changed", "metrics_changed", "paths_changed")


def recorder(c: Controller) -> list[str]:
    heard: list[str] = []
    for name in SIGNALS:
        getattr(c, name).connect(lambda *args, name=name: heard.append(name))
    return heard


def test_each_change_is_announced_once_by_the_controller(ctl, dataset):
    heard = recorder(ctl)

    def after(action) -> list[str]:  # noqa: ANN001
        heard.clear()
        action()
        return list(heard)

    assert after(lambda: ctl.select_point(3)) == ["selection_changed"]
    assert after(lambda: ctl.toggle_class("low")) == ["hidden_classes_changed"] and ctl.hidden == {"low"}
    assert after(lambda: ctl.set_gains([1.0] * 5)) == []  # nothing changed, nothing said
    assert after(lambda: ctl.set_gains([2.0, 1, 1, 1, 1])) == ["gains_changed"]
    assert after(lambda: ctl.set_method("tsne")) == ["mapping_changed"]
    assert after(lambda: ctl.set_method("tsne")) == []
    assert after(lambda: ctl.set_colour_field(KMEANS)) == ["colours_changed"] and ctl.hidden == set()
    assert after(lambda: ctl.set_cluster_labels(np.zeros(len(ctl.points), int))) == ["colours_changed"]
    d = ctl.decode_task()(FakeState())
    assert after(lambda: ctl.set_decoded(d)) == ["decoded_changed"]
    assert after(lambda: ctl.set_metrics({"RMSE (spectrogram)": 0.5})) == ["metrics_changed"]
    assert ctl.decoded.metrics == {"RMSE (spectrogram)": 0.5}
    assert after(lambda: ctl.set_partial_points(ctl.points + 1.0)) == ["embedding_changed"]
    assert after(lambda: ctl.set_paths([])) == ["paths_changed"]
    # a hot reload swaps model, encoding and map at once, keeps the selection, says all of it
    lm, enc, emb = ctl.current, ctl.encoding, ctl.embedding
    said = after(lambda: ctl.replace_model(lm, enc, emb))
    assert set(said) == {"models_changed", "model_changed", "encoding_changed", "mapping_changed",
                         "embedding_changed", "selection_changed", "decoded_changed"}
    assert ctl.selection.index == 3 and ctl.decoded is None and ctl.method == "pca"
    # a new dataset resets the map and the selection
    said = after(lambda: ctl.set_dataset(dataset))
    assert said[0] == "dataset_changed" and "selection_changed" in said
    assert ctl.selection is None and len(ctl.points) == 0 and ctl.encoding is None


def test_frames_of_a_whole_clip_model_are_refused_without_a_word(ctl):
    heard = recorder(ctl)
    ctl.encodings[ctl.current_key].layout = "clips"  # as a whole-clip model encodes
    assert not ctl.set_point_mode("frame") and ctl.point_mode == "clip" and heard == []


def test_the_controller_declares_everything_it_holds(ctl, dataset):
    from explorer.core.metrics_task import metrics_task
    from explorer.core.path_book import PathBook

    declared = set(vars(Controller()))
    book = PathBook(ctl)
    book.new_path([book.waypoint_at_point(0), book.waypoint_at_point(5)])
    ctl.select_point(2)
    d = ctl.decode_task()(FakeState())
    ctl.set_decoded(d)
    ctl.set_metrics(metrics_task(d, ctl)(FakeState()))
    # nothing was attached from outside: paths and the class cache were there from the start
    # (psygnal keeps each signal's connections on the instance once it is used)
    assert set(vars(ctl)) - set(SIGNALS) == declared and len(ctl.paths) == 1 and ctl.class_dtw.builds == 1


def test_state_changes_only_on_its_own_thread(ctl):
    import threading

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            ctl.select_point(1)
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert len(errors) == 1 and "GUI thread" in str(errors[0]) and ctl.selection is None


def test_a_tsne_stopped_before_its_first_iteration_gives_back_the_map_before_it(ctl):
    pca = ctl.embedding
    ctl.tsne_params = {"n_iter": 100000, "early_exaggeration_iter": 10, "callbacks_every_iters": 5}
    st = FakeState(stop_after=1)  # Esc while the starting layout is on screen
    back = ctl.project_task("tsne")(st)
    assert len(st.partials) == 1 and back is pca and back.method == "pca"
    ctl.set_embedding(back)
    assert ctl.method == "pca" and np.array_equal(ctl.points, pca.points)


def test_opening_the_current_model_again_starts_its_map_afresh(ctl):
    # its encoding is dropped, so the old map must go too: points without codes break every view
    lm = ctl.current
    seen = []
    ctl.model_changed.connect(lambda: seen.append("model"))
    ctl.add_model(lm)
    assert seen == ["model"] and ctl.current_key == lm.key
    assert ctl.encoding is None and ctl.embedding is None and len(ctl.points) == 0


def test_a_reload_encoded_on_the_dataset_open_before_is_not_committed(ctl, tmp_path):
    from explorer.core.reload import commit_reload, reload_task

    lm = ctl.current
    r = reload_task(ctl, "new.safetensors", loader=lambda _p: lm, key="run best", label="new")(FakeState())
    assert r is not None and r.encoding.clip_codes.shape[0] == len(ctl.dataset.clips)
    ctl.set_dataset(open_dataset(make_dataset_folder(tmp_path, per_class=2)))
    with pytest.raises(DatasetError, match="dataset open before"):
        commit_reload(ctl, r)
    assert "run best" not in ctl.models
