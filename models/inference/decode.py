"""From codes to sound: the one decoding path of the app, morphs, exports and ``latent-trainer render``.

:func:`decode_to_sound` takes codes (one held code, or a clip's trajectory of item codes), the
context of a clip they are decoded against (:class:`DecodeContext`: its length, feature shape
and the side information that may be used) and the phase method, explicitly:

* ``"original"``: the clip's own STFT phase. Only a clip's own context carries it
  (:func:`clip_context`); a code that belongs to no clip cannot have it, and asking is an error.
* an estimated method (``"pghi+gla"``, ``"gla"``, ``"pghi"``, ``"librosa"``): the phase is
  rebuilt from the decoded magnitudes; the clip's phase, if the context has it, is left out.

A representation refuses side information it does not read (``Representation.check_side``), so
nothing is silently dropped or retried. The returned :class:`Sound` says how it was made
(``phase``, ``made``).

Streaming: given ``on_block``, the samples are also handed out while they are made, the first
block as soon as the estimated phase's first chunk is reconstructed
(:mod:`models.representations.phase_stream`), and the joined blocks are the returned sound's
samples (a sound whose peak :func:`limit_peak` scales down, which only it can know at the end, is
streamed clipped at full scale instead). Methods that cannot stream hand the whole sound over once.

Which phase a click uses is one constant each: :data:`CLIP_PHASE` for a clip's own decoding,
:data:`ESTIMATED_PHASE` for everything else (empty space, held frames, morph steps).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

import librosa
import numpy as np
import torch

from models.errors import ConfigError
from models.inference import layout as item_layout
from models.inference.encode import Encoding, analyse_clip
from models.nets.base import LatentModel
from models.representations.base import Representation
from models.representations.phase import DEFAULT_METHOD, PHASE_METHODS, PhaseConfig
from models.representations.phase_stream import blocks_to
from models.threads import cpu_count, torch_threads

#: The phase of a clip's own decoding (a click on a map point): the clip's original phase.
CLIP_PHASE = "original"
#: The phase of a code that belongs to no clip (empty space, a held frame, a morph step).
ESTIMATED_PHASE = DEFAULT_METHOD
#: phase methods :func:`decode_to_sound` accepts ("default" would leave the choice implicit)
DECODE_PHASES: tuple[str, ...] = tuple(m for m in PHASE_METHODS if m != "default")
#: a -60 dBFS sine's STFT peak per unit of n_fft / 2: the display's 0 dB never sits lower, so
#: a silent sound is drawn at the floor rather than as full-scale noise
_DISPLAY_REF_FLOOR = 1e-3


def fixed_threads(n: int = 1) -> contextlib.AbstractContextManager[None]:
    """Run torch on ``n`` intra-op threads, so a decoding is the same bits on any machine.

    Phase reconstruction sums in an order that depends on torch's thread count (measured: 2e-5
    apart between 1 and 2 threads, one LSB at 16 bits), and a click, a morph step and a render
    spec of the same code promise the same samples.
    """
    return torch_threads(n)


@dataclass
class Sound:
    """A sound ready for the panel and the speakers.

    y : np.ndarray [shape=(n_samples,), dtype=float32]
    spectrogram : np.ndarray [shape=(n_bins, n_frames)] in dB, for display
    estimated : decoded from a code estimated from a map position (not a clip's own code).
    phase : the phase method it was made with (``"original"``, ``"pghi+gla"``...), ``"none"``
        for a representation without phase (waveform), ``""`` for a recording.
    made : how it was made, for people ("model magnitude, estimated phase (PGHI + 8 Griffin-Lim)").
    """

    y: np.ndarray
    sr: int
    title: str
    estimated: bool = False
    clip_index: int | None = None
    spectrogram: np.ndarray | None = None
    phase: str = ""
    made: str = ""


@dataclass(frozen=True, kw_only=True)
class DecodeContext:
    """What a decoding takes from a clip: its length, feature shape and usable side information.

    n_samples : output length in samples.
    feature_shape : the representation's feature shape for that length (what decoded items are
        laid out to, :func:`models.inference.layout.from_items`).
    side : side information for ``Representation.synthesize`` (``frame_max``, ``ref_db``,
        ``phase``): all of it for a clip's own decoding, only the envelope for a held code.
    name : the clip's name (a record).
    """

    n_samples: int
    feature_shape: tuple[int, ...]
    side: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = ""

    def envelope(self, representation: Representation) -> DecodeContext:
        """This context with only the side information any code may borrow (``envelope_keys``):
        the clip's level over time, not its phase."""
        keep = representation.envelope_keys
        return replace(self, side={k: v for k, v in self.side.items() if k in keep})


