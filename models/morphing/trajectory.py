"""A clip as a trajectory of codes over time, and the morphs between trajectories (no Qt, no torch).

A frame model (Roche, Colonel) encodes every STFT frame of a note: the codes over time *are*
the note (its attack, its vibrato, its decay). Decoding one mean code held over the whole note
gives a static drone (measured on the demo: spectral-centroid variation 0.010 against the
note's 0.145). So a morph here moves between trajectories:

* a clip's trajectory is its frame codes, with its frame-level envelope (``frame_max``) and
  its length;
* a class centre is the barycentre of its members' trajectories (each resampled to a common
  length and averaged item by item: a time-normalised mean, as the notes of a class start
  together) or their medoid (the member nearest to all others: a real note);
* an empty-space position blends the trajectories of its nearest clips, with weights that go
  to zero at the next neighbour's distance, so the sound changes smoothly with the position;
* step ``u`` between two trajectories resamples both to the step's length and interpolates
  them item by item (linear or slerp), so a step is a note that evolves like its ends;
* a continuous morph is one long trajectory along which the weight moves smoothly, item by item.

Time normalisation: item ``j`` of ``n`` sits at time ``j / (n - 1)`` of the note, and resampling
interpolates linearly between neighbouring items. A trajectory resampled to its own length is
returned unchanged, which is what makes a path's end step the very sound of its end point.
Dynamic time warping on the codes is not offered: the notes this app morphs are onset-aligned
(every clip starts at its attack), where the time-normalised mean already aligns them.

A whole-clip model (Natsiou, Lionello) has one code per clip: its trajectory has one item,
and the same functions reduce to plain code arithmetic.

``counts`` arguments map a length in samples to ``(n_items, n_frames)``: how many model items
and envelope frames a sound of that length has (``n_frames`` is None without an envelope).
:func:`models.morphing.morph.grid` builds it from a representation and a layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.errors import ConfigError

Counts = Callable[[int], tuple[int, int | None]]
INTERPOLATIONS = ("linear", "spherical")
#: how many nearest clips an empty-space position blends (the next one sets where weights reach 0)
NEIGHBOURS = 4
#: the per-frame side information that follows the codes in time
FRAME_KEY = "frame_max"


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Codes over time, the side information they are decoded with, and the length of the sound.

    codes : np.ndarray [shape=(n_items, d)], float64; one row for a whole-clip model.
    n_samples : length of the sound the trajectory stands for.
    side : dict of str to np.ndarray
        What resynthesis needs beyond the features, never the phase: ``frame_max``
        [shape=(n_frames,)] (a frame model's per-frame normalisation, the note's envelope) is
        resampled with the codes; per-clip values (log-mel's ``ref_db``, shape (1,)) are mixed.
    """

    codes: np.ndarray
    n_samples: int
    side: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        codes = np.array(self.codes, dtype=np.float64, copy=True)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or len(codes) == 0 or not np.isfinite(codes).all():
            raise ConfigError(f"a trajectory needs finite codes of shape (items, d), got {np.shape(self.codes)}")
        if int(self.n_samples) <= 0:
            raise ConfigError(f"a trajectory needs a positive length, got {self.n_samples}")
        codes.setflags(write=False)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "n_samples", int(self.n_samples))
        side = {}
        for k, v in dict(self.side or {}).items():
            if k == "phase":
                continue  # a clip's own phase is a reference, never part of what a morph decodes
            a = np.array(v, dtype=np.float64, copy=True).reshape(-1)
            if len(a) == 0 or not np.isfinite(a).all():
                raise ConfigError(f"a trajectory's side[{k!r}] must hold finite values")
            a.setflags(write=False)
            side[str(k)] = a
        object.__setattr__(self, "side", side)

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def envelope(self) -> np.ndarray | None:
        """The frame maxima [shape=(n_frames,)] of a frame model's trajectory, else None."""
        return self.side.get(FRAME_KEY)

    @property
    def mean(self) -> np.ndarray:
        """The clip's point on the map: the mean of its item codes [shape=(d,)]."""
        return self.codes.mean(axis=0)

    def resampled(self, n_samples: int, counts: Counts) -> Trajectory:
        """This trajectory stretched (time-normalised) to ``n_samples``; itself at its own length."""
        n_samples = int(n_samples)
        n_items, n_frames = counts(n_samples)
        env = self.envelope
        if n_samples == self.n_samples and n_items == self.n_items and (
                env is None or n_frames is None or n_frames == len(env)):
            return self
        side = dict(self.side)
        if env is not None:
            if n_frames is None:
                side.pop(FRAME_KEY)
            else:
                side[FRAME_KEY] = resample(env, n_frames)
        return Trajectory(resample(self.codes, n_items), n_samples, side)

    def frozen(self) -> Trajectory:
        """The mean code held for the whole length, same side information (Colonel's synthesiser)."""
        return Trajectory(np.repeat(self.mean[None], self.n_items, axis=0), self.n_samples, self.side)

    def decode_side(self) -> dict[str, np.ndarray] | None:
        """The side information in the representation's dtype, for synthesis (None when empty)."""
        return {k: v.astype(np.float32) for k, v in self.side.items()} or None

    def to_dict(self) -> dict[str, Any]:
        return {"codes": self.codes.tolist(), "n_samples": self.n_samples,
                "side": {k: v.tolist() for k, v in self.side.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        try:
            side = {str(k): np.asarray(v, dtype=np.float64) for k, v in dict(d.get("side") or {}).items()}
            return cls(np.asarray(d["codes"], dtype=np.float64), int(d["n_samples"]), side)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not a trajectory: {exc}") from None


def _mix_side(parts: Sequence[Trajectory], w: np.ndarray) -> dict[str, np.ndarray]:
    """Side information mixed with the same weights (keys every part has; lengths already equal)."""
    keys = set.intersection(*(set(p.side) for p in parts)) if parts else set()
    out = {}
    for k in sorted(keys):
        if len({len(p.side[k]) for p in parts}) != 1:
            continue
        same = all(np.array_equal(p.side[k], parts[0].side[k]) for p in parts[1:])
        # one envelope shared by all parts stays that envelope exactly (no rounding in the mix)
        out[k] = parts[0].side[k] if same else sum(wi * p.side[k] for wi, p in zip(w, parts))
    return out


# --- resampling and mixing ---------------------------------------------------------------------------
def resample(x: np.ndarray, n: int) -> np.ndarray:
    """Time-normalised linear resampling along axis 0. x [shape=(m, ...)] -> [shape=(n, ...)].

    The first and last items are kept exactly; ``n == m`` returns a copy of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    m, n = len(x), int(n)
    if n < 1 or m < 1:
        raise ConfigError(f"cannot resample {m} items to {n}")
    if n == m:
        return x.copy()
    if m == 1:
        return np.repeat(x, n, axis=0)
    if n == 1:
        return x.mean(axis=0, keepdims=True)
    pos = np.arange(n) * ((m - 1) / (n - 1))
    lo = np.minimum(np.floor(pos).astype(int), m - 2)
    frac = (pos - lo).reshape((n,) + (1,) * (x.ndim - 1))
    out = (1.0 - frac) * x[lo] + frac * x[lo + 1]
    out[-1] = x[-1]
    return out


def stretch_positions(m: int, n: int, *, keep: float = 0.0) -> np.ndarray:
    """Where each of ``n`` output items reads a sequence of ``m`` (fractional indices) [shape=(n,)].

    keep : fraction of the source kept at its own speed at each end when stretching (``n > m``):
        a note's attack and release keep their durations and only its middle is drawn out, so
        a long morph is one long note rather than a slowed-down one. 0: uniform stretching.
    """
    m, n = int(m), int(n)
    if n <= 1 or m <= 1:
        return np.zeros(max(n, 0))
    j = np.arange(n, dtype=np.float64)
    e = float(np.clip(keep, 0.0, 0.5)) * (m - 1)
    if n <= m or e <= 0.0:
        return j * ((m - 1) / (n - 1))
    mid_out, mid_src = (n - 1) - 2.0 * e, (m - 1) - 2.0 * e
    return np.where(j <= e, j, np.where(j >= (n - 1) - e, j - (n - m),
                                        e + (j - e) * (mid_src / max(mid_out, 1e-12))))


def resample_at(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``x`` [shape=(m, ...)] read at fractional indices ``pos`` (linear) [shape=(len(pos), ...)]."""
    x = np.asarray(x, dtype=np.float64)
    pos = np.clip(np.asarray(pos, dtype=np.float64), 0.0, len(x) - 1)
    if len(x) == 1:
        return np.repeat(x, len(pos), axis=0)
    lo = np.minimum(np.floor(pos).astype(int), len(x) - 2)
    frac = (pos - lo).reshape((len(pos),) + (1,) * (x.ndim - 1))
    return (1.0 - frac) * x[lo] + frac * x[lo + 1]


def stretched(t: Trajectory, n_samples: int, counts: Counts, *, keep: float) -> Trajectory:
    """``t`` drawn out to ``n_samples`` with its ends kept at their own speed (:func:`stretch_positions`)."""
    n_items, n_frames = counts(int(n_samples))
    side = dict(t.side)
    env = t.envelope
    if env is not None:
        if n_frames is None:
            side.pop(FRAME_KEY)
        else:
            side[FRAME_KEY] = resample_at(env, stretch_positions(len(env), n_frames, keep=keep))
    codes = resample_at(t.codes, stretch_positions(t.n_items, n_items, keep=keep))
    return Trajectory(codes, int(n_samples), side)


def mix(trajectories: Sequence[Trajectory], weights: Sequence[float], counts: Counts, *,
        n_samples: int | None = None) -> Trajectory:
    """The weighted mean of trajectories, each resampled to a common length first.

    n_samples : the mix's length; default the weighted mean of the lengths. One weight of 1
        (all others 0) returns that trajectory exactly.
    """
    if not trajectories:
        raise ConfigError("nothing to mix: no trajectory")
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(trajectories) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError("mixing needs one non-negative weight per trajectory, not all zero")
    w = w / w.sum()
    if n_samples is None:
        n_samples = int(round(float(np.dot(w, [t.n_samples for t in trajectories]))))
    live = np.flatnonzero(w > 0)
    if len(live) == 1:
        return trajectories[int(live[0])].resampled(n_samples, counts)
    parts = [trajectories[int(i)].resampled(n_samples, counts) for i in live]
    codes = sum(w[i] * p.codes for i, p in zip(live, parts))
    return Trajectory(codes, n_samples, _mix_side(parts, w[live]))


def barycentre(trajectories: Sequence[Trajectory], counts: Counts) -> Trajectory:
    """Time-normalised mean of a class's trajectories (Lionello's class centre, over time)."""
    return mix(trajectories, np.ones(len(trajectories)), counts)


def distances(trajectories: Sequence[Trajectory], counts: Counts) -> np.ndarray:
    """RMS code distance between every pair, at the median length [shape=(n, n)]."""
    if not trajectories:
        raise ConfigError("no trajectory to compare")
    n = int(np.median([t.n_samples for t in trajectories]))
    X = np.stack([t.resampled(n, counts).codes.reshape(-1) for t in trajectories])
    sq = (X**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    return np.sqrt(d2 / max(1, X.shape[1] // trajectories[0].codes.shape[1]))


def medoid(trajectories: Sequence[Trajectory], counts: Counts) -> int:
    """Index of the member nearest to all others (summed distance): a real note of the class."""
    return int(np.argmin(distances(trajectories, counts).sum(axis=1)))


def neighbour_weights(dist: np.ndarray, *, power: float = 2.0) -> np.ndarray:
    """Blend weights of the ``k`` nearest clips from ``k + 1`` ascending distances [shape=(k,)].

    ``w_i = d_i^-p - d_(k+1)^-p``: the weight of the k-th neighbour reaches 0 just as another
    clip takes its place, so the blend (and the sound) changes continuously with the position;
    at a clip's own position its weight is 1.
    """
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if len(d) < 2:
        return np.ones(len(d))
    near, edge = d[:-1], d[-1]
    if near[0] <= 1e-12 * max(edge, 1e-300):
        w = np.zeros(len(near))
        w[0] = 1.0
        return w
    w = np.maximum(near ** -power - max(edge, 1e-300) ** -power, 0.0)
    if w.sum() <= 0:  # all equidistant: an even blend
        return np.ones(len(near)) / len(near)
    return w / w.sum()


def members_of_nearest(idx: np.ndarray, dist: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The blend of the ``k + 1`` nearest points, given in ascending distance.

    idx, dist : [shape=(m,)], m <= k + 1. Returns (indices [shape=(<= k,)], weights summing to
    1); zero weights dropped. The last of ``k + 1`` only sets where the others' weights reach 0;
    a map of ``k`` points or fewer blends them all (inverse-distance weights), so that with two
    sounds the midpoint is a blend too, not a jump from one to the other.
    """
    idx, dist = np.asarray(idx).reshape(-1), np.asarray(dist, dtype=np.float64).reshape(-1)
    if len(idx) <= k:  # a far virtual edge: weights ~ d^-2 (continuous: the farthest distance is)
        idx, dist = np.append(idx, -1), np.append(dist, 1e3 * max(float(dist.max()), 1e-300))
    if len(idx) == 1:
        return idx, np.ones(1)
    w = neighbour_weights(dist)
    keep = w > 0
    return idx[:-1][keep], w[keep]


# --- interpolation -------------------------------------------------------------------------------------
def slerp_rows(a: np.ndarray, b: np.ndarray, u: np.ndarray | float, *, centre: np.ndarray | None = None) -> np.ndarray:
    """Slerp of each row of ``a`` towards the same row of ``b`` about ``centre``.

    a, b : [shape=(n, d)]; u : scalar or [shape=(n,)]. Rows whose directions are (anti)parallel
    or at the centre fall back to the chord.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    u = np.broadcast_to(np.asarray(u, dtype=np.float64).reshape(-1, 1) if np.ndim(u) else np.float64(u),
                        (len(a), 1))
    c = np.zeros(a.shape[1]) if centre is None else np.asarray(centre, dtype=np.float64).reshape(-1)
    pa, pb = a - c, b - c
    na, nb = np.linalg.norm(pa, axis=1, keepdims=True), np.linalg.norm(pb, axis=1, keepdims=True)
    cos = np.clip((pa * pb).sum(axis=1, keepdims=True) / np.maximum(na * nb, 1e-300), -1.0, 1.0)
    omega = np.arccos(cos)
    s = np.sin(omega)
    ok = (na > 1e-12) & (nb > 1e-12) & (s > 1e-6)
    safe = np.where(ok, s, 1.0)
    sph = np.sin((1.0 - u) * omega) / safe * pa + np.sin(u * omega) / safe * pb + c
    return np.where(ok, sph, (1.0 - u) * a + u * b)


def blend_rows(a: np.ndarray, b: np.ndarray, u: np.ndarray | float, *, method: str = "linear",
               centre: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``a`` moved towards ``b`` by ``u`` (per row or one for all), linearly or by slerp."""
    if method not in INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {method!r}")
    if method == "spherical":
        return slerp_rows(a, b, u, centre=centre)
    uu = np.asarray(u, dtype=np.float64)
    uu = uu.reshape(-1, *([1] * (np.ndim(a) - 1))) if uu.ndim else uu
    return (1.0 - uu) * np.asarray(a, dtype=np.float64) + uu * np.asarray(b, dtype=np.float64)


def interpolate(a: Trajectory, b: Trajectory, u: float, counts: Counts, *, method: str = "linear",
                centre: np.ndarray | None = None, n_samples: int | None = None) -> Trajectory:
    """Step ``u`` from ``a`` (0) to ``b`` (1): both resampled to the step's length, blended item by item.

    n_samples : the step's length; default the lengths interpolated, so ``u = 0`` and ``u = 1``
        give ``a`` and ``b`` exactly (unchanged objects).
    """
    u = float(u)
    if n_samples is None:
        if u <= 0.0:
            return a
        if u >= 1.0:
            return b
        n_samples = int(round((1.0 - u) * a.n_samples + u * b.n_samples))
    ra, rb = a.resampled(n_samples, counts), b.resampled(n_samples, counts)
    if u <= 0.0:
        return ra
    if u >= 1.0:
        return rb
    codes = blend_rows(ra.codes, rb.codes, u, method=method, centre=centre)
    # side information linearly: an envelope never dips below both of its ends
    return Trajectory(codes, n_samples, _mix_side([ra, rb], np.array([1.0 - u, u])))


# --- along a path ----------------------------------------------------------------------------------------
def path_lengths(codes: np.ndarray) -> np.ndarray:
    """Cumulative latent length at each waypoint [shape=(k,)]; even spacing when all coincide."""
    codes = np.asarray(codes, dtype=np.float64)
    if len(codes) < 2:
        raise ConfigError("a path needs at least two waypoints")
    seg = np.linalg.norm(np.diff(codes, axis=0), axis=1)
    if seg.sum() <= 1e-12:
        seg = np.ones(len(codes) - 1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def locate(cum: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment, fraction within it) of path fractions ``s`` in [0, 1] along lengths ``cum``.

    ``s = 0`` is the first waypoint and ``s = 1`` the last exactly.
    """
    cum = np.asarray(cum, dtype=np.float64)
    seg = np.diff(cum)
    k = len(cum)
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0) * cum[-1]
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, k - 2)
    u = np.where(seg[idx] > 0, (s - cum[idx]) / np.where(seg[idx] > 0, seg[idx], 1.0), 0.0)
    at_end = s >= cum[-1]
    idx = np.where(at_end, k - 2, idx)
    u = np.where(at_end, 1.0, u)
    return idx, np.clip(u, 0.0, 1.0)


def morph_schedule(n: int, *, n_samples: int, step_samples: int, hop_samples: int, n_steps: int) -> np.ndarray:
    """Path fraction at each of ``n`` evenly spaced times of a continuous morph [shape=(n,)].

    The continuous morph lasts as long as its steps would when overlapped (``step + (n_steps -
    1) * hop`` samples); the weight rests on the first end for half a step, moves at constant
    speed so that it passes step k's weight at the middle of step k's slot, and rests on the
    last end for the last half step.
    """
    t = (np.arange(int(n)) + 0.5) * (float(n_samples) / max(int(n), 1))
    span = max((int(n_steps) - 1) * int(hop_samples), 1)
    return np.clip((t - 0.5 * int(step_samples)) / span, 0.0, 1.0)


def continuous(trajectories: Sequence[Trajectory], cum: np.ndarray, counts: Counts, *, n_samples: int,
               schedule: Callable[[int], np.ndarray], method: str = "linear",
               centre: np.ndarray | None = None, keep: float = 0.0) -> Trajectory:
    """One trajectory of ``n_samples`` along which the weight moves item by item.

    Every waypoint's trajectory is drawn out to the morph's length (:func:`stretched`, so the
    morph is one note: one attack, one evolution, one release); at item ``j`` the codes of the
    two waypoints around the path fraction ``schedule(n_items)[j]`` are blended. The envelope
    follows the same schedule at its own frame rate.
    """
    if len(trajectories) < 2 or len(trajectories) != len(cum):
        raise ConfigError("a continuous morph needs one trajectory per waypoint, at least two")
    n_items, n_frames = counts(int(n_samples))
    parts = [stretched(t, int(n_samples), counts, keep=keep) for t in trajectories]
    idx, u = locate(cum, schedule(n_items))
    A = np.stack([parts[i].codes[j] for j, i in enumerate(idx)])
    B = np.stack([parts[i + 1].codes[j] for j, i in enumerate(idx)])
    codes = blend_rows(A, B, u, method=method, centre=centre)
    side: dict[str, np.ndarray] = {}
    if n_frames is not None and all(p.envelope is not None for p in parts):
        fi, fu = locate(cum, schedule(n_frames))
        ea = np.array([parts[i].envelope[j] for j, i in enumerate(fi)])
        eb = np.array([parts[i + 1].envelope[j] for j, i in enumerate(fi)])
        side[FRAME_KEY] = (1.0 - fu) * ea + fu * eb
    # per-clip values (a reference level) follow the weight at the morph's middle
    mid_i, mid_u = locate(cum, schedule(1))
    for k, v in _mix_side([parts[int(mid_i[0])], parts[int(mid_i[0]) + 1]],
                          np.array([1.0 - mid_u[0], mid_u[0]])).items():
        side.setdefault(k, v)
    return Trajectory(codes, int(n_samples), side)
