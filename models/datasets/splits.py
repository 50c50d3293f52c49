"""Deterministic, grouped, stratified train/validation/test splits.

Grouped: when a dataset has a group key (speaker, instrument, drum kit), all clips of one
group land on the same side, so a model is never tested on a voice it trained on (the leak
Lionello & Purwins' public code has). Stratified: within that constraint, each side gets
about its share of every label. Deterministic: a function of the clips' labels, groups and
the seed only.

scikit-learn's ``StratifiedGroupKFold`` does the grouped-and-stratified part for k equal
folds, but not for arbitrary fractions, and it refuses datasets with fewer groups than
folds; the greedy assignment below handles any fractions and tiny datasets (it gives each
side with a non-zero share one group first, when there are enough groups).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ConfigError

SIDES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Split:
    """Indices of the clips on each side, each array sorted ascending.

    train, val, test : np.ndarray [shape=(n_side,), dtype=int64]
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def side(self, name: str) -> np.ndarray:
        if name not in SIDES:
            raise ConfigError(f"unknown split {name!r}; expected one of {', '.join(SIDES)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, list[int]]:
        return {name: [int(i) for i in self.side(name)] for name in SIDES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Split":
        try:
            return cls(**{name: np.asarray(data[name], dtype=np.int64) for name in SIDES})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed split: {exc}") from None


def split_indices(
    labels: Sequence[Hashable] | None,
    groups: Sequence[Hashable] | None = None,
    *,
    n: int | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> Split:
    """Split ``n`` items into train/val/test.

    Parameters
    ----------
    labels : sequence of hashable [shape=(n,)] or None
        Class of each item, used to stratify; ``None`` for no stratification.
    groups : sequence of hashable [shape=(n,)] or None
        Group of each item (speaker, instrument, kit); items of one group share a side.
        ``None`` (or a ``None`` entry) makes an item its own group.
    n : int, optional
        Number of items; needed only when both ``labels`` and ``groups`` are ``None``.
    fractions : (float, float, float)
        Shares of train, val, test; normalised to sum to one.
    seed : int
        Seeds the order in which groups are assigned.

    Returns
    -------
    Split
    """
    if labels is not None:
        n = len(labels)
    elif groups is not None:
        n = len(groups)
    if n is None:
        raise ConfigError("split_indices needs labels, groups or n")
    if groups is not None and len(groups) != n:
        raise ConfigError(f"{len(groups)} groups for {n} items")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or np.any(frac < 0) or frac.sum() <= 0:
        raise ConfigError(f"fractions must be three non-negative numbers, got {list(fractions)}")
    frac = frac / frac.sum()

    label_ids = _codes(labels if labels is not None else [0] * n)
    n_labels = int(label_ids.max()) + 1 if n else 0
    units = _units(groups, n)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(units))
    # Largest groups first (stable, so the shuffle breaks ties): they are the hard ones to place.
    order = sorted(order, key=lambda u: -len(units[u]))

    label_total = np.bincount(label_ids, minlength=n_labels).astype(np.float64)
    target = frac * n  # items per side
    label_target = frac[:, None] * label_total[None, :]  # (3, n_labels)
    count = np.zeros(3)
    label_count = np.zeros((3, n_labels))
    assigned: list[list[int]] = [[], [], []]
    active = frac > 0
    for u in order:
        members = units[u]
        hist = np.bincount(label_ids[members], minlength=n_labels).astype(np.float64)
        # Cost of each side: how much the placement moves the side's item count, and its
        # per-label counts, away from their targets (negative when it brings them closer).
        cost = np.abs(count + len(members) - target) - np.abs(count - target)
        cost += (
            np.abs(label_count + hist[None, :] - label_target) - np.abs(label_count - label_target)
        ).sum(axis=1)
        # Every side with a share gets a unit before any side gets a second one.
        if len(units) >= active.sum():
            cost[(count == 0) & active] = -np.inf
        cost[~active] = np.inf
        score = -cost
        side = int(np.argmax(score))  # ties go to the earliest side: train, val, test
        assigned[side].extend(members)
        count[side] += len(members)
        label_count[side] += hist
    return Split(*(np.array(sorted(a), dtype=np.int64) for a in assigned))


def split_dataset(dataset: Any, *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> Split:
    """Split a ``models.datasets`` dataset by its ``group_key``, stratified by ``default_label``.

    A clip's label and group are read from ``clip.labels`` first, then ``clip.meta``.
    """
    clips = list(dataset.clips)
    label_key = getattr(dataset, "default_label", None)
    group_key = getattr(dataset, "group_key", None)
    labels = [_field(c, label_key) for c in clips] if label_key else None
    groups = [_field(c, group_key) for c in clips] if group_key else None
    return split_indices(labels, groups, n=len(clips), fractions=fractions, seed=seed)


def check_grouped(split: Split, groups: Sequence[Hashable]) -> None:
    """Raise ConfigError if a (non-None) group appears on two sides."""
    seen: dict[Hashable, str] = {}
    for name in SIDES:
        for i in split.side(name):
            g = groups[int(i)]
            if g is None:
                continue
            if seen.setdefault(g, name) != name:
                raise ConfigError(f"group {g!r} is on both {seen[g]} and {name}")


def _field(clip: Any, key: str) -> Hashable:
    labels = getattr(clip, "labels", {}) or {}
    if key in labels:
        return _hashable(labels[key])
    return _hashable((getattr(clip, "meta", {}) or {}).get(key))


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _codes(values: Sequence[Hashable]) -> np.ndarray:
    # Codes by sorted string form, so they do not depend on the items' order.
    keys = sorted({str(v) for v in values})
    index = {k: i for i, k in enumerate(keys)}
    return np.array([index[str(v)] for v in values], dtype=np.int64)


def _units(groups: Sequence[Hashable] | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.array([i]) for i in range(n)]
    by_group: dict[str, list[int]] = {}
    singles: list[np.ndarray] = []
    for i, g in enumerate(groups):
        if g is None:
            singles.append(np.array([i]))
        else:
            by_group.setdefault(str(g), []).append(i)
    return [np.array(by_group[k]) for k in sorted(by_group)] + singles