def clip_context(representation: Representation, dataset: Any, i: int) -> DecodeContext:
    """The full context of clip ``i`` (one analysis: one STFT), phase included."""
    _, analysis = analyse_clip(dataset, i, representation)
    return DecodeContext(n_samples=int(analysis.n_samples), feature_shape=tuple(np.shape(analysis.features)),
                         side=dict(analysis.side or {}), name=str(dataset.clips[i].name))


#: feature-cache entries opened for :func:`envelope_context`: (cache folder, key) -> (entry, clip -> row, lengths)
_ENTRIES: OrderedDict[tuple[str, str], tuple[Any, dict[int, int], list[int]]] = OrderedDict()
_ENTRIES_KEPT = 4


def envelope_context(representation: Representation, dataset: Any, i: int, *, cache: Any = None) -> DecodeContext:
    """Clip ``i``'s context without its phase: what an estimated-phase decoding of the clip's own
    codes uses (all of its side information but the phase; not :meth:`DecodeContext.envelope`,
    which is what a code of no clip may borrow).

    Taken from the feature cache's entry (``models.datasets.feature_cache.FeatureCache``) when it
    holds the clip: no reading, no STFT, the same values the analysis gives (the entry is that
    analysis, keyed by the dataset's files and the representation). Otherwise the clip is analysed.
    """
    if cache is not None:
        key = (str(cache.dir), cache.key(dataset, representation))
        hit = _ENTRIES.get(key)
        if hit is None:
            entry = cache.lookup(dataset, representation)
            if entry is not None:
                hit = _ENTRIES[key] = (entry, {int(c): j for j, c in enumerate(entry.indices)}, entry.n_samples)
                while len(_ENTRIES) > _ENTRIES_KEPT:
                    _ENTRIES.popitem(last=False)
        if hit is not None and int(i) in hit[1]:
            entry, rows, lengths = hit
            j = rows[int(i)]
            return DecodeContext(n_samples=int(lengths[j]), feature_shape=tuple(entry[j].shape),
                                 side={k: v for k, v in entry.side(j).items() if k != "phase"},
                                 name=str(dataset.clips[i].name))
    ctx = clip_context(representation, dataset, i)
    return replace(ctx, side={k: v for k, v in ctx.side.items() if k != "phase"})


# --- codes -> features ----------------------------------------------------------------------------
@torch.no_grad()
def decode_codes(model: LatentModel, codes: np.ndarray, latent_shape: Sequence[int]) -> np.ndarray:
    """codes [shape=(n, d)] -> items [shape=(n, *input_shape)], float32."""
    if model.training:  # eval() walks every submodule: a quarter of a millisecond per click
        model.eval()
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    z = torch.as_tensor(np.asarray(codes), dtype=torch.float32, device=dev).reshape(-1, *latent_shape)
    return model.decode(z).float().cpu().numpy()


def decode_features(model: LatentModel, representation: Representation, codes: np.ndarray, *,
                    latent_shape: Sequence[int], feature_shape: Sequence[int],
                    gains: np.ndarray | None = None) -> np.ndarray:
    """Codes -> the features of a clip of ``feature_shape`` (gains applied to every code first).

    codes : [shape=(n_items, d)] a trajectory, or [shape=(1, d)] one code held over the clip.
    """
    d = int(np.prod(latent_shape))
    codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    codes = codes.reshape(len(codes), -1)  # (n, *latent_shape) codes flatten to (n, d)
    if codes.shape[-1] != d:
        raise ConfigError(f"codes of shape {codes.shape} do not fit this model's latent of {d} values")
    if gains is not None:
        gains = np.asarray(gains, dtype=np.float64)
        if gains.shape != (d,):
            raise ConfigError(f"{gains.size} latent gains given for a latent of {d} values")
        codes = codes * gains
    layout = item_layout.layout_for(model, representation)
    if len(codes) == 1 and getattr(model, "decodes_in_time", False) and layout == item_layout.FRAMES:
        # a decoder with memory across frames (an nn~ model) holds a code by decoding it at every
        # frame; repeating one decoded frame would loop it
        codes = np.repeat(codes, int(feature_shape[0]), axis=0)
    items = decode_codes(model, codes, tuple(latent_shape))
    return item_layout.from_items(items, layout, feature_shape)


