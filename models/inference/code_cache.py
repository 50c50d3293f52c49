"""A dataset's codes under one model, kept beside the dataset's cached features.

Opening a dataset again with the same model (the same weights, whatever the checkpoint file is
called) reads its codes instead of running every clip through the encoder: the map of a known
library is back in the time it takes to read them. An entry belongs to one feature-cache entry
(``FeatureSet.path / "codes"``: the dataset's fingerprint and the representation are already in
that key) and one model fingerprint (:func:`model_fingerprint`: the class and every parameter
and buffer, byte for byte), so new weights or a changed dataset never find a stale entry, and
pruning the features prunes their codes. Entries are written atomically and read without
pickle; one that does not fit the dataset is ignored (and rewritten by the next encode).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.atomic import WriteError, atomic_open
from models.inference import layout as item_layout
from models.inference.encode import Encoding

log = logging.getLogger(__name__)

CODES_DIR = "codes"
#: bumped when the entry's contents change meaning
FORMAT_VERSION = 1


def model_fingerprint(model: torch.nn.Module) -> str | None:
    """A digest of what the model's codes depend on: its class, its config when it has one, and
    every tensor of its state (names, dtypes, shapes, bytes). None when the model has no state
    to read (codes are then never cached)."""
    try:
        h = hashlib.sha256(f"{FORMAT_VERSION}:{type(model).__module__}.{type(model).__qualname__}".encode())
        h.update(repr(getattr(model, "config", "")).encode())
        for name, t in model.state_dict().items():
            t = t.detach().cpu().contiguous().reshape(-1)
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:32]
    except (AttributeError, RuntimeError, TypeError, ValueError):  # a scripted or foreign model
        return None


def _path(feature_set: Any, fingerprint: str) -> Path:
    return Path(feature_set.path) / CODES_DIR / f"{fingerprint}.npz"


def load_codes(feature_set: Any, fp: str | None, n_clips: int) -> Encoding | None:
    """The encoding stored beside ``feature_set`` for the model of fingerprint ``fp``
    (:func:`model_fingerprint`), or None (none stored, unreadable, or not the shape of a dataset
    of ``n_clips`` clips)."""
    if fp is None:
        return None
    path = _path(feature_set, fp)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != FORMAT_VERSION:
                return None
            clip_codes = np.asarray(z["clip_codes"], dtype=np.float64)
            frame_codes = np.asarray(z["frame_codes"], dtype=np.float64)
            frame_clip = np.asarray(z["frame_clip"], dtype=np.int64)
            frame_index = np.asarray(z["frame_index"], dtype=np.int64)
            latent_shape = tuple(int(v) for v in z["latent_shape"])
            layout = item_layout.parse_layout(str(z["layout"]))
            failed = [(int(i), str(r)) for i, r in zip(z["failed_index"], z["failed_reason"])]
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        log.info("ignoring the stored codes %s: %s", path.name, exc)
        return None
    d = int(np.prod(latent_shape)) if latent_shape else 0
    n_items = len(frame_codes)
    if (clip_codes.shape != (n_clips, d) or frame_codes.shape != (n_items, d) or frame_clip.shape != (n_items,)
            or frame_index.shape != (n_items,) or (n_items and not 0 <= frame_clip.min() <= frame_clip.max() < n_clips)
            or any(not 0 <= i < n_clips for i, _ in failed)):
        log.info("ignoring the stored codes %s: they do not fit a dataset of %d clips", path.name, n_clips)
        return None
    return Encoding(clip_codes=clip_codes, frame_codes=frame_codes, frame_clip=frame_clip, frame_index=frame_index,
                    latent_shape=latent_shape, layout=layout, failed=failed)


def save_codes(feature_set: Any, fp: str | None, encoding: Encoding) -> bool:
    """Store ``encoding`` for the model of fingerprint ``fp`` beside ``feature_set`` (atomically);
    returns whether it was written. A full disk or a read-only cache only costs the next open
    its encode."""
    if fp is None:
        return False
    frame = np.asarray(encoding.frame_codes, dtype=np.float64)
    narrow = frame.astype(np.float32)
    # a model's float32 codes are stored as they came (lossless); anything finer stays float64
    frame_out = narrow if np.array_equal(narrow.astype(np.float64), frame, equal_nan=True) else frame
    path = _path(feature_set, fp)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.savez(f, format=np.int64(FORMAT_VERSION), clip_codes=np.asarray(encoding.clip_codes, np.float64),
                     frame_codes=frame_out, frame_clip=np.asarray(encoding.frame_clip, np.int64),
                     frame_index=np.asarray(encoding.frame_index, np.int64),
                     latent_shape=np.asarray(encoding.latent_shape, np.int64), layout=np.str_(encoding.layout),
                     failed_index=np.asarray([i for i, _ in encoding.failed], np.int64),
                     failed_reason=np.asarray([r for _, r in encoding.failed], dtype=str))
        return True
    except (OSError, WriteError) as exc:
        log.info("the codes were not stored (%s): the next open encodes again", exc)
        return False
