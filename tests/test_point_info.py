"""explorer.core.point_info: the map's per-point classes and tooltips, cached, equal to the old per-point code."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from explorer_tiny import FakeState, make_dataset_folder, tiny_loaded_model

from explorer.core.controller import KMEANS, Controller
from explorer.core.records import Decoded
from models.datasets import open_dataset


# --- the code this module replaced, kept here as the reference ---------------------------------------
def old_map_codes(c):
    enc = c.encoding
    if c.point_mode == "frame" and enc.has_time:
        return enc.frame_codes, enc.frame_clip, enc.frame_index
    ok = np.flatnonzero(enc.ok)
    return enc.clip_codes[ok], ok, np.full(len(ok), -1)


def old_point_labels(c):
    clips = old_map_codes(c)[1]
    if c.colour_field == KMEANS:
        if c.cluster_labels is None or len(c.cluster_labels) != len(clips):
            return np.array(["…"] * len(clips), dtype=object)
        return np.array([f"cluster {k + 1}" for k in c.cluster_labels], dtype=object)
    values = c.dataset.labels(c.colour_field)
    return np.array([str(values[k]) for k in clips], dtype=object)


def old_classes(c):
    def key(s):
        try:
            return (0, float(s.replace("cluster ", "")), s)
        except ValueError:
            return (1, 0.0, s)

    return sorted(dict.fromkeys(old_point_labels(c)), key=key)


def old_visible(c):
    labels = old_point_labels(c)
    shown = c.map_filter.mask(c.dataset, old_map_codes(c)[1])
    return shown & ~np.isin(labels, list(c.hidden)) if c.hidden else shown


def old_describe(c, i):
    _, clips, frames = old_map_codes(c)
    clip = int(clips[i])
    cl = c.dataset.clips[clip]
    lines = [cl.name] + [f"{k}: {v}" for k, v in list(cl.labels.items())[:4]]
    if c.colour_field == KMEANS:
        lines.append(str(old_point_labels(c)[i]))
    if frames[i] >= 0:
        lines.append(f"frame {int(frames[i])}")
    if c.decoded and c.decoded.decoded.clip_index == clip and c.decoded.metrics:
        lines += [f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in c.decoded.metrics.items()]
    return "\n".join(lines)


def old_centres(c):
    labels, pts, shown = old_point_labels(c), c.points, old_visible(c)
    return {k: np.median(pts[shown & (labels == k)], axis=0) for k in old_classes(c)
            if k not in c.hidden and (shown & (labels == k)).any()}


def assert_same_as_old(c):
    codes, clips, frames = c.map_codes()
    ref = old_map_codes(c)
    assert np.array_equal(codes, ref[0], equal_nan=True) and np.array_equal(clips, ref[1])
    assert np.array_equal(frames, ref[2])
    assert list(c.point_labels()) == list(old_point_labels(c))
    assert c.classes() == old_classes(c)
    assert np.array_equal(c.visible_mask(), old_visible(c))
    for i in (0, 1, len(clips) // 2, len(clips) - 1):
        assert c.describe_point(i) == old_describe(c, i)
    if len(c.points) == len(clips):
        new, old = c.class_centres_2d(), old_centres(c)
        assert list(new) == list(old) and all(np.array_equal(new[k], old[k]) for k in old)


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    one = open_dataset(make_dataset_folder(tmp_path_factory.mktemp("a"), per_class=6))
    two = open_dataset(make_dataset_folder(tmp_path_factory.mktemp("b"), per_class=3))
    return one, two


@pytest.fixture
def ctl(datasets):
    c = Controller()
    c.set_dataset(datasets[0])
    c.add_model(tiny_loaded_model())
    c.set_encoding(c.current_key, c.encode_task()(FakeState()))
    c.set_embedding(c.project_task("pca")(FakeState()))
    return c


# --- equal to the old code ------------------------------------------------------------------------------
def test_clip_and_frame_modes_match_the_old_labels_and_tooltips(ctl):
    assert ctl.colour_field == "label"
    assert_same_as_old(ctl)
    ctl.toggle_class(ctl.classes()[1])
    ctl.map_filter.set("label", [ctl.classes()[0], ctl.classes()[1], ctl.classes()[2]])
    assert_same_as_old(ctl)
    assert 0 < ctl.visible_mask().sum() < len(ctl.points)
    assert ctl.set_point_mode("frame")
    assert len(ctl.map_codes()[0]) == 24 * 32
    assert_same_as_old(ctl)
    assert "frame" in ctl.describe_point(40)


def test_kmeans_labels_order_clusters_numerically(ctl):
    ctl.set_colour_field(KMEANS)
    assert set(ctl.point_labels()) == {"…"}
    assert_same_as_old(ctl)  # still being computed
    n = len(ctl.points)
    ctl.set_cluster_labels(np.arange(n) % 12)  # 12 clusters: "cluster 10" sorts after "cluster 9"
    assert ctl.classes()[8:11] == ["cluster 9", "cluster 10", "cluster 11"]
    ctl.toggle_class("cluster 10")
    assert_same_as_old(ctl)
    assert ctl.describe_point(9).endswith("cluster 10")
    assert ctl.class_counts()["cluster 1"] == len(range(0, n, 12))


def test_tooltip_shows_the_scores_of_the_clip_just_heard(ctl):
    clip = int(ctl.point_clip[3])
    ctl.set_decoded(Decoded(None, SimpleNamespace(clip_index=clip)))  # what a click on point 3 decodes
    ctl.set_metrics({"rmse": 0.123456, "class": "low"})
    text = ctl.describe_point(3)
    assert text == old_describe(ctl, 3) and "rmse: 0.123" in text and "class: low" in text
    assert "rmse" not in ctl.describe_point(next(i for i, k in enumerate(ctl.point_clip) if k != clip))


def test_failed_clips_are_left_out_and_full_encodings_are_not_copied(ctl):
    enc = ctl.encoding
    assert np.shares_memory(ctl.map_codes()[0], enc.clip_codes)  # no clip failed: a view
    broken = enc.clip_codes.copy()
    broken[[2, 7]] = np.nan
    ctl.set_encoding(ctl.current_key, dataclasses.replace(enc, clip_codes=broken))
    codes, clips, _ = ctl.map_codes()
    assert len(codes) == 22 and 2 not in clips and 7 not in clips
    assert_same_as_old(ctl)
    assert not ctl.map_codes()[1].flags.writeable  # one cached array shared by every caller


# --- reused across hovers, recomputed on a change ------------------------------------------------------
def test_hovering_reuses_the_cached_arrays(ctl):
    ctl.visible_mask()
    ctl.describe_point(0)
    before = dict(ctl.point_info.computed)
    labels, shown = ctl.point_labels(), ctl.visible_mask()
    for i in range(50):  # what a hover, a click and a t-SNE frame ask
        ctl.describe_point(i % len(ctl.points))
        ctl.hit_test(float(ctl.points[i % 5, 0]), float(ctl.points[i % 5, 1]), pixel_size=(0.01, 0.01))
        ctl.class_centres_2d()
        ctl.set_partial_points(ctl.points + 0.001)  # a t-SNE frame: new positions, same classes
    assert ctl.point_info.computed == before
    assert ctl.point_labels() is labels and ctl.visible_mask() is shown


def test_recomputed_after_colour_field_hidden_dataset_and_encoding_changes(ctl, datasets):
    counts = ctl.point_info.computed
    ctl.point_labels()
    n = counts["classes"]
    ctl.set_colour_field(KMEANS)
    ctl.point_labels()
    assert counts["classes"] == n + 1
    ctl.set_colour_field("label")
    assert list(ctl.point_labels()) == list(old_point_labels(ctl)) and counts["classes"] == n + 2

    shown = ctl.visible_mask()
    ctl.toggle_class(ctl.classes()[0])
    assert ctl.visible_mask() is not shown and not ctl.visible_mask().all()
    assert np.array_equal(ctl.visible_mask(), old_visible(ctl))

    p = counts["points"]
    enc = ctl.encoding
    ctl.set_encoding(ctl.current_key, dataclasses.replace(enc, clip_codes=enc.clip_codes + 1.0))
    assert np.array_equal(ctl.map_codes()[0], enc.clip_codes + 1.0) and counts["points"] == p + 1

    ctl.set_dataset(datasets[1])  # fewer clips: nothing of the first dataset survives
    ctl.set_encoding(ctl.current_key, ctl.encode_task()(FakeState()))
    ctl.set_embedding(ctl.project_task("pca")(FakeState()))
    assert len(ctl.point_labels()) == len(datasets[1].clips) == 12
    assert_same_as_old(ctl)