# --- the one path to sound -------------------------------------------------------------------------
def decode_to_sound(
    model: LatentModel,
    representation: Representation,
    codes: np.ndarray,
    *,
    latent_shape: Sequence[int],
    context: DecodeContext,
    phase: str,
    gains: np.ndarray | None = None,
    phase_config: PhaseConfig | None = None,
    title: str = "decoded",
    spectrogram: bool = True,
    estimated: bool = False,
    clip_index: int | None = None,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> Sound:
    """Decode codes against a clip context with an explicit phase method.

    Parameters
    ----------
    codes : np.ndarray [shape=(n_items, d) or (d,)]
        A trajectory (one code per item of the context's clip), or one code held over the clip.
    latent_shape : the model's latent shape (codes are flattened).
    context : see :class:`DecodeContext`.
    phase : one of :data:`DECODE_PHASES`.
    gains : per-unit latent gains [shape=(d,)] (Colonel's dials), or None.
    spectrogram : compute the display spectrogram (the panel needs it; a morph step does not).
    on_block : called with each block of samples [shape=(n,)] as soon as it is made (streaming
        playback; module docstring); the display spectrogram is computed after the last.

    Raises
    ------
    ConfigError
        An unknown phase method; ``"original"`` without the clip's phase in the context; side
        information the representation does not read; frame maxima of another length.
    """
    _side_for(representation, context, phase)  # refuse a wrong phase or side before decoding anything
    with fixed_threads():
        feats = decode_features(model, representation, np.atleast_2d(codes), latent_shape=latent_shape,
                                feature_shape=context.feature_shape, gains=gains)
        return sound_from_features(representation, feats, context=context, phase=phase, phase_config=phase_config,
                                   title=title, spectrogram=spectrogram, estimated=estimated, clip_index=clip_index,
                                   on_block=on_block)


def sound_from_features(
    representation: Representation,
    features: np.ndarray,
    *,
    context: DecodeContext,
    phase: str,
    phase_config: PhaseConfig | None = None,
    title: str = "decoded",
    spectrogram: bool = True,
    estimated: bool = False,
    clip_index: int | None = None,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> Sound:
    """The second half of :func:`decode_to_sound`: decoded features (already laid out as a clip of
    ``context.feature_shape``, e.g. assembled from several decodings) to a :class:`Sound`.

    Same rules: the phase method is explicit, ``"original"`` needs the context's phase, side
    information the representation does not read is refused.
    """
    side = _side_for(representation, context, phase)
    with fixed_threads(), (streaming(on_block) if on_block is not None else contextlib.nullcontext([])) as streamed:
        y = representation.synthesize(features, side=side or None, phase=phase, n_samples=context.n_samples,
                                      phase_config=phase_config)
    if on_block is not None and not streamed:  # a method that does not stream: the whole sound at once
        y = limit_peak(y)
        on_block(y)
    method = phase if "phase" in representation.side_keys else "none"
    return _finish(y, representation.sample_rate, title, spectrogram=spectrogram, phase=method,
                   made=describe(method, phase_config), estimated=estimated, clip_index=clip_index)


def sounds_from_features(
    representation: Representation,
    items: Iterable[tuple[np.ndarray, DecodeContext]],
    *,
    phase: str,
    phase_config: PhaseConfig | None = None,
    title: str = "decoded",
    spectrogram: bool = False,
    estimated: bool = False,
    workers: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[Sound] | None:
    """:func:`sound_from_features` of several ``(features, context)`` items, side by side on ``workers`` threads.

    Each item is synthesised by the same single-threaded code as one :func:`sound_from_features`
    call (torch on one thread, PGHI's kernels without the GIL), so every sound is the same bits
    as its own call, whatever ``workers`` says: a morph's steps use every core and its end step
    is still the click on its end point.

    items : a sequence (all made already: the longest start first, the slowest one bounding the
        wall time), or an iterator, whose items are taken one by one on the calling thread and
        each handed to the threads as soon as it exists: making the next one (a model's forward
        pass) overlaps the synthesis of those before it.
    workers : threads; the cores this process may use (:func:`models.threads.cpu_count`) when None.
    should_stop : polled as items finish (and, for an iterator, between two items); when it says
        so, the items not started are dropped and None is returned.
    on_done : called with each finished item's index, on the calling thread.

    Returns
    -------
    One :class:`Sound` per item, in ``items``' order, or None when stopped.
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    known = isinstance(items, Sequence)
    if known:
        items = list(items)
        sides = [_side_for(representation, ctx, phase) for _, ctx in items]  # refuse before any work
        order = sorted(range(len(items)), key=lambda k: -int(items[k][1].n_samples))
        jobs: Iterable[tuple[int, np.ndarray, DecodeContext, dict]] = (
            (k, items[k][0], items[k][1], sides[k]) for k in order)
        n_threads = max(1, min(workers or cpu_count(), len(items)))
    else:
        # each item refused (a wrong phase, side information) before its own work
        jobs = ((k, f, ctx, _side_for(representation, ctx, phase)) for k, (f, ctx) in enumerate(items))
        n_threads = max(1, workers or cpu_count())

    def one(feats: np.ndarray, ctx: DecodeContext, side: dict) -> Sound:
        if torch.get_num_threads() != 1:  # a fresh thread takes the count set below; never a guess
            raise RuntimeError("phase reconstruction must run on one torch thread")
        y = representation.synthesize(feats, side=side or None, phase=phase, n_samples=ctx.n_samples,
                                      phase_config=phase_config)
        method = phase if "phase" in representation.side_keys else "none"
        return _finish(y, representation.sample_rate, title, spectrogram=spectrogram, phase=method,
                       made=describe(method, phase_config), estimated=estimated)

    out: dict[int, Sound] = {}
    futures: dict[Any, int] = {}

    def collect(fut: Any) -> bool:
        """Take one finished item; whether to stop."""
        k = futures.pop(fut)
        out[k] = fut.result()
        if on_done is not None:
            on_done(k)
        return should_stop is not None and should_stop()

    with fixed_threads():
        # A new pool for each call: a thread takes torch's thread count (1 here) at its first op
        # and keeps it, so long-lived threads could run at another count set meanwhile.
        with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="synthesize") as pool:
            try:
                for k, feats, ctx, side in jobs:
                    futures[pool.submit(one, feats, ctx, side)] = k
                    if not known:
                        for fut in [f for f in futures if f.done()]:
                            if collect(fut):
                                return None
                        if should_stop is not None and should_stop():
                            return None
                for fut in as_completed(list(futures)):
                    if collect(fut):
                        return None
            finally:
                for fut in futures:
                    fut.cancel()
    return [out[k] for k in sorted(out)]


@contextlib.contextmanager
def streaming(on_block: Callable[[np.ndarray], None]) -> Iterator[list[int]]:
    """Inside, every single-clip decoding on this thread hands its blocks of samples to ``on_block``
    as they are made (clipped at full scale: module docstring). Yields the lengths of the blocks
    handed over: empty afterwards means the method did not stream, and the caller hands the
    finished sound over itself."""
    sent: list[int] = []

    def hand_over(block: np.ndarray) -> None:
        sent.append(len(block))
        on_block(np.clip(np.nan_to_num(np.asarray(block, dtype=np.float32)), -1.0, 1.0))

    with blocks_to(hand_over):
        yield sent


def _side_for(representation: Representation, context: DecodeContext, phase: str) -> dict[str, np.ndarray]:
    """The context's side information that ``phase`` uses, checked against what the representation reads."""
    if phase not in DECODE_PHASES:
        raise ConfigError(f"phase must be one of {', '.join(DECODE_PHASES)}, got {phase!r}")
    side = dict(context.side)
    if phase == "original" and "phase" in representation.side_keys and "phase" not in side:
        raise ConfigError(
            'phase "original" needs the phase of the clip being decoded; a code that belongs to no clip '
            f"(a map position, a held frame, a morph step) is decoded with an estimated phase, e.g. {ESTIMATED_PHASE!r}"
        )
    if phase != "original":
        side.pop("phase", None)
    representation.check_side(side)
    return side


def describe(phase: str, config: PhaseConfig | None = None) -> str:
    """How a decoded sound was made, in words ("model magnitude, estimated phase (PGHI + 8 Griffin-Lim)")."""
    cfg = config or PhaseConfig()
    if phase == "none":
        return "model waveform"
    if phase == "original":
        return "model magnitude, original phase"
    how = {
        "pghi+gla": f"PGHI + {cfg.pghi_gla_iters} Griffin-Lim",
        "pghi": "PGHI",
        "gla": f"{cfg.n_iter} fast Griffin-Lim",
        "librosa": f"{cfg.n_iter} Griffin-Lim (librosa)",
    }[phase]
    return f"model magnitude, estimated phase ({how})"


# --- what the app asks for ------------------------------------------------------------------------
def render_original(representation: Representation, dataset: Any, i: int) -> Sound:
    """Clip ``i`` as recorded, at the representation's rate."""
    y = dataset.load(i, sr=representation.sample_rate)
    return _finish(y, representation.sample_rate, dataset.clips[i].name, clip_index=i, made="the recording")


def decode_clip(model: LatentModel, representation: Representation, dataset: Any, i: int, codes: np.ndarray, *,
                latent_shape: Sequence[int], phase: str = CLIP_PHASE, gains: np.ndarray | None = None,
                spectrogram: bool = True, on_block: Callable[[np.ndarray], None] | None = None,
                context: DecodeContext | None = None) -> Sound:
    """Clip ``i``'s codes (its trajectory, or one code per clip) decoded at the clip's own length.

    The clip is analysed again for its side information (frame maxima, phase, length), which
    costs one STFT and keeps the encoding small, unless ``context`` is given
    (:func:`envelope_context`: from the feature cache). ``on_block``: streaming, see
    :func:`decode_to_sound`.
    """
    if context is None:
        context = clip_context(representation, dataset, i)
    return decode_to_sound(model, representation, codes, latent_shape=latent_shape, context=context, phase=phase,
                           gains=gains, title=f"{dataset.clips[i].name} (decoded)", clip_index=i,
                           spectrogram=spectrogram, on_block=on_block)


def render_clip(model: LatentModel, representation: Representation, dataset: Any, encoding: Encoding, i: int, *,
                gains: np.ndarray | None = None, phase: str = CLIP_PHASE, spectrogram: bool = True,
                on_block: Callable[[np.ndarray], None] | None = None, context: DecodeContext | None = None) -> Sound:
    """The model's decoding of clip ``i`` from its stored codes (times ``gains``)."""
    return decode_clip(model, representation, dataset, i, encoding.trajectory(i), latent_shape=encoding.latent_shape,
                       phase=phase, gains=gains, spectrogram=spectrogram, on_block=on_block, context=context)


def render_code(
    model: LatentModel,
    representation: Representation,
    dataset: Any,
    encoding: Encoding,
    code: np.ndarray,
    *,
    template_clip: int,
    gains: np.ndarray | None = None,
    title: str = "estimated from map position",
    estimated: bool = True,
    phase: str = ESTIMATED_PHASE,
) -> Sound:
    """Decode one code that belongs to no clip (a map position, a frame, a class centre).

    A frame model's code is one spectrum: it is held for the length of ``template_clip`` (the
    nearest clip) under that clip's envelope, as Colonel's synthesiser tiles a frame. A
    whole-clip model decodes to a clip directly, with ``template_clip``'s length.
    """
    context = clip_context(representation, dataset, template_clip).envelope(representation)
    return decode_to_sound(model, representation, np.asarray(code, dtype=np.float64).reshape(1, -1),
                           latent_shape=encoding.latent_shape, context=context, phase=phase, gains=gains,
                           title=title, estimated=estimated)


# --- display ----------------------------------------------------------------------------------------
def display_spectrogram(y: np.ndarray, sr: int, *, n_fft: int = 512, hop_length: int = 128) -> np.ndarray:
    """dB magnitude [shape=(1 + n_fft // 2, n_frames)], floored at -80 dB below the peak.

    0 dB is the peak, but never below a -60 dBFS sine's, so silence shows as the floor.
    """
    n_fft = min(n_fft, max(16, 2 ** int(np.log2(max(len(y), 16)))))
    S = np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=min(hop_length, n_fft // 2)))
    ref = max(float(np.max(S)) if S.size else 0.0, _DISPLAY_REF_FLOOR * n_fft / 2)
    return librosa.amplitude_to_db(S, ref=ref, top_db=80.0).astype(np.float32)


def limit_peak(y: np.ndarray) -> np.ndarray:
    """Mono float32, NaNs zeroed, scaled down to full scale if it overshoots: a decoder may
    overshoot, and nothing louder than full scale goes to the speakers or a file."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float32).reshape(-1))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return y / peak if peak > 1.0 else y


def _finish(y: np.ndarray, sr: int, title: str, *, spectrogram: bool = True, **kw: Any) -> Sound:
    y = limit_peak(y)
    return Sound(y=y, sr=int(sr), title=title, spectrogram=display_spectrogram(y, sr) if spectrogram else None, **kw)
