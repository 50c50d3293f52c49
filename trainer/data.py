"""From a dataset and a representation to the arrays a model trains on.

What an *item* is depends on the model:

* frame models (``consumes == "stft_frames"``, no ``sequence`` attribute): every frame of every
  clip is an item ``(n_bins,)``; all-zero frames are dropped from training when
  ``train.drop_silent_frames`` (Colonel's preprocessing);
* sequence models (``sequence = True``): windows of ``seq_len`` consecutive frames,
  ``(seq_len, n_bins)``, hopping by ``train.seq_hop``; a clip shorter than a window is padded
  with zero frames;
* log-mel and waveform models: one item per clip, ``(n_mels, n_frames)`` or ``(n_samples,)``.
  Clips whose features differ in length are zero-padded or cropped to the most common length
  (ties: the longest), so a stray long file does not set the size of every item.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import DatasetError

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
    """``"frames"``, ``"windows"`` or ``"clips"`` for a model class and a representation kind."""
    if rep_kind == "stft_frames":
        return "windows" if getattr(model_cls, "sequence", False) else "frames"
    return "clips"


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

    fs = FeatureCache(cache_dir).features(dataset, rep)
    return _unpack_feature_set(fs, len(dataset.clips))


def _unpack_feature_set(fs: Any, n: int) -> list[np.ndarray | None]:
    # FeatureSet: ``fs[j]`` is the j-th usable clip (memory-mapped), ``fs.indices[j]`` its clip index.
    out: list[np.ndarray | None] = [None] * n
    for j, i in enumerate(fs.indices):
        out[int(i)] = np.array(fs[j], dtype=np.float32)
    for rej in getattr(fs, "rejected", []):
        log.warning("skipping %s: %s", rej.path, rej.reason)
    return out


def common_length(feats: list[np.ndarray], axis: int) -> int:
    """Most common size along ``axis`` (ties: the largest)."""
    counts = Counter(int(f.shape[axis]) for f in feats)
    return max(counts, key=lambda k: (counts[k], k))


def fit_length(f: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Zero-pad or crop ``f`` to ``length`` along ``axis``."""
    n = f.shape[axis]
    if n >= length:
        return np.take(f, np.arange(length), axis=axis)
    pad = [(0, 0)] * f.ndim
    pad[axis] = (0, length - n)
    return np.pad(f, pad)


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

    clip_length : for ``mode == "clips"``, the length items are fitted to along their time
        axis (the last axis); computed from these clips when ``None``.
    """
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    usable = [int(i) for i in indices if feats[int(i)] is not None]
    if mode == "clips" and usable and clip_length is None:
        clip_length = common_length([feats[i] for i in usable], axis=-1)
    for i in usable:
        f = feats[i]
        if mode == "frames":
            if f.ndim != 2:
                raise DatasetError(f"expected frames (n_frames, n_bins), got shape {f.shape}")
            if drop_silent:
                f = f[np.any(f != 0, axis=1)]
            items = f
        elif mode == "windows":
            if len(f) < seq_len:
                f = fit_length(f, seq_len, axis=0)
            hop = seq_hop or seq_len
            starts = range(0, len(f) - seq_len + 1, hop)
            items = np.stack([f[s : s + seq_len] for s in starts])
        else:
            items = fit_length(f, clip_length, axis=-1)[None]
        xs.append(items.astype(np.float32, copy=False))
        ys.append(np.full(len(items), classes[i], dtype=np.int64))
        cs.append(np.full(len(items), i, dtype=np.int64))
    if not xs:
        return Items(np.zeros((0,), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Items(np.concatenate(xs), np.concatenate(ys), np.concatenate(cs))


def input_shape_for(feats: list[np.ndarray | None], train_idx: np.ndarray, *, mode: str, seq_len: int) -> tuple[int, ...]:
    """The model's ``input_shape`` for these features."""
    sample = [feats[int(i)] for i in train_idx if feats[int(i)] is not None]
    if not sample:
        raise DatasetError("no training clip could be analysed")
    f = sample[0]
    if mode == "frames":
        return (int(f.shape[1]),)
    if mode == "windows":
        return (int(seq_len), int(f.shape[1]))
    return (*(int(s) for s in f.shape[:-1]), common_length(sample, axis=-1))
