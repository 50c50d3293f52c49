"""Whether a model can read a dataset's sounds, and what happens to them on the way. No Qt.

A model does not care at which rate a dataset was recorded: every clip is loaded at the
*model's* rate (``dataset.load(i, sr=representation.sample_rate)`` resamples once, and the
feature cache keys on the representation, so the analysed features are kept per rate). What
can truly not work is refused with the reason:

* the checkpoint's representation is not the kind its model consumes (a damaged checkpoint);
* the features differ from the model's items on more than the time axis, so no padding or
  cropping can make a clip fit (:func:`models.inference.layout.check_fits`);
* every clip is too short to be analysed at the model's rate.

Everything else is accepted; :func:`check_fit` returns notes a user may want to know (clips
resampled from another rate, clips cut to a whole-clip model's length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from models.audio import MIN_SAMPLES
from models.errors import CheckpointError, DatasetError
from models.inference import layout


class _Loaded(Protocol):
    label: str
    model: Any
    representation: Any


@dataclass(frozen=True)
class FitReport:
    """What reading this dataset with this model does to its sounds.

    notes : sentences for the status bar (empty when the clips are read as they are).
    resampled_from : the dataset's native rates that differ from the model's.
    cropped : how many clips are longer than a whole-clip model's input (their ends are cut).
    layout : how the model takes the clips (:data:`models.inference.layout.LAYOUTS`).
    """

    notes: tuple[str, ...] = ()
    resampled_from: tuple[int, ...] = ()
    cropped: int = 0
    layout: str = layout.FRAMES


def _clip_lengths(dataset: Any, model_rate: int) -> list[int]:
    """Each clip's length in samples at ``model_rate``, from header facts (0 when unknown)."""
    out = []
    cap = getattr(dataset, "max_duration", None)
    for c in dataset.clips:
        frames = int(c.meta.get("frames") or 0)
        sr = int(c.meta.get("sample_rate") or dataset.sample_rate or model_rate)
        if not frames:
            out.append(0)
            continue
        n = int(round(frames * model_rate / sr))
        if cap:
            n = min(n, int(cap * model_rate))
        out.append(n)
    return out


def _is_cut(rep: Any, input_shape: tuple[int, ...], n: int) -> bool:
    """Whether a clip of ``n`` samples loses its end on the way into a whole-clip model."""
    fixed = getattr(getattr(rep, "config", None), "n_samples", None)
    if rep.kind == "waveform" and fixed:
        return n > int(fixed)  # the representation itself cuts raw audio to its length
    stft = getattr(rep, "stft_params", None)
    if stft is not None:  # a fixed frame count (log-mel's n_frames) also cuts: count the STFT's own
        return int(stft.n_frames(n)) > int(input_shape[-1])
    return int(tuple(rep.feature_shape(n))[-1]) > int(input_shape[-1])  # time is the last axis


def check_fit(lm: _Loaded, dataset: Any) -> FitReport:
    """Refuse a model that cannot read this dataset, with a message a user understands.

    Parameters
    ----------
    lm : a loaded model (``label``, ``model`` with ``input_shape``, ``representation``).
    dataset : a :class:`models.datasets.base.Dataset`.

    Returns
    -------
    FitReport
        How the clips will be read (resampling, cropping).

    Raises
    ------
    CheckpointError
        A representation the model does not consume, features whose shape differs on more
        than time, or clips all too short for the model's analysis.
    """
    rep, model = lm.representation, lm.model
    rate = int(rep.sample_rate)
    consumes = getattr(model, "consumes", "")
    if consumes and consumes != rep.kind:  # no model consumes "stft_sequence": the LSTM reads stft_frames
        raise CheckpointError(f"{lm.label} consumes {consumes!r} features but carries a {rep.kind!r} representation")
    if not dataset.clips:
        return FitReport()
    rates = sorted({int(c.meta.get("sample_rate") or dataset.sample_rate or rate) for c in dataset.clips} - {rate})
    notes = []
    if rates:
        shown = ", ".join(f"{r} Hz" for r in rates)
        notes.append(f"clips resampled from {shown} to the model's {rate} Hz")
    known = [n for n in _clip_lengths(dataset, rate) if n]
    if known and max(known) < MIN_SAMPLES:
        raise CheckpointError(
            f"{lm.label} cannot read these clips: at its {rate} Hz the longest is {max(known)} samples, "
            f"at least {MIN_SAMPLES} are needed"
        )
    n = max(known) if known else rate
    input_shape = tuple(int(d) for d in model.input_shape)
    items = layout.layout_for(model, rep)
    try:
        layout.check_fits(items, tuple(rep.feature_shape(n)), input_shape)
    except DatasetError as exc:
        raise CheckpointError(f"{lm.label} does not fit this dataset's sounds: {exc}") from None
    cropped = 0
    if items == layout.CLIPS:
        cropped = sum(1 for k in known if _is_cut(rep, input_shape, k))
        if cropped:
            notes.append(f"{cropped} of {len(dataset.clips)} clips are longer than the model's input and are cut")
    return FitReport(notes=tuple(notes), resampled_from=tuple(rates), cropped=cropped, layout=items)
