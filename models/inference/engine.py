"""The explorer's compute, as plain functions (no Qt): encode a dataset, decode codes to sound.

Every long function takes a ``state`` with ``report(progress, message)``, ``partial(result)``
and ``should_stop()`` (Orange3's shape), so the GUI can run it on a worker and tests can call
it with :class:`NullState`.

How a model's items relate to a representation's features
----------------------------------------------------------
A frame model (Roche, Colonel) takes one spectrum frame: its ``input_shape`` equals the
features' shape without the first (time) axis, so a clip gives ``n_frames`` items and the map's
point for the clip is the mean of its frame codes. A whole-clip model (Natsiou, Lionello) takes
the clip: its features are fitted to ``input_shape`` by zero-padding or cropping along the one
axis that differs (time), and decoded features are padded/cropped back, so the decoded sound has
the clip's own length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from models.errors import DatasetError


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


# --- items <-> features ---------------------------------------------------------------------
def item_layout(feature_shape: Sequence[int], input_shape: Sequence[int], *, time_first: bool = False) -> str:
    """How a clip's features become model items.

    ``"frames"``: each row (frame) is one item. ``"chunks"``: consecutive runs of
    ``input_shape[0]`` frames are items (a sequence model on time-first features, e.g. an
    LSTM-AE on stft_frames). ``"whole"``: the clip is one item.
    """
    feature_shape, input_shape = tuple(feature_shape), tuple(input_shape)
    if len(feature_shape) == len(input_shape) + 1 and feature_shape[1:] == input_shape:
        return "frames"
    if (time_first and len(feature_shape) == len(input_shape) and feature_shape != input_shape
            and feature_shape[1:] == input_shape[1:]):
        return "chunks"
    return "whole"


def _squeeze_to(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    while len(shape) < ndim:
        shape = (1, *shape)
    return shape


def fit_axis(feature_shape: Sequence[int], input_shape: Sequence[int]) -> int | None:
    """The one axis along which features are padded/cropped to fit the model, or None.

    Raises
    ------
    DatasetError
        More than one axis differs (e.g. a log-mel model with 64 bands on 128-band features):
        no padding makes that fit.
    """
    fs = _squeeze_to(tuple(feature_shape), len(input_shape))
    if len(fs) != len(input_shape):
        raise DatasetError(f"features of shape {tuple(feature_shape)} cannot feed a model taking {tuple(input_shape)}")
    diff = [a for a, (f, m) in enumerate(zip(fs, input_shape)) if f != m]
    if len(diff) > 1:
        raise DatasetError(
            f"the model takes items of shape {tuple(input_shape)} but the dataset's features have shape "
            f"{tuple(feature_shape)}: they differ on more than the time axis"
        )
    return diff[0] if diff else None


def _pad_crop(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    n = a.shape[axis]
    if n >= size:
        return np.take(a, np.arange(size), axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, size - n)
    return np.pad(a, pad)


def to_items(features: np.ndarray, input_shape: Sequence[int], *, time_first: bool = False) -> np.ndarray:
    """Model items of one clip. features -> [shape=(n_items, *input_shape)], float32."""
    input_shape = tuple(input_shape)
    f = np.asarray(features, dtype=np.float32)
    layout = item_layout(f.shape, input_shape, time_first=time_first)
    if layout == "frames":
        return f
    if layout == "chunks":
        L = input_shape[0]
        f = _pad_crop(f, 0, -(-len(f) // L) * L)
        return f.reshape(-1, *input_shape)
    axis = fit_axis(f.shape, input_shape)
    f = f.reshape(_squeeze_to(f.shape, len(input_shape)))
    if axis is not None:
        f = _pad_crop(f, axis, input_shape[axis])
    return f[None]


def from_items(items: np.ndarray, feature_shape: Sequence[int], *, time_first: bool = False) -> np.ndarray:
    """Inverse of :func:`to_items`: decoded items back to features of ``feature_shape``.

    For frame and chunk layouts, fewer items than the clip has (one decoded code held over
    time) are tiled along time.
    """
    feature_shape = tuple(feature_shape)
    items = np.asarray(items, dtype=np.float32)
    input_shape = items.shape[1:]
    layout = item_layout(feature_shape, input_shape, time_first=time_first)
    if layout in ("frames", "chunks"):
        seq = items.reshape(-1, *feature_shape[1:])
        reps = -(-feature_shape[0] // len(seq))
        return np.tile(seq, (reps,) + (1,) * (seq.ndim - 1))[: feature_shape[0]]
    f = items[0]
    target = _squeeze_to(feature_shape, len(input_shape))
    axis = fit_axis(feature_shape, input_shape)
    if axis is not None:
        f = _pad_crop(f, axis, target[axis])
    return f.reshape(feature_shape)


# --- encoding a dataset ------------------------------------------------------------------------
@dataclass
class Encoding:
    """The codes of a dataset under one model.

    clip_codes : np.ndarray [shape=(n_clips, d)]
        One code per clip (the mean of its frame codes for frame models); rows of failed clips
        are NaN.
    frame_codes : np.ndarray [shape=(n_items, d)]
        Every item's code; ``frame_clip[j]`` / ``frame_index[j]`` say where item ``j`` comes from.
    latent_shape : the model's latent shape (codes are flattened to ``d``).
    layout : ``"frames"`` or ``"whole"``.
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


