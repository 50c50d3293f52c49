"""Grouped, stratified, deterministic splits (models/datasets/splits.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from models.errors import ConfigError
from models.datasets.splits import SIDES, Split, check_grouped, split_dataset, split_indices


def _sizes(split: Split) -> list[int]:
    return [len(split.side(s)) for s in SIDES]


def test_default_is_80_10_10_and_stratified():
    labels = [i % 10 for i in range(500)]
    split = split_indices(labels, seed=3)
    assert _sizes(split) == [400, 50, 50]
    for side, share in zip(SIDES, (40, 5, 5)):
        counts = np.bincount(np.array(labels)[split.side(side)], minlength=10)
        assert counts.tolist() == [share] * 10


def test_partition_covers_every_item_once():
    split = split_indices([i % 3 for i in range(97)], seed=0)
    both = np.concatenate([split.train, split.val, split.test])
    assert sorted(both.tolist()) == list(range(97))


def test_groups_never_cross_sides():
    # 6 speakers x 10 digits x 5 takes, like the Free Spoken Digit Dataset.
    labels = [d for s in range(6) for d in range(10) for _ in range(5)]
    groups = [f"spk{s}" for s in range(6) for _ in range(50)]
    split = split_indices(labels, groups, seed=1)
    check_grouped(split, groups)
    assert _sizes(split) == [200, 50, 50]
    speakers = {side: {groups[i] for i in split.side(side)} for side in SIDES}
    assert [len(speakers[s]) for s in SIDES] == [4, 1, 1]


def test_check_grouped_detects_a_leak():
    with pytest.raises(ConfigError, match="both"):
        check_grouped(Split(np.array([0]), np.array([1]), np.array([], dtype=np.int64)), ["a", "a"])


def test_deterministic_for_a_seed_and_varies_with_it():
    labels = [i % 4 for i in range(200)]
    groups = [i // 5 for i in range(200)]
    a = split_indices(labels, groups, seed=7)
    b = split_indices(labels, groups, seed=7)
    c = split_indices(labels, groups, seed=8)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()


def test_tiny_datasets_give_each_side_one_item_when_possible():
    assert _sizes(split_indices(None, n=5)) == [3, 1, 1]
    assert _sizes(split_indices(None, n=2)) == [2, 0, 0]
    assert _sizes(split_indices(["x"] * 3, fractions=(1, 0, 0))) == [3, 0, 0]


def test_round_trip_and_bad_input():
    split = split_indices([0, 1] * 10, seed=0)
    assert Split.from_dict(split.to_dict()).to_dict() == split.to_dict()
    with pytest.raises(ConfigError):
        split_indices([0, 1], fractions=(1, -1, 0))
    with pytest.raises(ConfigError):
        Split.from_dict({"train": [0]})
    with pytest.raises(ConfigError, match="unknown split"):
        split.side("dev")


@dataclass
class _Clip:
    name: str
    labels: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


@dataclass
class _Dataset:
    clips: list
    default_label: str = "digit"
    group_key: str | None = "speaker"


def test_split_dataset_reads_labels_and_groups_from_clips():
    clips = [_Clip(f"{d}_{s}", labels={"digit": d}, meta={"speaker": s}) for s in "abcde" for d in range(4)]
    split = split_dataset(_Dataset(clips), seed=0)
    check_grouped(split, [c.meta["speaker"] for c in clips])
    assert _sizes(split) == [12, 4, 4]
