"""From sounds to codes: one clip's items, a batch of items, a whole dataset (no Qt).

Every long function takes a ``state`` with ``report(progress, message)``, ``partial(result)``
and ``should_stop()`` (Orange3's shape), so the GUI can run it on a worker and tests can call
it with :class:`NullState`.

A frame or sequence model gives a clip one code per item (its *trajectory* over time,
:meth:`Encoding.trajectory`); the map's point for the clip is the mean of those codes. A clip
model gives one code per clip. :mod:`models.inference.layout` says what the items are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from models.errors import DatasetError
from models.inference import layout as item_layout
from models.nets.base import LatentModel
from models.representations.base import Analysis, Representation
from models.threads import BatchThreads

log = logging.getLogger(__name__)


class JobState(Protocol):
    def report(self, progress: float, message: str = "") -> None: ...
    def partial(self, result: Any) -> None: ...
    def should_stop(self) -> bool: ...


class NullState:
    """A state that never stops and ignores reports (plain calls, unit tests)."""

    def report(self, progress: float, message: str = "") -> None:
        pass

    def partial(self, result: Any) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@dataclass
class Encoding:
    """The codes of a dataset under one model.

    clip_codes : np.ndarray [shape=(n_clips, d)]
        One code per clip (the mean of its item codes for frame and sequence models); rows of
        failed clips are NaN.
    frame_codes : np.ndarray [shape=(n_items, d)]
        Every item's code; ``frame_clip[j]`` / ``frame_index[j]`` say where item ``j`` comes from.
    latent_shape : the model's latent shape (codes are flattened to ``d``).
    layout : one of :data:`models.inference.layout.LAYOUTS`.
    failed : clips that could not be read, with the reason.
    """

    clip_codes: np.ndarray
    frame_codes: np.ndarray
    frame_clip: np.ndarray
    frame_index: np.ndarray
    latent_shape: tuple[int, ...]
    layout: str
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        """Mask of clips that have a code [shape=(n_clips,), dtype=bool]."""
        return ~np.isnan(self.clip_codes).any(axis=1)

    @property
    def has_time(self) -> bool:
        """Whether a clip has several codes in time order (frames, windows), not one."""
        return item_layout.has_time(self.layout)

    def trajectory(self, i: int) -> np.ndarray:
        """Clip ``i``'s item codes in time order [shape=(n_items, d)] (one row for clip models)."""
        rows = np.flatnonzero(self.frame_clip == int(i))
        return self.frame_codes[rows[np.argsort(self.frame_index[rows], kind="stable")]]

    @classmethod
    def of_clip(cls, i: int, codes: np.ndarray, *, latent_shape: Sequence[int], layout: str) -> Encoding:
        """The encoding of clip ``i`` alone, from its trajectory (a render spec's record of a clip)."""
        codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        return cls(clip_codes=codes.mean(0, keepdims=True), frame_codes=codes, frame_clip=np.full(len(codes), int(i)),
                   frame_index=np.arange(len(codes)), latent_shape=tuple(int(v) for v in latent_shape),
                   layout=item_layout.parse_layout(layout))


def analyse_clip(dataset: Any, i: int, representation: Representation) -> tuple[np.ndarray, Analysis]:
    """Load clip ``i`` at the representation's rate and analyse it -> (y, Analysis)."""
    y = dataset.load(i, sr=representation.sample_rate)
    return y, representation.analyze(y)


def features_by_clip(feature_set: Any, n_clips: int) -> list[np.ndarray | None]:
    """A feature cache's ``FeatureSet`` as one entry per clip (``None``: the clip failed, logged).

    ``feature_set[j]`` is the j-th usable clip (memory-mapped), ``feature_set.indices[j]`` its
    clip index; entries are not copied.
    """
    out: list[np.ndarray | None] = [None] * int(n_clips)
    for j, i in enumerate(feature_set.indices):
        out[int(i)] = np.asarray(feature_set[j], dtype=np.float32)
    for rej in getattr(feature_set, "rejected", []):
        log.warning("skipping %s: %s", rej.path, rej.reason)
    return out


