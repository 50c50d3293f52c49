"""How a clip's features become model items, and decoded items become a clip's features again.

One rule for the trainer (:mod:`trainer.data`) and the app (:mod:`models.inference.encode`,
:mod:`models.inference.decode`), so that the items a model is trained on and the items the app
feeds it for the same clip are the same arrays. The layout is decided from the model and the
representation (:func:`layout_for`), never guessed from array shapes:

``"frames"``
    A time-first representation (``Representation.time_first``: features ``(n_frames, n_bins)``)
    and a frame model (Roche, Colonel): every frame is an item ``(n_bins,)``.
``"windows"``
    A time-first representation and a sequence model (``sequence = True``, Roche's LSTM-AE):
    runs of ``seq_len = input_shape[0]`` consecutive frames, ``(seq_len, n_bins)``. Windows start
    every ``hop`` frames (the trainer's ``train.seq_hop``; ``seq_len`` by default and always in
    the app, so decoded windows tile the clip), and the clip is padded with zero frames until
    every frame lies in a window.
``"clips"``
    Any other representation (log-mel ``(n_mels, n_frames)``, waveform ``(n_samples,)``): the
    clip is one item, zero-padded or cropped along its time axis (the last) to the model's input
    length; every other axis must equal the model's.

:func:`from_items` inverts :func:`to_items` for decoded items: frames and windows are laid end to
end and cut to the clip's frame count (fewer items than the clip has, e.g. one code held for the
whole note, are repeated), a clip item is padded or cropped back to the clip's own length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.arrays import fit_length
from models.errors import ConfigError, DatasetError

FRAMES = "frames"
WINDOWS = "windows"
CLIPS = "clips"
LAYOUTS: tuple[str, ...] = (FRAMES, WINDOWS, CLIPS)
#: names earlier versions of the app wrote into export specs
_LEGACY_NAMES = {"whole": CLIPS, "chunks": WINDOWS}


def layout_for(model: Any, representation: Any) -> str:
    """The layout of ``model``'s items on ``representation``'s features.

    Parameters
    ----------
    model : LatentModel or its class
        Only its class attribute ``sequence`` is read (a sequence model takes windows).
    representation : Representation or its class
        Only its class attribute ``time_first`` is read.
    """
    return layout_of(time_first=bool(representation.time_first), sequence=bool(getattr(model, "sequence", False)))


def layout_of(*, time_first: bool, sequence: bool) -> str:
    """The rule itself: time-first features give frames (windows for a sequence model), others clips."""
    if not time_first:
        return CLIPS
    return WINDOWS if sequence else FRAMES


def parse_layout(name: str) -> str:
    """A layout name as written in a file (export specs of earlier versions included)."""
    name = _LEGACY_NAMES.get(name, name)
    if name not in LAYOUTS:
        raise ConfigError(f"unknown item layout {name!r}; known: {', '.join(LAYOUTS)}")
    return name


def has_time(layout: str) -> bool:
    """Whether items have a place in time (frames, windows), so a clip has a trajectory of codes."""
    return parse_layout(layout) != CLIPS


# --- lengths ---------------------------------------------------------------------------------------
def common_length(features: Sequence[np.ndarray], *, axis: int = -1) -> int:
    """The most common size along ``axis`` (ties: the largest), so a stray long file does not set it."""
    counts = Counter(int(np.shape(f)[axis]) for f in features)
    if not counts:
        raise DatasetError("no features to measure")
    return max(counts, key=lambda k: (counts[k], k))


def window_starts(n_frames: int, seq_len: int, hop: int) -> list[int]:
    """First frame of every window: every ``hop`` frames until the last frame is covered."""
    if seq_len < 1 or hop < 1:
        raise ConfigError(f"windows need seq_len >= 1 and hop >= 1, got {seq_len} and {hop}")
    starts = [0]
    while starts[-1] + seq_len < n_frames:
        starts.append(starts[-1] + hop)
    return starts


def _aligned(shape: Sequence[int], ndim: int) -> tuple[int, ...]:
    # a clip item may carry leading axes of size 1 (a channel) that the features lack, or the reverse
    shape = tuple(int(s) for s in shape)
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    while len(shape) < ndim:
        shape = (1, *shape)
    return shape


# --- checks -----------------------------------------------------------------------------------
def check_fits(layout: str, feature_shape: Sequence[int], input_shape: Sequence[int]) -> None:
    """Refuse features that no layout of this kind can feed to a model taking ``input_shape``.

    Raises
    ------
    DatasetError
        Frames of another width; for clips, a difference on any axis but time (a log-mel
        model with 64 bands on 128-band features): no padding makes that fit.
    """
    layout = parse_layout(layout)
    fs, ins = tuple(int(s) for s in feature_shape), tuple(int(s) for s in input_shape)
    if layout == CLIPS:
        aligned = _aligned(fs, len(ins))
        if len(aligned) != len(ins) or aligned[:-1] != ins[:-1]:
            raise DatasetError(
                f"the model takes items of shape {ins} but the dataset's features have shape {fs}: "
                "they differ on more than the time axis"
            )
        return
    ok = fs[1:] == ins if layout == FRAMES else (len(fs) == len(ins) and fs[1:] == ins[1:])
    if not ok:
        raise DatasetError(f"features of shape {fs} cannot feed a model taking {layout} of shape {ins}")


# --- features <-> items -------------------------------------------------------------------------
def to_items(features: np.ndarray, layout: str, input_shape: Sequence[int], *, hop: int | None = None) -> np.ndarray:
    """The model items of one clip.

    Parameters
    ----------
    features : np.ndarray
        One clip in the representation's layout.
    layout : one of :data:`LAYOUTS`
    input_shape : the model's item shape
    hop : frames between window starts (``"windows"`` only); ``input_shape[0]`` when None.

    Returns
    -------
    np.ndarray [shape=(n_items, *input_shape), dtype=float32]
    """
    layout, input_shape = parse_layout(layout), tuple(int(s) for s in input_shape)
    f = np.asarray(features, dtype=np.float32)
    check_fits(layout, f.shape, input_shape)
    if layout == FRAMES:
        return f
    if layout == WINDOWS:
        seq_len = input_shape[0]
        starts = window_starts(len(f), seq_len, int(hop or seq_len))
        f = fit_length(f, starts[-1] + seq_len, axis=0)
        return np.stack([f[s: s + seq_len] for s in starts])
    f = f.reshape(_aligned(f.shape, len(input_shape)))
    return fit_length(f, input_shape[-1], axis=-1)[None]


def from_items(items: np.ndarray, layout: str, feature_shape: Sequence[int]) -> np.ndarray:
    """Decoded items back to the features of a clip of ``feature_shape`` (inverse of :func:`to_items`).

    items : np.ndarray [shape=(n_items, *input_shape)]
        Non-overlapping windows (the app's hop); one item held over the clip is repeated.
    returns : np.ndarray [shape=feature_shape, dtype=float32]
    """
    layout, feature_shape = parse_layout(layout), tuple(int(s) for s in feature_shape)
    items = np.asarray(items, dtype=np.float32)
    if layout in (FRAMES, WINDOWS):
        seq = items.reshape(-1, *feature_shape[1:])
        reps = -(-feature_shape[0] // max(len(seq), 1))
        return np.tile(seq, (reps,) + (1,) * (seq.ndim - 1))[: feature_shape[0]]
    f = items[0]
    target = _aligned(feature_shape, f.ndim)
    return fit_length(f, target[-1], axis=-1).reshape(feature_shape)


def input_shape_for(features: Sequence[np.ndarray], layout: str, *, seq_len: int = 0) -> tuple[int, ...]:
    """The ``input_shape`` a model trained on these clips' features takes.

    Frames: one frame's shape; windows: ``(seq_len, n_bins)``; clips: the features' shape with
    the time axis at :func:`common_length`.
    """
    layout = parse_layout(layout)
    if not features:
        raise DatasetError("no training clip could be analysed")
    f = np.asarray(features[0])
    if layout == FRAMES:
        return tuple(int(s) for s in f.shape[1:])
    if layout == WINDOWS:
        if seq_len < 1:
            raise ConfigError(f"a sequence model needs input_shape[0] (seq_len) >= 1, got {seq_len}")
        return (int(seq_len), *(int(s) for s in f.shape[1:]))
    return (*(int(s) for s in f.shape[:-1]), common_length(features, axis=-1))
