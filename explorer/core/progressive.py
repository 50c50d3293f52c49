"""The map while an encoding is still arriving, and the encode task that feeds it (no Qt).

An encoding reports the clips done so far (:class:`models.inference.encode.ClipEncoder`); the
map shows them at once as a PCA of their codes. The PCA is fitted again on every partial
encoding (on at most :data:`MAX_FIT` codes), since the first batch is often one instrument and a
poor basis for the rest, and each new layout is Procrustes-aligned (rotation or reflection, and
a shift, never a scaling) onto the points already shown: those points keep their place as well as
one rotation can keep them, new ones appear around them. A final t-SNE then starts from the
last filled layout (:meth:`FillingMap.final_layout`); a final PCA is the canonical one (the same
picture as any PCA of these codes), at most a rotation away from the filled map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import orthogonal_procrustes

from models.datasets.base import BuildCancelled
from models.datasets.skipped import with_reasons
from models.inference.code_cache import load_codes, model_fingerprint, save_codes
from models.inference.encode import CachedFeatures, ClipEncoder, Encoding, encode_dataset
from models.mapping.projection import PCAProjector
from models.threads import BatchThreads

#: codes a partial PCA is fitted on at most (evenly strided): 10,000 x 64 fits in about 2 ms
MAX_FIT = 10_000
#: chunks of one encoding between two new timings of the other torch thread counts: a trial of
#: the slower count costs about ten chunks on a loaded 2-core machine, so rarely
RETRY_EVERY = 256


def encoding_task(lm: Any, dataset: Any, cache: Any = None, *,
                  choose_threads: bool = True) -> Callable[[Any], Encoding | None]:
    """``task(state)``: encode ``dataset`` with ``lm``, partial encodings through ``state.partial``.

    With a feature cache (``models.datasets.feature_cache.FeatureCache``) that has no entry yet,
    clips are encoded as the cache analyses them (``on_clip``), so the first points come after
    the first batch, not after the whole analysis; with an entry, features are read from it clip
    by clip (:class:`CachedFeatures`), no audio is read; and when this model (the same weights)
    has encoded the entry before, its codes are read back instead
    (``models.inference.code_cache``), no forward pass at all. Forward passes span clips, on the torch
    threads that time fastest here (:class:`BatchThreads`; torch's own setting without
    ``choose_threads``). Returns None when cancelled.
    """
    model, rep, n = lm.model, lm.representation, len(dataset.clips)

    def task(state: Any) -> Encoding | None:
        threads = BatchThreads(retry_every=RETRY_EVERY) if choose_threads else None
        if cache is None:
            return encode_dataset(model, rep, dataset, state=state, threads=threads)
        fs = cache.lookup(dataset, rep)
        fp = model_fingerprint(model)  # once: the lookup below and the store at the end
        if fs is not None:
            stored = load_codes(fs, fp, n)  # this model has encoded this dataset before
            if stored is not None:
                return with_reasons(stored, dataset, fs.rejected)
        if fs is None:
            enc = ClipEncoder(model, rep, n, state=state, threads=threads)

            def on_clip(i: int, features: np.ndarray | None) -> None:
                if features is None:
                    enc.fail(i, "the sound could not be decoded")
                else:
                    enc.add(i, features)

            try:
                fs = cache.features(dataset, rep, should_stop=state.should_stop, on_clip=on_clip,
                                    progress=lambda i, total: state.report(i / max(total, 1), f"encoding {i}/{total}"))
            except BuildCancelled:
                return None
            if enc.n_done == n:
                return _stored(fs, fp, with_reasons(enc.result(), dataset, fs.rejected))
            # another process built the entry while this one waited for its lock: read it
        feats = CachedFeatures(fs, n)
        return _stored(fs, fp, with_reasons(encode_dataset(model, rep, dataset, state=state, features=feats,
                                                           threads=threads), dataset, fs.rejected))

    def _stored(fs: Any, fp: str | None, encoding: Encoding | None) -> Encoding | None:
        if encoding is not None:  # a whole encoding (a cancelled one is None): the next open reads it
            save_codes(fs, fp, encoding)
        return encoding

    return task


class FillingMap:
    """The layout of one model's map while its encoding arrives (see the module docstring).

    ``place`` is called with the map codes of each partial encoding, in order; the rows of one
    call start with the rows of the previous call (clips arrive in index order), which is what
    lets the new layout be aligned onto the shown one.
    """

    def __init__(self) -> None:
        self.key: str | None = None
        self.complete = False
        self._points = np.zeros((0, 2))
        self._rows = np.zeros((0, 2), np.int64)  # (clip, frame) of each shown point

    def reset(self) -> None:
        """Nothing is being filled in."""
        self.key, self.complete = None, False
        self._points, self._rows = np.zeros((0, 2)), np.zeros((0, 2), np.int64)

    @property
    def filling(self) -> bool:
        """Whether an encoding is arriving (a partial one is the model's encoding now)."""
        return self.key is not None and not self.complete

    def place(self, key: str, codes: np.ndarray, clips: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """Points for ``codes`` [shape=(n, d)] -> [shape=(n, 2)], aligned onto the last ones shown."""
        if key != self.key:
            self.reset()
            self.key = key
        codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        rows = np.c_[np.asarray(clips, np.int64), np.asarray(frames, np.int64)]
        fit = codes[:: max(1, -(-len(codes) // MAX_FIT))]
        pts = PCAProjector().fit(fit).transform(codes) if len(codes) else np.zeros((0, 2))
        m = len(self._points)
        if 1 < m <= len(pts) and np.array_equal(rows[:m], self._rows):
            old, new = self._points, pts[:m]
            rotation, _ = orthogonal_procrustes(new - new.mean(0), old - old.mean(0))
            pts = (pts - new.mean(0)) @ rotation + old.mean(0)
        self._points, self._rows = pts, rows
        return pts

    def final_layout(self, key: str, codes: np.ndarray, clips: np.ndarray, frames: np.ndarray) -> np.ndarray | None:
        """The complete encoding's codes placed as the filled map would place them, once: the
        layout the final projection aligns to or starts from. None when ``key``'s map was not
        filled in (or this was already asked)."""
        if key != self.key or not self.complete or len(self._points) == 0:
            return None
        pts = self.place(key, codes, clips, frames)
        self.reset()
        return pts
