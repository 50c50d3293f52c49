"""A path rendered to sound: its steps and its continuous morph, through the one decode path (no Qt).

Every waypoint arrives as a :class:`~models.morphing.trajectory.Trajectory` (built by
:mod:`models.morphing.sources`, or read from a render spec). Step ``k`` is the time-aligned
interpolation of the two trajectories around it, decoded item by item with
:func:`models.inference.decode.decode_to_sound`, the function every click uses: with the
same phase method, a path's end step is the very sound of a click on its end point. A render
decodes the morph, then each step (the model's forward passes), and rebuilds their phases side
by side on every core as each is decoded (:func:`models.inference.decode.sounds_from_features`:
each sound on one torch thread, so the samples are those of decoding it alone, whatever the
thread count).

The continuous morph is one sound, not joined steps:

* frame and window models decode one long trajectory along which the interpolation weight
  moves item by item (:func:`models.morphing.trajectory.continuous`);
* whole-clip models (one code per clip) decode overlapping windows: codes at evenly spaced
  places along the path are decoded to features, stretched to the morph's length, and each
  output frame takes the two windows around its place on the path, weighted by distance; the
  assembled features are synthesised once (a waveform model's decoded windows are overlap-added
  with Hann grains instead).

``mode="freeze"`` keeps Colonel's synthesiser: every step holds one code (the path's code
there) over the whole note, under the interpolated envelope.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.errors import ConfigError
from models.inference import layout as item_layout
from models.inference.decode import DecodeContext, decode_codes, decode_features, decode_to_sound, limit_peak
from models.inference.decode import ESTIMATED_PHASE, describe, sounds_from_features
from models.inference.engine import JobState, NullState
from models.morphing import trajectory as tj
from models.morphing.morph import MorphPath, fixed_threads, interpolate_path, path_positions, place_back
from models.morphing.sources import grid
from models.morphing.trajectory import Trajectory

#: seconds of output between two decoded windows of a whole-clip model's continuous morph
WINDOW_SECONDS = 0.25
MAX_WINDOWS = 160
#: Hann grain of a waveform model's continuous morph, in seconds
GRAIN_SECONDS = 0.064
#: fraction of a note kept at its own speed at each end of a continuous morph (its attack, its
#: release): only the middle is drawn out (trajectory.stretch_positions)
KEEP_ENDS = 0.25


@dataclass
class MorphRender:
    """A rendered path.

    codes : [shape=(n_steps, d)] each step's mean code (where it sits in latent space).
    xy : [shape=(n_steps, 2)] the steps on the path as drawn.
    steps : one float32 sound per step (their lengths move between the ends' lengths).
    morph : the continuous morph, ``step_samples + (n - 1) * hop_samples`` long.
    trajectories : each step's trajectory (what exporting one step decodes again).
    waypoints : the waypoints' trajectories it was rendered from (what a render spec stores).
    made : how the sounds were made ("model magnitude, estimated phase (...)").
    placed : [shape=(n_steps, 2)] the decoded steps encoded again and placed on the map, or None.
    """

    codes: np.ndarray
    xy: np.ndarray
    steps: list[np.ndarray]
    morph: np.ndarray
    sr: int
    step_samples: int
    hop_samples: int
    trajectories: list[Trajectory] = field(default_factory=list)
    waypoints: list[Trajectory] = field(default_factory=list)
    made: str = ""
    placed: np.ndarray | None = None

    def step_start(self, k: int) -> int:
        """Sample of the continuous morph where step ``k``'s slot begins (its weight is passed half a step later)."""
        return int(k) * self.hop_samples


def context_of(representation: Any, traj: Trajectory) -> DecodeContext:
    """The decode context a trajectory stands for: its length, feature shape and side information."""
    return DecodeContext(n_samples=traj.n_samples, feature_shape=tuple(representation.feature_shape(traj.n_samples)),
                         side=traj.decode_side() or {})


def _held_once(traj: Trajectory) -> np.ndarray:
    """The trajectory's codes, one code held over the clip decoded once and repeated (the same bits
    as a held frame's click)."""
    codes = np.array(traj.codes)
    return codes[:1] if len(codes) > 1 and (codes == codes[0]).all() else codes


def decode_trajectory(model: Any, representation: Any, traj: Trajectory, *, latent_shape: Sequence[int],
                      phase: str = ESTIMATED_PHASE, gains: np.ndarray | None = None, title: str = "decoded",
                      spectrogram: bool = False, estimated: bool = True) -> Any:
    """One trajectory -> a :class:`models.inference.decode.Sound`, on one torch thread (same bits anywhere)."""
    codes = _held_once(traj)
    with fixed_threads():
        return decode_to_sound(model, representation, codes, latent_shape=latent_shape,
                               context=context_of(representation, traj), phase=phase, gains=gains, title=title,
                               spectrogram=spectrogram, estimated=estimated)


def trajectory_features(model: Any, representation: Any, traj: Trajectory, *,
                        latent_shape: Sequence[int]) -> tuple[np.ndarray, DecodeContext]:
    """The decoded features of one trajectory and their context: the first half of
    :func:`decode_trajectory`, whose second half several trajectories share
    (:func:`models.inference.decode.sounds_from_features`)."""
    ctx = context_of(representation, traj)
    with fixed_threads():
        feats = decode_features(model, representation, _held_once(traj), latent_shape=latent_shape,
                                feature_shape=ctx.feature_shape)
    return feats, ctx


def step_trajectories(path: MorphPath, trajectories: Sequence[Trajectory], counts: tj.Counts, *, sample_rate: int,
                      centre: np.ndarray | None = None) -> list[Trajectory]:
    """The steps of ``path`` as trajectories (before decoding)."""
    p = path.params
    if len(trajectories) != len(path.waypoints) or len(trajectories) < 2:
        raise ConfigError("a path needs one trajectory per waypoint, at least two")
    means = np.stack([t.mean for t in trajectories])
    idx, u = tj.locate(tj.path_lengths(means), np.linspace(0.0, 1.0, p.n_steps))
    n = None if p.step_duration is None else int(round(float(p.step_duration) * sample_rate))
    steps = [tj.interpolate(trajectories[i], trajectories[i + 1], float(f), counts, method=p.interpolation,
                            centre=centre, n_samples=n) for i, f in zip(idx, u)]
    if p.mode == "freeze":  # the waypoints' own codes, as the map shows them
        held = interpolate_path(path.codes, p.n_steps, method=p.interpolation, centre=centre)
        steps = [Trajectory(np.repeat(c[None], s.n_items, axis=0), s.n_samples, s.side) for c, s in zip(held, steps)]
    return steps


def render_path(model: Any, representation: Any, path: MorphPath, *, latent_shape: Sequence[int], layout: str,
                trajectories: Sequence[Trajectory], centre: np.ndarray | None = None, embedding: Any = None,
                state: JobState | None = None, phase: str = ESTIMATED_PHASE,
                workers: int | None = None) -> MorphRender | None:
    """Decode ``path`` to its steps and its continuous morph; ``None`` when stopped.

    layout : the model's item layout (:mod:`models.inference.layout`).
    trajectories : one per waypoint.
    embedding : given, the steps are also placed back on that map (:func:`morph.place_back`).
    workers : threads that rebuild the phases of the steps and the morph side by side (every
        core when None); each sound is single-threaded, so the samples do not depend on it.

    The continuous morph is decoded first and its synthesis starts at once; each step is then
    decoded (the model's forward passes, in order, on this thread) and handed to the synthesis
    threads as soon as it is, so the forward passes overlap the phases being rebuilt.
    """
    with fixed_threads():
        return _render(model, representation, path, latent_shape=tuple(latent_shape), layout=layout,
                       trajectories=list(trajectories), centre=centre, embedding=embedding,
                       state=state or NullState(), phase=phase, workers=workers)


def _render(model: Any, representation: Any, path: MorphPath, *, latent_shape: tuple[int, ...], layout: str,
            trajectories: list[Trajectory], centre: np.ndarray | None, embedding: Any, state: JobState,
            phase: str, workers: int | None) -> MorphRender | None:
    p = path.params
    sr = int(representation.sample_rate)
    counts = grid(representation, layout, model.input_shape)
    steps_t = step_trajectories(path, trajectories, counts, sample_rate=sr, centre=centre)
    share = 0.7 if embedding is not None else 0.85
    decoded = 0.1 * share  # the forward passes; the phases take the rest
    L = int(round(float(np.mean([t.n_samples for t in steps_t]))))
    overlap = min(int(round(float(p.crossfade) * L)), max(L - 1, 0))
    hop = L - overlap
    n_out = L + (p.n_steps - 1) * hop
    if state.should_stop():
        return None
    # the continuous morph first (the longest synthesis starts first), then the steps, each handed
    # to the synthesis threads as soon as its forward pass is done (the next one overlaps them)
    state.report(0.0, "decoding the continuous morph")
    waypoints = [t.frozen() for t in trajectories] if p.mode == "freeze" else trajectories
    morph_job = continuous_morph_job(model, representation, waypoints, layout=layout, latent_shape=latent_shape,
                                     n_samples=n_out, step_samples=L, hop_samples=hop, n_steps=p.n_steps,
                                     method=p.interpolation, centre=centre, phase=phase)
    queued = isinstance(morph_job, tuple)
    n_jobs = len(steps_t) + int(queued)
    finished = [0]

    def jobs() -> Iterator[tuple[np.ndarray, DecodeContext]]:
        if queued:
            yield morph_job
        for k, t in enumerate(steps_t):
            yield trajectory_features(model, representation, t, latent_shape=latent_shape)
            state.report(decoded * (k + 1) / len(steps_t) + (share - decoded) * finished[0] / n_jobs,
                         f"decoding step {k + 1}/{len(steps_t)}")

    def done(_: int) -> None:
        finished[0] += 1
        state.report(decoded + (share - decoded) * finished[0] / n_jobs,
                     f"rebuilding the phase: {finished[0]}/{n_jobs} sounds")

    sounds = sounds_from_features(representation, jobs(), phase=phase, workers=workers,
                                  should_stop=state.should_stop, on_done=done)
    if sounds is None:
        return None
    if queued:  # the morph came first
        sounds = sounds[1:] + sounds[:1]
    ys = [s.y for s in sounds]
    steps = ys[:len(steps_t)]
    morph = ys[-1] if queued else morph_job
    made = sounds[0].made if sounds else describe("none")
    codes = np.stack([t.mean for t in steps_t])
    xy = path_positions(np.stack([t.mean for t in trajectories]), path.xy, p.n_steps)
    out = MorphRender(codes=codes, xy=xy, steps=steps, morph=morph, sr=sr, step_samples=L, hop_samples=hop,
                      trajectories=steps_t, waypoints=list(trajectories), made=made)
    if embedding is not None:
        if state.should_stop():
            return None
        state.report(0.9, "placing the steps back on the map")
        out.placed = place_back(model, representation, embedding, steps)
    state.report(1.0, "done")
    return out


# --- the continuous morph ----------------------------------------------------------------------------
def continuous_morph(model: Any, representation: Any, trajectories: Sequence[Trajectory], *, layout: str,
                     latent_shape: Sequence[int], n_samples: int, step_samples: int, hop_samples: int,
                     n_steps: int, method: str = "linear", centre: np.ndarray | None = None,
                     phase: str = ESTIMATED_PHASE) -> np.ndarray:
    """One sound of ``n_samples`` whose weight moves smoothly from the first waypoint to the last."""
    job = continuous_morph_job(model, representation, trajectories, layout=layout, latent_shape=latent_shape,
                               n_samples=n_samples, step_samples=step_samples, hop_samples=hop_samples,
                               n_steps=n_steps, method=method, centre=centre, phase=phase)
    if not isinstance(job, tuple):
        return job
    sounds = sounds_from_features(representation, [job], phase=phase)
    assert sounds is not None
    return sounds[0].y


def continuous_morph_job(model: Any, representation: Any, trajectories: Sequence[Trajectory], *, layout: str,
                         latent_shape: Sequence[int], n_samples: int, step_samples: int, hop_samples: int,
                         n_steps: int, method: str = "linear", centre: np.ndarray | None = None,
                         phase: str = ESTIMATED_PHASE) -> tuple[np.ndarray, DecodeContext] | np.ndarray:
    """:func:`continuous_morph` up to its synthesis: the decoded features and their context, ready for
    :func:`models.inference.decode.sounds_from_features` beside the steps; a waveform model's morph,
    which has no phase to rebuild, comes back finished."""
    cum = tj.path_lengths(np.stack([t.mean for t in trajectories]))

    def schedule(n: int) -> np.ndarray:
        return tj.morph_schedule(n, n_samples=n_samples, step_samples=step_samples, hop_samples=hop_samples,
                                 n_steps=n_steps)

    if item_layout.has_time(layout):
        counts = grid(representation, layout, model.input_shape)
        traj = tj.continuous(trajectories, cum, counts, n_samples=n_samples, schedule=schedule, method=method,
                             centre=centre, keep=KEEP_ENDS)
        return trajectory_features(model, representation, traj, latent_shape=latent_shape)
    # a whole-clip model: decoded windows at evenly spaced places along the path
    k = int(np.clip(math.ceil(n_samples / (WINDOW_SECONDS * representation.sample_rate)) + 1, 2, MAX_WINDOWS))
    places = np.linspace(0.0, 1.0, k)
    idx, u = tj.locate(cum, places)
    parts = [tj.interpolate(trajectories[i], trajectories[i + 1], float(f), lambda n: (1, None), method=method,
                            centre=centre) for i, f in zip(idx, u)]
    if representation.kind == "waveform":
        return _overlap_add(model, representation, parts, latent_shape=latent_shape, n_samples=n_samples,
                            places=places, schedule=schedule, phase=phase)
    return _assembled(model, representation, parts, latent_shape=latent_shape, n_samples=n_samples,
                      places=places, schedule=schedule)


def _window_weights(s: np.ndarray, places: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left window index, weight of the right one) of path fractions ``s`` among evenly spaced places."""
    pos = np.clip(s, 0.0, 1.0) * (len(places) - 1)
    j = np.minimum(np.floor(pos).astype(int), len(places) - 2)
    return j, pos - j


def _assembled(model: Any, rep: Any, parts: list[Trajectory], *, latent_shape: Sequence[int], n_samples: int,
               places: np.ndarray, schedule: Any) -> tuple[np.ndarray, DecodeContext]:
    """Spectral whole-clip models: decoded feature windows stretched, blended frame by frame (to be
    synthesised once).

    Each output frame reads only its two windows, so a window is stretched at the frames that
    read it and nowhere else (every operation is per frame: the same values as stretching
    every window to the whole morph, without its (windows, frames, bins) array).
    """
    stft = rep.stft_params
    n_src = int(round(float(np.mean([t.n_samples for t in parts]))))
    src_shape = tuple(rep.feature_shape(n_src))
    natural = min(stft.n_frames(n_src), src_shape[-1])
    m_out = stft.n_frames(int(n_samples))
    items = decode_codes(model, np.stack([t.codes[0] for t in parts]), tuple(latent_shape))
    refs = [t.side.get("ref_db") for t in parts]
    top_db = float(getattr(rep.config, "top_db", 0.0) or 0.0)
    ref_out = max(float(r[0]) for r in refs) if all(r is not None for r in refs) and top_db else None
    positions = tj.stretch_positions(natural, m_out, keep=KEEP_ENDS)

    def window(i: int, rows: np.ndarray) -> np.ndarray:
        """Window ``i`` stretched to the morph's length, at output frames ``rows`` [shape=(len(rows), n_mels)]."""
        f = item_layout.from_items(items[i][None], item_layout.CLIPS, src_shape).astype(np.float64)
        f = tj.resample_at(np.moveaxis(f[..., :natural], -1, 0), positions[rows])  # (frames, n_mels)
        if ref_out is not None:  # one reference level for all: each window keeps its own loudness
            f = np.where(f > 0, np.maximum(f + (float(refs[i][0]) - ref_out) / top_db, 0.0), 0.0)
        return f

    j, w = _window_weights(schedule(m_out), places)
    frames: np.ndarray | None = None
    for jj in np.unique(j):
        rows = np.flatnonzero(j == jj)
        blend = (1.0 - w[rows])[:, None] * window(jj, rows) + w[rows][:, None] * window(jj + 1, rows)
        if frames is None:
            frames = np.empty((m_out, *blend.shape[1:]))
        frames[rows] = blend
    assert frames is not None  # m_out >= 1 frames, each between two windows
    feats = np.moveaxis(frames, 0, -1).astype(np.float32)
    side = {"ref_db": np.array([ref_out], np.float32)} if ref_out is not None else {}
    return feats, DecodeContext(n_samples=int(n_samples), feature_shape=tuple(feats.shape), side=side)


def _overlap_add(model: Any, rep: Any, parts: list[Trajectory], *, latent_shape: Sequence[int], n_samples: int,
                 places: np.ndarray, schedule: Any, phase: str) -> np.ndarray:
    """Waveform whole-clip models: Hann grains of the decoded windows, read at the note's stretched time."""
    sounds = [decode_trajectory(model, rep, t, latent_shape=latent_shape, phase=phase).y for t in parts]
    n_src = min(len(s) for s in sounds)
    g = max(16, int(GRAIN_SECONDS * rep.sample_rate)) // 2 * 2
    hop = g // 2
    win = np.hanning(g + 1)[:g]  # periodic Hann: grains at half overlap sum to one
    starts = np.arange(-hop, int(n_samples), hop)
    j, w = _window_weights(schedule(len(starts)), places)
    out = np.zeros(int(n_samples) + 2 * g)
    centres = tj.stretch_positions(n_src, int(n_samples), keep=KEEP_ENDS)
    for start, jj, ww in zip(starts, j, w):
        src = int(round(centres[int(np.clip(start + hop, 0, int(n_samples) - 1))])) - hop
        grain = np.zeros(g)
        lo, hi = max(src, 0), min(src + g, n_src)
        if hi > lo:
            grain[lo - src: hi - src] = (1.0 - ww) * sounds[jj][lo:hi] + ww * sounds[jj + 1][lo:hi]
        out[start + g: start + 2 * g] += win * grain
    return limit_peak(out[g: g + int(n_samples)])


# --- render specs ------------------------------------------------------------------------------------
def trajectories_of_spec(path: MorphPath, records: Any, template: Any, representation: Any, *, layout: str,
                         input_shape: Sequence[int]) -> tuple[MorphPath, list[Trajectory]]:
    """The path and waypoint trajectories a render spec describes.

    records : the spec's ``trajectories`` (one dict per waypoint), or None for a spec written
        before trajectories; such a spec's waypoints are their codes held under its
        ``template`` (a :class:`models.morphing.morph.Template`), which is the freeze mode.
    """
    if records is not None:
        if not isinstance(records, list) or len(records) != len(path.waypoints):
            raise ConfigError("render spec: 'trajectories' must hold one trajectory per waypoint")
        return path, [Trajectory.from_dict(d) if isinstance(d, dict) else Trajectory.from_dict({}) for d in records]
    if template is None:
        raise ConfigError("render spec: a path needs its waypoints' trajectories (or an older spec's template)")
    counts = grid(representation, layout, input_shape)
    n_items = counts(template.n_samples)[0]
    side = {} if template.frame_max is None else {tj.FRAME_KEY: np.asarray(template.frame_max, dtype=np.float64)}
    held = [Trajectory(np.repeat(np.asarray(w.code, dtype=np.float64)[None], n_items, axis=0), template.n_samples, side)
            for w in path.waypoints]
    return MorphPath(waypoints=path.waypoints, params=replace(path.params, mode="freeze"), name=path.name,
                     model_key=path.model_key, drawn=path.drawn), held