class CachedFeatures(Sequence):
    """A feature cache's ``FeatureSet`` as one entry per clip, read in blocks as asked for.

    ``feats[i]`` is clip ``i``'s features or ``None`` for a clip that failed there. Asked in
    clip order (as :func:`encode_dataset` asks), clips come from one file read per
    ``block_bytes`` of them (``FeatureSet.read``): one read costs less than many, and unlike
    :func:`features_by_clip` nothing is mapped, so a pass over a 10 GB cache leaves no resident
    pages behind (mapped pages count in the process's memory until the OS drops them).
    """

    def __init__(self, feature_set: Any, n_clips: int, *, block_bytes: int = 16 << 20) -> None:
        self._fs = feature_set
        self._row = np.full(int(n_clips), -1, np.int64)
        self._row[np.asarray(feature_set.indices, dtype=np.int64)] = np.arange(len(feature_set))
        self._block_bytes = int(block_bytes)
        self._start, self._block = 0, []  # entries _start.. of the block read last

    def __len__(self) -> int:
        return len(self._row)

    def __getitem__(self, i: int) -> np.ndarray | None:  # type: ignore[override]
        j = int(self._row[i])
        if j < 0:
            return None
        if not self._start <= j < self._start + len(self._block):
            stop, size = j, 0
            while stop < len(self._fs) and (stop == j or size + self._fs.nbytes(stop) <= self._block_bytes):
                size += self._fs.nbytes(stop)
                stop += 1
            self._start, self._block = j, self._fs.read(j, stop)
        return self._block[j - self._start]


@torch.no_grad()
def encode_items(model: LatentModel, items: np.ndarray | torch.Tensor, *, batch_size: int | None = None,
                 device: torch.device | str | None = None) -> np.ndarray:
    """Latent codes (the means for VAEs) of items, in batches.

    Parameters
    ----------
    items : [shape=(n, *input_shape)]
    batch_size : items per forward pass; all at once when None.
    device : where the model runs; the device of its parameters when None.

    Returns
    -------
    np.ndarray [shape=(n, *latent_shape), dtype=float32]
    """
    model.eval()
    dev = torch.device(device) if device is not None else next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.as_tensor(items, dtype=torch.float32)
    step = int(batch_size or max(len(x), 1))
    out = [model.latent(x[s: s + step].to(dev)).float().cpu() for s in range(0, len(x), step)]
    return torch.cat(out).numpy() if out else np.zeros((0,), np.float32)


def encode_sound(model: LatentModel, representation: Representation, y: np.ndarray) -> np.ndarray:
    """A sound's code as the map has it: analysed, cut into items, encoded, items averaged [shape=(d,)]."""
    analysis = representation.analyze(np.asarray(y, dtype=np.float32))
    items = item_layout.to_items(analysis.features, item_layout.layout_for(model, representation), model.input_shape)
    codes = encode_items(model, items)
    return codes.reshape(len(codes), -1).astype(np.float64).mean(axis=0)


