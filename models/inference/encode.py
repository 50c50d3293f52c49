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


def encode_dataset(
    model: LatentModel,
    representation: Representation,
    dataset: Any,
    *,
    state: JobState | None = None,
    batch_size: int = 512,
    features: Sequence[np.ndarray | None] | None = None,
) -> Encoding | None:
    """Encode every clip; ``None`` when ``state.should_stop()`` said so.

    ``features`` (e.g. from the feature cache, :func:`features_by_clip`) skips loading and
    analysing; ``None`` entries mark clips that failed there.

    Raises
    ------
    DatasetError
        The model cannot take this dataset's features, or no clip could be encoded.
    """
    state = state or NullState()
    n = len(dataset.clips)
    input_shape = tuple(model.input_shape)
    layout = item_layout.layout_for(model, representation)
    per_clip: list[np.ndarray | None] = [None] * n
    failed: list[tuple[int, str]] = []
    pending: list[tuple[int, np.ndarray]] = []
    latent_shape: tuple[int, ...] = ()

    def flush() -> None:
        nonlocal latent_shape
        if not pending:
            return
        items = np.concatenate([it for _, it in pending])
        z = encode_items(model, items)
        latent_shape = tuple(z.shape[1:])
        codes = z.reshape(len(items), -1).astype(np.float64)
        start = 0
        for i, it in pending:
            per_clip[i] = codes[start: start + len(it)]
            start += len(it)
        pending.clear()

    n_pending = 0
    for i in range(n):
        if state.should_stop():
            return None
        if features is not None and features[i] is None:
            failed.append((i, "the sound could not be decoded"))
            continue
        try:
            f = features[i] if features is not None else analyse_clip(dataset, i, representation)[1].features
            items = item_layout.to_items(f, layout, input_shape)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the dataset
            failed.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        pending.append((i, items))
        n_pending += len(items)
        if n_pending >= batch_size:
            flush()
            n_pending = 0
        state.report((i + 1) / n, f"encoding {i + 1}/{n}")
    flush()
    if all(c is None for c in per_clip):
        raise DatasetError("no clip of this dataset could be encoded" + (f": {failed[0][1]}" if failed else ""))
    d = next(c.shape[1] for c in per_clip if c is not None)
    clip_codes = np.full((n, d), np.nan)
    frames, fclip, fidx = [], [], []
    for i, c in enumerate(per_clip):
        if c is None:
            continue
        clip_codes[i] = c.mean(axis=0)
        frames.append(c)
        fclip.append(np.full(len(c), i))
        fidx.append(np.arange(len(c)))
    return Encoding(
        clip_codes=clip_codes,
        frame_codes=np.concatenate(frames),
        frame_clip=np.concatenate(fclip),
        frame_index=np.concatenate(fidx),
        latent_shape=latent_shape,
        layout=layout,
        failed=failed,
    )
