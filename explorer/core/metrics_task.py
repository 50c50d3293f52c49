"""The sound panel's metrics: the decoded sound scored against its original and its class (no Qt).

RMSE and SSIM are computed, as Natsiou scores them, on [0, 1]-scaled spectrograms: here the
panel's own dB spectrograms mapped from [-80, 0] dB to [0, 1], so the numbers describe what the
user sees. Harmonic precision/recall/F1 compare spectral peaks of the two waveforms; spectral
convergence compares their linear STFT magnitudes.

The MFCC-DTW deviation (Lionello, section 5.1; ``models.metrics.ClassDTW``) puts the decoded sound
where Lionello puts the decoded class centre: for a clip ``j`` of class ``i``,
``(dtw(x_ij, decoded) - mean_k dtw(x_ij, x_ik)) / std_k dtw(x_ij, x_ik)``. Negative: the decoding
is closer to the original than the original's class mates are, on average. An estimated sound
(clicked in empty space) has no original: it gets the class mean of that deviation over the
members of the nearest class on the map (Table 3's per-class number, with the estimate as the
centre). The class's MFCCs and their DTW matrix are computed once per class and kept
(:class:`ClassDTWCache`), so a later click in that class costs one or a few DTWs.

A measure that is undefined because a sound is silent (``models.metrics.mfcc_dtw.is_silent``)
gets the text :data:`SILENT` instead of a number: a ratio over a zero norm, the precision of no
peaks, a deviation whose spread is that of a constant MFCC frame. Silent class mates are left
out of a class's spread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import AudioLoadError
from models.inference.engine import Sound

if TYPE_CHECKING:  # the controller imports this module (its ClassDTWCache)
    from explorer.core.controller import Controller, Decoded

#: at most this many class members are scored against (evenly spread over the class): a
#: deviation needs the class's spread, not every member, and NSynth classes hold thousands
MAX_CLASS_MEMBERS = 40
#: a deviation needs a member and at least two mates
MIN_CLASS_MEMBERS = 3
DTW_PREFIX = "MFCC-DTW deviation"
#: the value shown for a measure a silent sound leaves undefined
SILENT = "n/a (silent)"


def sound_metrics(original: Sound, decoded: Sound) -> dict[str, float | str]:
    """original, decoded : engine.Sound of one clip -> {name: value or :data:`SILENT`}."""
    # the metric modules are imported at the first score, not at start-up: they load numba
    # kernels and scikit-image (half a second or more); later calls find them in sys.modules
    from models.metrics.harmonic import harmonic_prf_audio
    from models.metrics.mfcc_dtw import is_silent
    from models.metrics.spectral import rmse, spectral_convergence, ssim

    out: dict[str, float | str] = {}
    orig_silent, dec_silent = is_silent(original.y), is_silent(decoded.y)
    a, b = original.spectrogram, decoded.spectrogram
    n = min(a.shape[1], b.shape[1])
    a01, b01 = (a[:, :n] + 80.0) / 80.0, (b[:, :n] + 80.0) / 80.0
    out["RMSE (spectrogram)"] = float(rmse(a01, b01))
    if min(a01.shape) >= 3:
        out["SSIM (spectrogram)"] = float(ssim(a01, b01))
    m = min(len(original.y), len(decoded.y))
    if m >= 256:
        import librosa

        # on linear magnitudes, as the metric is defined (docs/metrics.md); one STFT each: cheap
        n_fft = min(2048, 2 ** int(np.log2(m)))
        mag = [np.abs(librosa.stft(np.asarray(y[:m], np.float32), n_fft=n_fft, hop_length=n_fft // 4))
               for y in (original.y, decoded.y)]
        out["spectral convergence"] = SILENT if orig_silent else float(spectral_convergence(*mag))
    if m >= 2048:
        if orig_silent:  # no reference peaks: recall, precision and F1 all divide by nothing
            out.update({"harmonic precision": SILENT, "harmonic recall": SILENT, "harmonic F1": SILENT})
        else:
            h = harmonic_prf_audio(original.y[:m], decoded.y[:m], sr=original.sr)
            out["harmonic precision"] = SILENT if dec_silent else float(h.precision)
            out["harmonic recall"] = float(h.recall)
            out["harmonic F1"] = float(h.f1)
    return {k: v for k, v in out.items() if isinstance(v, str) or np.isfinite(v)}


@dataclass
class ClassRef:
    """One class of one label field, as scored: its (capped) members, in clip indices."""

    field: str
    label: str
    members: np.ndarray  # clip indices of the scored members, [shape=(n,)]
    size: int  # members in the whole class

    def caption(self, *, nearest: bool = False) -> str:
        n = f"{len(self.members)} of {self.size} sounds" if len(self.members) < self.size else f"{self.size} sounds"
        return f"{DTW_PREFIX} vs {'nearest class ' if nearest else ''}{self.label} ({n})"


class ClassDTWCache:
    """MFCCs and DTW matrices of classes, computed once per (dataset, field, class, rate).

    Shared by metrics tasks on worker threads: a lock keeps two tasks from building the same
    class twice. A new dataset (another object) empties it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dataset: Any = None
        self._classes: dict[tuple, Any] = {}
        self.builds = 0  # how many classes were computed (tests check the cache is used)

    def get(self, dataset: Any, ref: ClassRef, sr: int, should_stop: Callable[[], bool] = lambda: False) -> Any:
        """``(ClassDTW, clip of each of its members)`` for ``ref`` (pairwise matrix computed), or
        None when stopped or the class is too small."""
        from models.metrics.mfcc_dtw import ClassDTW, is_silent, mfcc  # at first use (see sound_metrics)

        key = (ref.field, ref.label, int(sr), tuple(int(i) for i in ref.members))
        with self._lock:
            if dataset is not self._dataset:
                self._dataset, self._classes = dataset, {}
            if key in self._classes:
                return self._classes[key]
            mfccs, kept = [], []
            for i in ref.members:
                if should_stop():
                    return None
                try:
                    y = dataset.load(int(i), sr=int(sr))
                except AudioLoadError:
                    continue  # an unreadable member is left out of the class's spread
                if is_silent(y):
                    continue  # so is a silent one: its MFCCs are one constant frame
                mfccs.append(mfcc(y, sr=sr))
                kept.append(int(i))
            if len(mfccs) < MIN_CLASS_MEMBERS:
                return None
            cls = ClassDTW(mfccs)
            cls.pairwise  # noqa: B018 - the expensive part, done here once
            self._classes[key] = (cls, np.array(kept))
            self.builds += 1
            return self._classes[key]