class ClipEncoder:
    """Encodes clips as their features arrive, in forward passes that span clips.

    Clips are added in index order (:meth:`add`, :meth:`fail`); items are queued until
    ``batch_size`` of them are waiting, then encoded together (one clip of a frame model is a
    few hundred frames, too few to keep a matrix product busy). Codes go into buffers that grow
    by half again when full, so :meth:`encoding` (the clips done so far) is made of views, not
    copies: a 20,000-clip encoding can hand the map a partial result a hundred times over.
    With a ``state``, a partial encoding is passed to ``state.partial`` after the first batch
    and then whenever another ``partial_every`` clips (1 % of the set by default) are in.

    Parameters
    ----------
    n_clips : the dataset's number of clips (rows of ``clip_codes``).
    batch_size : items per batch of clips.
    threads : torch threads per chunk of at most ``chunk`` items, chosen by timing
        (:class:`models.threads.BatchThreads`); torch's current setting when None. Chunks are
        small so that a trial of a thread count that is slow here (two threads on two busy
        cores: ten times slower) costs little.
    """

    def __init__(self, model: LatentModel, representation: Representation, n_clips: int, *,
                 state: JobState | None = None, batch_size: int = 2048, chunk: int = 256,
                 threads: BatchThreads | None = None, partial_every: int | None = None) -> None:
        self.model, self.n = model, int(n_clips)
        self.layout = item_layout.layout_for(model, representation)
        self.input_shape = tuple(model.input_shape)
        self.state, self.threads = state, threads
        self.batch_size, self.chunk = max(1, int(batch_size)), max(1, int(chunk))
        self.partial_every = max(1, int(partial_every or self.n // 100))
        self.failed: list[tuple[int, str]] = []
        self.latent_shape: tuple[int, ...] = ()
        self.clip_codes: np.ndarray | None = None  # [shape=(n_clips, d)], NaN until encoded
        self._codes = np.zeros((0, 0))  # growing buffers of the item codes, filled to _filled
        self._clip = np.zeros(0, np.int64)
        self._index = np.zeros(0, np.int64)
        self._filled = 0
        self._pending: list[tuple[int, np.ndarray]] = []
        self._n_pending = 0
        self._done = 0  # clips added (encoded, queued or failed)
        self._next_partial = 0
        model.eval()

    def add(self, i: int, features: np.ndarray) -> None:
        """Queue clip ``i``'s features; encodes a batch when enough items wait.

        Raises DatasetError when the model cannot take these features at all (every clip would
        fail); any other error of cutting them into items fails this clip alone.
        """
        try:
            items = item_layout.to_items(features, self.layout, self.input_shape)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad clip must not stop the dataset
            self.fail(i, f"{type(exc).__name__}: {exc}")
            return
        self._pending.append((int(i), items))
        self._n_pending += len(items)
        self._done = int(i) + 1
        if self._n_pending >= self.batch_size:
            self.flush()

    def fail(self, i: int, reason: str) -> None:
        self.failed.append((int(i), reason))
        self._done = int(i) + 1

    @torch.inference_mode()
    def flush(self) -> None:
        """Encode what is queued (then maybe hand a partial encoding to the state)."""
        if not self._pending:
            return
        x = torch.from_numpy(np.ascontiguousarray(np.concatenate([it for _, it in self._pending]), dtype=np.float32))
        out = []
        for s in range(0, len(x), self.chunk):
            part = x[s: s + self.chunk]
            if self.threads is None:
                out.append(self.model.latent(part).float())
            else:
                with self.threads.batch(len(part)):
                    out.append(self.model.latent(part).float())
        z = torch.cat(out)
        self.latent_shape = tuple(z.shape[1:])
        codes = z.reshape(len(z), -1).numpy()
        self._grow(len(codes), codes.shape[1])
        start = self._filled
        self._codes[start: start + len(codes)] = codes
        for i, it in self._pending:
            end = start + len(it)
            self._clip[start:end] = i
            self._index[start:end] = np.arange(len(it))
            self.clip_codes[i] = self._codes[start:end].mean(axis=0)
            start = end
        self._filled = start
        self._pending.clear()
        self._n_pending = 0
        if self.state is not None and self._done >= self._next_partial:
            self._next_partial = self._done + self.partial_every
            self.state.partial(self.encoding())

    def _grow(self, n_new: int, d: int) -> None:
        if self.clip_codes is None:
            self.clip_codes = np.full((self.n, d), np.nan)
        need = self._filled + n_new
        if need <= len(self._codes):
            return
        cap = max(need, int(len(self._codes) * 1.5), 1024)
        for name, dtype, width in (("_codes", np.float64, (d,)), ("_clip", np.int64, ()), ("_index", np.int64, ())):
            old = getattr(self, name)
            new = np.empty((cap, *width), dtype)
            if self._filled:
                new[: self._filled] = old[: self._filled]
            setattr(self, name, new)  # partial encodings keep the old buffer alive, unchanged

    def encoding(self) -> Encoding | None:
        """The clips encoded so far (others' rows NaN), or None before the first batch.

        ``frame_codes`` and its index arrays are views of the buffers (their rows are never
        written again); ``clip_codes`` is a copy, since later clips fill its other rows.
        """
        if self.clip_codes is None:
            return None
        f = self._filled
        return Encoding(clip_codes=self.clip_codes.copy(), frame_codes=self._codes[:f], frame_clip=self._clip[:f],
                        frame_index=self._index[:f], latent_shape=self.latent_shape, layout=self.layout,
                        failed=list(self.failed))

    @property
    def n_done(self) -> int:
        """Clips encoded, queued or failed so far (the next one to come is this index)."""
        return self._done

    def result(self) -> Encoding:
        """The whole encoding; raises DatasetError when no clip could be encoded."""
        self.flush()
        enc = self.encoding()
        if enc is None:
            raise DatasetError("no clip of this dataset could be encoded"
                               + (f": {self.failed[0][1]}" if self.failed else ""))
        enc.clip_codes = self.clip_codes  # nothing fills it any more: no copy
        return enc


def encode_dataset(
    model: LatentModel,
    representation: Representation,
    dataset: Any,
    *,
    state: JobState | None = None,
    batch_size: int = 2048,
    features: Sequence[np.ndarray | None] | None = None,
    threads: BatchThreads | None = None,
) -> Encoding | None:
    """Encode every clip; ``None`` when ``state.should_stop()`` said so.

    ``features`` (e.g. from the feature cache, :func:`features_by_clip`) skips loading and
    analysing; ``None`` entries mark clips that failed there. Partial encodings (the clips done
    so far, in order) go to ``state.partial`` as :class:`ClipEncoder` says.

    Raises
    ------
    DatasetError
        The model cannot take this dataset's features, or no clip could be encoded.
    """
    enc = ClipEncoder(model, representation, len(dataset.clips), state=state, batch_size=batch_size, threads=threads)
    state = state or NullState()
    n = len(dataset.clips)
    for i in range(n):
        if state.should_stop():
            return None
        if features is not None and features[i] is None:
            enc.fail(i, "the sound could not be decoded")
        else:
            try:
                f = features[i] if features is not None else analyse_clip(dataset, i, representation)[1].features
            except DatasetError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the dataset
                enc.fail(i, f"{type(exc).__name__}: {exc}")
            else:
                enc.add(i, f)
        state.report((i + 1) / n, f"encoding {i + 1}/{n}")
    return enc.result()
