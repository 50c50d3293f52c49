"""From a dataset and a representation to the arrays a model trains on.

What an *item* is follows :mod:`models.inference.layout` (the app cuts clips the same way):

* frame models on a time-first representation (``layout == "frames"``): every frame of every
  clip is an item ``(n_bins,)``; all-zero frames are dropped from training when
  ``train.drop_silent_frames`` (Colonel's preprocessing);
* sequence models (``"windows"``): windows of ``seq_len`` consecutive frames,
  ``(seq_len, n_bins)``, hopping by ``train.seq_hop``; the clip is padded with zero frames until
  every frame lies in a window;
* log-mel and waveform models (``"clips"``): one item per clip, ``(n_mels, n_frames)`` or
  ``(n_samples,)``. Clips whose features differ in length are zero-padded or cropped to the most
  common length (ties: the longest), so a stray long file does not set the size of every item.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import DatasetError
from models.inference import layout as item_layout
from models.inference.encode import features_by_clip
from models.arrays import fit_length  # noqa: F401  (re-exported: the trainer's pad/crop)
from models.inference.layout import common_length
from models.representations.base import representation_class

log = logging.getLogger(__name__)


@dataclass
class Items:
    """Items of one side of the split.

    x : np.ndarray [shape=(n_items, *item_shape), dtype=float32]
    y : np.ndarray [shape=(n_items,), dtype=int64]
        Class index of the item's clip (-1 when the dataset has no label).
    clip : np.ndarray [shape=(n_items,), dtype=int64]
        Index (into ``dataset.clips``) of the clip each item comes from.
    """

    x: np.ndarray
    y: np.ndarray
    clip: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def item_mode(model_cls: type, rep_kind: str) -> str:
    """The item layout (``"frames"``, ``"windows"`` or ``"clips"``) of a model class on a representation kind."""
    return item_layout.layout_for(model_cls, representation_class(rep_kind))


def class_names(dataset: Any) -> list[str]:
    """Sorted names of the default label's classes (empty when the dataset has no label)."""
    if not getattr(dataset, "default_label", None):
        return []
    return sorted({str(c.labels.get(dataset.default_label)) for c in dataset.clips})


def clip_classes(dataset: Any, names: list[str]) -> np.ndarray:
    """Class index of every clip, ``-1`` when unlabelled."""
    if not names:
        return np.full(len(dataset.clips), -1, dtype=np.int64)
    index = {n: i for i, n in enumerate(names)}
    key = dataset.default_label
    return np.array([index[str(c.labels.get(key))] for c in dataset.clips], dtype=np.int64)


def clip_features(dataset: Any, rep: Any, *, cache_dir: str | None = None) -> list[np.ndarray | None]:
    """Features of every clip (``None`` for a clip that failed to decode, logged).

    Through :class:`models.datasets.feature_cache.FeatureCache`, so a second run on the same data and
    representation reads them from disk instead of recomputing them.
    """
    from models.datasets.feature_cache import FeatureCache

    return features_by_clip(FeatureCache(cache_dir).features(dataset, rep), len(dataset.clips))


def build_items(
    feats: list[np.ndarray | None],
    indices: np.ndarray,
    classes: np.ndarray,
    *,
    mode: str,
    seq_len: int = 0,
    seq_hop: int = 0,
    drop_silent: bool = False,
    clip_length: int | None = None,
    rep_kind: str = "",
) -> Items:
    """Items of the clips ``indices`` (see the module docstring).

    mode : the item layout (:func:`item_mode`).
    seq_len, seq_hop : window length and hop (``"windows"``; hop ``seq_len`` when 0).
    clip_length : for ``mode == "clips"``, the length items are fitted to along their time
        axis (the last axis); computed from these clips when ``None``.
    rep_kind : not needed (the layout says everything); accepted for older callers.
    """
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    usable = [int(i) for i in indices if feats[int(i)] is not None]
    if mode == item_layout.CLIPS and usable and clip_length is None:
        clip_length = common_length([feats[i] for i in usable], axis=-1)
    for i in usable:
        f = feats[i]
        if mode == item_layout.FRAMES and f.ndim != 2:
            raise DatasetError(f"expected frames (n_frames, n_bins), got shape {f.shape}")
        shape = _item_shape(f, mode, seq_len=seq_len, clip_length=clip_length)
        items = item_layout.to_items(f, mode, shape, hop=seq_hop or None)
        if mode == item_layout.FRAMES and drop_silent:
            items = items[np.any(items != 0, axis=1)]
        xs.append(items.astype(np.float32, copy=False))
        ys.append(np.full(len(items), classes[i], dtype=np.int64))
        cs.append(np.full(len(items), i, dtype=np.int64))
    if not xs:
        return Items(np.zeros((0,), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Items(np.concatenate(xs), np.concatenate(ys), np.concatenate(cs))


def _item_shape(f: np.ndarray, mode: str, *, seq_len: int, clip_length: int | None) -> tuple[int, ...]:
    if mode == item_layout.FRAMES:
        return tuple(f.shape[1:])
    if mode == item_layout.WINDOWS:
        return (int(seq_len), *f.shape[1:])
    return (*f.shape[:-1], int(clip_length if clip_length is not None else f.shape[-1]))


def input_shape_for(feats: list[np.ndarray | None], train_idx: np.ndarray, *, mode: str, seq_len: int) -> tuple[int, ...]:
    """The model's ``input_shape`` for these features (see :func:`models.inference.layout.input_shape_for`)."""
    sample = [feats[int(i)] for i in train_idx if feats[int(i)] is not None]
    return item_layout.input_shape_for(sample, mode, seq_len=seq_len)