def _class_of(dataset: Any, field: str, label: str) -> ClassRef:
    values = np.array([str(v) for v in dataset.labels(field)], dtype=object)
    members = np.flatnonzero(values == label)
    scored = members
    if len(members) > MAX_CLASS_MEMBERS:
        scored = members[np.linspace(0, len(members) - 1, MAX_CLASS_MEMBERS).round().astype(int)]
    return ClassRef(field=field, label=label, members=scored, size=len(members))


def _fields(controller: Controller) -> list[str]:
    """Label fields to take the class from: the colour field, then the dataset's default."""
    ds = controller.dataset
    fields = [f for f in (controller.colour_field, getattr(ds, "default_label", None))
              if f and f in getattr(ds, "label_fields", ())]
    return list(dict.fromkeys(fields))


def clip_class(controller: Controller, clip: int) -> ClassRef | None:
    """The class of ``clip`` that a deviation can be computed in (at least three members)."""
    ds = controller.dataset
    for field in _fields(controller):
        ref = _class_of(ds, field, str(ds.labels(field)[clip]))
        if ref.size >= MIN_CLASS_MEMBERS:
            return ref
    return None


def nearest_class(controller: Controller, xy: tuple[float, float]) -> ClassRef | None:
    """The class whose centre (median of its map points) is nearest to map position ``xy``."""
    ds, pts, clips = controller.dataset, np.asarray(controller.points), np.asarray(controller.point_clip)
    if len(pts) == 0 or len(pts) != len(clips):
        return None
    for field in _fields(controller):
        values = np.array([str(v) for v in ds.labels(field)], dtype=object)
        labels = values[clips]
        best, best_d = None, np.inf
        for lab in dict.fromkeys(labels):
            if (values == lab).sum() < MIN_CLASS_MEMBERS or (field == controller.colour_field and lab in controller.hidden):
                continue
            d = float(np.linalg.norm(np.median(pts[labels == lab], axis=0) - np.asarray(xy)))
            if d < best_d:
                best, best_d = lab, d
        if best is not None:
            return _class_of(ds, field, best)
    return None


def class_deviation(cache: ClassDTWCache, dataset: Any, ref: ClassRef, decoded: Sound, *,
                    clip: int | None, original: Sound | None = None,
                    should_stop: Callable[[], bool] = lambda: False) -> float | None:
    """MFCC-DTW deviation of ``decoded`` (engine.Sound) in class ``ref`` (see the module docstring).

    ``clip`` (and its ``original`` Sound) for a dataset sound; ``None`` for an estimate, which
    gets the class mean over the members. None when stopped or the class is too small.
    """
    from models.metrics.mfcc_dtw import mfcc

    got = cache.get(dataset, ref, decoded.sr, should_stop)
    if got is None:
        return None
    cls, clips = got
    centre = mfcc(decoded.y, sr=decoded.sr)
    if clip is None:
        return float(np.nanmean(cls.deviations(centre)))
    where = np.flatnonzero(clips == clip)
    if len(where):  # a member of the scored set: its row of the cached matrix, one DTW
        return cls.deviation(int(where[0]), centre)
    return cls.deviation_of(mfcc(original.y, sr=original.sr), centre)


def metrics_task(decoded: Decoded, controller: Controller | None = None, *,
                 xy: tuple[float, float] | np.ndarray | None = None) -> Callable[[Any], dict[str, float | str]]:
    """A worker task scoring ``decoded.decoded`` against its original and its class.

    A sound with no original is scored against the class nearest to ``xy`` (default: the
    selected map position), e.g. a morph step where it lands on the map.

    What the task needs from the controller is read here, on the GUI thread. The quick metrics
    go out first as a partial result (``state.partial``), the class deviation follows.
    """
    original, dec = decoded.original, decoded.decoded
    ref, clip, nearest = None, None, False
    if controller is not None and getattr(controller, "dataset", None) is not None:
        if original is not None and original.clip_index is not None:
            clip = int(original.clip_index)
            ref = clip_class(controller, clip)
        elif xy is not None:
            ref, nearest = nearest_class(controller, tuple(np.asarray(xy, float).reshape(2))), True
        elif controller.selection is not None and controller.selection.xy is not None:
            ref, nearest = nearest_class(controller, controller.selection.xy), True
    cache = controller.class_dtw if ref is not None else None
    dataset = getattr(controller, "dataset", None)

    def task(state: Any) -> dict[str, float | str]:
        from models.metrics.mfcc_dtw import is_silent

        out = sound_metrics(original, dec) if original is not None else {}
        if ref is None:
            return out
        if original is not None and is_silent(original.y):
            out[ref.caption(nearest=nearest)] = SILENT
            return out
        state.partial(dict(out))
        dev = class_deviation(cache, dataset, ref, dec, clip=clip, original=original, should_stop=state.should_stop)
        if dev is not None and np.isfinite(dev):
            out[ref.caption(nearest=nearest)] = float(dev)
        return out

    return task