def clip_features(dataset: Any, i: int, representation: Any) -> tuple[np.ndarray, Any]:
    """Load clip ``i`` at the representation's rate and analyse it -> (y, Analysis)."""
    y = dataset.load(i, sr=representation.sample_rate)
    return y, representation.analyze(y)


@torch.no_grad()
def encode_items(model: Any, items: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """items [shape=(n, *input_shape)] -> (codes [shape=(n, d)], latent_shape); means for VAEs."""
    model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    z = model.latent(torch.as_tensor(items, dtype=torch.float32, device=dev))
    return z.reshape(len(items), -1).double().cpu().numpy(), tuple(z.shape[1:])


@torch.no_grad()
def decode_codes(model: Any, codes: np.ndarray, latent_shape: Sequence[int]) -> np.ndarray:
    """codes [shape=(n, d)] -> items [shape=(n, *input_shape)], float32."""
    model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    z = torch.as_tensor(np.asarray(codes), dtype=torch.float32, device=dev).reshape(-1, *latent_shape)
    return model.decode(z).float().cpu().numpy()


def encode_dataset(
    model: Any,
    representation: Any,
    dataset: Any,
    *,
    state: JobState | None = None,
    batch_size: int = 512,
    features: Sequence[np.ndarray | None] | None = None,
) -> Encoding | None:
    """Encode every clip; ``None`` when ``state.should_stop()`` said so.

    ``features`` (e.g. from the feature cache) skips loading and analysing; ``None`` entries
    mark clips that failed there.
    """
    state = state or NullState()
    n = len(dataset.clips)
    input_shape = tuple(model.input_shape)
    time_first = getattr(representation, "kind", "") == "stft_frames"
    per_clip: list[np.ndarray | None] = [None] * n
    failed: list[tuple[int, str]] = []
    pending: list[tuple[int, np.ndarray]] = []
    latent_shape: tuple[int, ...] = ()
    layout = "whole"

    def flush() -> None:
        nonlocal latent_shape
        if not pending:
            return
        items = np.concatenate([it for _, it in pending])
        codes, latent_shape = encode_items(model, items)
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
            if features is not None:
                f = features[i]
            else:
                _, analysis = clip_features(dataset, i, representation)
                f = analysis.features
            layout = item_layout(np.shape(f), input_shape, time_first=time_first)
            items = to_items(f, input_shape, time_first=time_first)
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


# --- gains, centres, clusters -----------------------------------------------------------------
def band_gains(d: int, edges: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Colonel's dials: one gain per contiguous band of latent units.

    edges : inner band edges as fractions of ``d`` in [0, 1] (``len(values) - 1`` of them),
        so the same dial settings apply to any latent size.
    values : one gain per band.
    returns : np.ndarray [shape=(d,)]
    """
    values = list(values)
    cuts = [0, *sorted(int(round(float(e) * d)) for e in edges), d]
    if len(cuts) != len(values) + 1:
        raise ValueError(f"{len(values)} gains need {len(values) - 1} edges, got {len(edges)}")
    g = np.ones(d)
    for k, v in enumerate(values):
        g[cuts[k]: cuts[k + 1]] = v
    return g


def class_centres(codes: np.ndarray, labels: Sequence[Any]) -> dict[Any, np.ndarray]:
    """Mean code of each class (Lionello's centres), skipping NaN rows. -> {label: [shape=(d,)]}"""
    codes = np.asarray(codes)
    labels = np.asarray(labels, dtype=object)
    ok = ~np.isnan(codes).any(axis=1)
    return {lab: codes[ok & (labels == lab)].mean(axis=0) for lab in dict.fromkeys(labels[ok])}


def kmeans_labels(codes: np.ndarray, k: int, *, random_state: int = 0) -> np.ndarray:
    """k-means cluster of each code [shape=(n,)], ints; NaN rows get -1."""
    from sklearn.cluster import KMeans

    codes = np.asarray(codes)
    ok = ~np.isnan(codes).any(axis=1)
    out = np.full(len(codes), -1)
    k = max(1, min(int(k), int(ok.sum())))
    out[ok] = KMeans(n_clusters=k, n_init="auto", random_state=random_state).fit_predict(codes[ok])
    return out


# --- decoding to sound --------------------------------------------------------------------------
@dataclass
class Sound:
    """A sound ready for the panel and the speakers.

    y : np.ndarray [shape=(n_samples,), dtype=float32]
    spectrogram : np.ndarray [shape=(n_bins, n_frames)] in dB, for display
    """

    y: np.ndarray
    sr: int
    title: str
    estimated: bool = False
    clip_index: int | None = None
    spectrogram: np.ndarray | None = None


def display_spectrogram(y: np.ndarray, sr: int, *, n_fft: int = 512, hop_length: int = 128) -> np.ndarray:
    """dB magnitude [shape=(1 + n_fft // 2, n_frames)], floored at -80 dB below the peak."""
    import librosa

    n_fft = min(n_fft, max(16, 2 ** int(np.log2(max(len(y), 16)))))
    S = np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=min(hop_length, n_fft // 2)))
    return librosa.amplitude_to_db(S, ref=np.max, top_db=80.0).astype(np.float32)


def _finish(y: np.ndarray, sr: int, title: str, **kw: Any) -> Sound:
    y = np.nan_to_num(np.asarray(y, dtype=np.float32).reshape(-1))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 1.0:  # a decoder may overshoot; never send more than full scale to the speakers
        y = y / peak
    return Sound(y=y, sr=int(sr), title=title, spectrogram=display_spectrogram(y, sr), **kw)


def _time_first(representation: Any) -> bool:
    return getattr(representation, "kind", "") == "stft_frames"


def synthesize(representation: Any, features: np.ndarray, side: dict | None, n_samples: int | None) -> np.ndarray:
    return np.asarray(representation.synthesize(features, side=side, n_samples=n_samples), dtype=np.float32)


def render_original(representation: Any, dataset: Any, i: int) -> Sound:
    y = dataset.load(i, sr=representation.sample_rate)
    return _finish(y, representation.sample_rate, dataset.clips[i].name, clip_index=i)


def render_clip(
    model: Any,
    representation: Any,
    dataset: Any,
    encoding: Encoding,
    i: int,
    *,
    gains: np.ndarray | None = None,
) -> Sound:
    """The model's decoding of clip ``i`` (its stored codes times ``gains``), at its own length.

    The clip is analysed again for its side information (frame maxima, phase, length), which
    costs one STFT and keeps the encoding small.
    """
    _, analysis = clip_features(dataset, i, representation)
    codes = encoding.frame_codes[encoding.frame_clip == i]
    if gains is not None:
        codes = codes * gains
    items = decode_codes(model, codes, encoding.latent_shape)
    feats = from_items(items, np.shape(analysis.features), time_first=_time_first(representation))
    y = synthesize(representation, feats, analysis.side, analysis.n_samples)
    return _finish(y, representation.sample_rate, f"{dataset.clips[i].name} (decoded)", clip_index=i)


def render_code(
    model: Any,
    representation: Any,
    dataset: Any,
    encoding: Encoding,
    code: np.ndarray,
    *,
    template_clip: int,
    gains: np.ndarray | None = None,
    title: str = "estimated from map position",
    estimated: bool = True,
) -> Sound:
    """Decode one code that belongs to no clip (a map position, a frame, a class centre).

    A frame model's code is one spectrum: it is held for the length of ``template_clip`` (the
    nearest clip) under that clip's frame-level envelope, as Colonel's synthesizer tiles a frame;
    the phase is the representation's own estimate, not the clip's. A whole-clip model decodes
    to a clip directly, with ``template_clip``'s length.
    """
    _, analysis = clip_features(dataset, template_clip, representation)
    code = np.asarray(code, dtype=np.float64).reshape(1, -1)
    if gains is not None:
        code = code * gains
    items = decode_codes(model, code, encoding.latent_shape)
    feats = from_items(items, np.shape(analysis.features), time_first=_time_first(representation))
    side = None
    if encoding.layout in ("frames", "chunks"):
        side = {k: v for k, v in (analysis.side or {}).items() if k == "frame_max"} or None
    try:
        y = synthesize(representation, feats, side, analysis.n_samples)
    except (KeyError, TypeError, ValueError):
        y = synthesize(representation, feats, None, analysis.n_samples)
    return _finish(y, representation.sample_rate, title, estimated=estimated)
