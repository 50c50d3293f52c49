"""Morph paths through latent space: waypoints, parameters, code interpolation (no Qt).

A :class:`MorphPath` is a list of waypoints, each a latent code with the 2-D map position it was
picked at: a map point (a clip), a class centre (Lionello & Purwins morph between class centres;
here over the class's *visible* sounds, as a barycentre or a medoid) or a free map position (a
blend of its nearest clips; a drawn polyline becomes such waypoints). A waypoint names the
sounds it stands for (``members``); :mod:`models.morphing.sources` turns it into a trajectory of
codes over time, and :mod:`models.morphing.render` decodes a path's steps and its continuous
morph from those trajectories (:mod:`models.morphing.trajectory` holds the math).

This module keeps what is about codes alone: the spacing of steps by latent length
(:func:`step_locations`), linear and spherical interpolation of codes (:func:`slerp`, used by
the freeze mode and for the steps' mean codes), the polyline simplification, the legacy
:class:`Template` of render specs written before trajectories, and :func:`place_back` (where
decoded steps really land on the map).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.arrays import fit_length
from models.errors import ConfigError
from models.inference import decode, encode
from models.inference.decode import fixed_threads  # noqa: F401  (renders use the decode path's thread rule)
from models.morphing import trajectory as tj

INTERPOLATIONS = ("linear", "spherical")
WAYPOINT_KINDS = ("point", "centre", "position")
#: "trajectory": steps evolve over time like the notes they come from; "freeze": each step holds
#: one code over the whole note (Colonel's synthesiser)
MODES = ("trajectory", "freeze")
STATISTICS = ("barycentre", "medoid")
MAX_STEPS = 256


# --- the path ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Waypoint:
    """One stop of a path.

    kind : ``"point"`` (a map point: ``clip``/``frame`` say which), ``"centre"`` (a class
        centre: ``label`` names the class) or ``"position"`` (a code estimated from ``xy``).
    code : the latent code, flattened [shape=(d,)].
    xy : where it sits on the map the user picked it on.
    label : a short name for file names ("flute", a clip's name).
    members : the ``(clip, frame)`` map points a centre or a position stands for (a centre: the
        class's points that were visible; a position: its nearest visible points), empty for a
        point and for waypoints of older sessions.
    weights : a position's blend weight of each member (:mod:`models.morphing.sources`).
    statistic : a centre's ``"barycentre"`` (time-normalised mean of its members) or ``"medoid"``
        (the member nearest to all others; ``clip``/``frame`` then name it).
    """

    kind: str
    code: tuple[float, ...]
    xy: tuple[float, float]
    label: str = ""
    clip: int | None = None
    frame: int = -1
    members: tuple[tuple[int, int], ...] = ()
    weights: tuple[float, ...] = ()
    statistic: str = "barycentre"

    def __post_init__(self) -> None:
        if self.kind not in WAYPOINT_KINDS:
            raise ConfigError(f"waypoint kind must be one of {WAYPOINT_KINDS}, got {self.kind!r}")
        if self.statistic not in STATISTICS:
            raise ConfigError(f"a centre is one of {STATISTICS}, got {self.statistic!r}")
        if self.weights and len(self.weights) != len(self.members):
            raise ConfigError("a waypoint needs one weight per member")

    @classmethod
    def make(cls, kind: str, code: np.ndarray, xy: Sequence[float], *, members: Sequence[Sequence[int]] = (),
             weights: Sequence[float] = (), **kw: Any) -> Waypoint:
        return cls(kind=kind, code=tuple(float(v) for v in np.asarray(code, dtype=np.float64).reshape(-1)),
                   xy=(float(xy[0]), float(xy[1])), members=tuple((int(c), int(f)) for c, f in members),
                   weights=tuple(float(w) for w in weights), **kw)

    def moved(self, xy: Sequence[float], code: np.ndarray, **kw: Any) -> Waypoint:
        return replace(self, xy=(float(xy[0]), float(xy[1])),
                       code=tuple(float(v) for v in np.asarray(code, dtype=np.float64).reshape(-1)), **kw)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "label": self.label, "clip": self.clip, "frame": self.frame,
             "xy": list(self.xy), "code": list(self.code)}
        if self.members:
            d["members"] = [list(m) for m in self.members]
        if self.weights:
            d["weights"] = list(self.weights)
        if self.kind == "centre":
            d["statistic"] = self.statistic
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Waypoint:
        try:
            return cls(kind=d["kind"], code=tuple(float(v) for v in d["code"]), xy=(float(d["xy"][0]), float(d["xy"][1])),
                       label=str(d.get("label", "")), clip=None if d.get("clip") is None else int(d["clip"]),
                       frame=int(d.get("frame", -1)),
                       members=tuple((int(m[0]), int(m[1])) for m in d.get("members") or ()),
                       weights=tuple(float(w) for w in d.get("weights") or ()),
                       statistic=str(d.get("statistic", "barycentre")))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"not a waypoint: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class MorphParams:
    """How a path becomes sound.

    n_steps : decoded sounds along the path, ends included (>= 2).
    interpolation : ``"linear"`` or ``"spherical"`` (slerp about ``centre``, see :func:`slerp`).
    step_duration : seconds per step; ``None``: each step's length moves between its ends'
        lengths, so the end steps are the end points' own sounds.
    crossfade : how much of a step's slot the next step's overlaps; sets the continuous morph's
        length, ``L + (n - 1) * (L - crossfade * L)`` (the morph itself is one sound).
    mode : ``"trajectory"`` (steps evolve like their notes) or ``"freeze"`` (one held code per
        step, Colonel's synthesiser).
    """

    n_steps: int = 8
    interpolation: str = "linear"
    step_duration: float | None = None
    crossfade: float = 0.5
    mode: str = "trajectory"

    def __post_init__(self) -> None:
        if not 2 <= int(self.n_steps) <= MAX_STEPS:
            raise ConfigError(f"n_steps must be between 2 and {MAX_STEPS}, got {self.n_steps}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.step_duration is not None and not 0.01 <= float(self.step_duration) <= 60.0:
            raise ConfigError(f"step_duration must be between 0.01 and 60 s, got {self.step_duration}")
        if not 0.0 <= float(self.crossfade) <= 0.95:
            raise ConfigError(f"crossfade must be between 0 and 0.95 of a step, got {self.crossfade}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"n_steps": int(self.n_steps), "interpolation": self.interpolation,
                "step_duration": self.step_duration, "crossfade": float(self.crossfade), "mode": self.mode}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MorphParams:
        from models.config import config_from_dict

        return config_from_dict(cls, d)


@dataclass
class MorphPath:
    """Waypoints plus how to render them; ``model_key`` names the model whose codes these are."""

    waypoints: list[Waypoint] = field(default_factory=list)
    params: MorphParams = field(default_factory=MorphParams)
    name: str = "path"
    model_key: str | None = None
    #: a free-hand polyline (its waypoints are positions) rather than picked stops
    drawn: bool = False

    @property
    def codes(self) -> np.ndarray:
        """[shape=(n_waypoints, d)]"""
        return np.array([w.code for w in self.waypoints], dtype=np.float64)

    @property
    def xy(self) -> np.ndarray:
        """[shape=(n_waypoints, 2)]"""
        return np.array([w.xy for w in self.waypoints], dtype=np.float64).reshape(-1, 2)

    def title(self) -> str:
        """``flute-to-brass``: the end labels, for names that say what they are."""
        if not self.waypoints:
            return self.name
        a, b = self.waypoints[0].label or "start", self.waypoints[-1].label or "end"
        return f"{a}-to-{b}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_key": self.model_key, "drawn": self.drawn,
                "params": self.params.to_dict(), "waypoints": [w.to_dict() for w in self.waypoints]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MorphPath:
        return cls(waypoints=[Waypoint.from_dict(w) for w in d.get("waypoints", [])],
                   params=MorphParams.from_dict(d.get("params", {})), name=str(d.get("name", "path")),
                   model_key=d.get("model_key"), drawn=bool(d.get("drawn", False)))


# --- interpolation ------------------------------------------------------------------------------
def slerp(a: np.ndarray, b: np.ndarray, u: float, *, centre: np.ndarray | None = None) -> np.ndarray:
    """Spherical interpolation from ``a`` (u=0) to ``b`` (u=1) about ``centre``.

    The usual slerp of generative-model latents (White 2016), taken about the codes' mean rather
    than the origin: a VAE's codes sit around 0 anyway, an autoencoder's need not. Falls back to
    linear when the two directions are (anti)parallel. a, b : [shape=(d,)]
    """
    c = np.zeros_like(a) if centre is None else np.asarray(centre, dtype=np.float64)
    pa, pb = a - c, b - c
    na, nb = np.linalg.norm(pa), np.linalg.norm(pb)
    if na < 1e-12 or nb < 1e-12:
        return (1.0 - u) * a + u * b
    omega = math.acos(float(np.clip(np.dot(pa / na, pb / nb), -1.0, 1.0)))
    s = math.sin(omega)
    if s < 1e-6:
        return (1.0 - u) * a + u * b
    return (math.sin((1.0 - u) * omega) / s) * pa + (math.sin(u * omega) / s) * pb + c


def step_locations(codes: np.ndarray, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each step falls: (segment index [shape=(n_steps,)], fraction within it).

    Steps are spaced evenly by the latent (Euclidean) length of the path, so a long leg gets
    more steps than a short one; the first step is the first waypoint and the last the last.
    Coincident waypoints (zero total length) are spread evenly by segment.
    """
    # the same placement as the trajectory steps (models.morphing.trajectory)
    return tj.locate(tj.path_lengths(codes), np.linspace(0.0, 1.0, int(n_steps)))


def interpolate_path(
    codes: np.ndarray, n_steps: int, *, method: str = "linear", centre: np.ndarray | None = None
) -> np.ndarray:
    """Step codes along waypoints. codes [shape=(k, d)] -> [shape=(n_steps, d)].

    Ends are the first and last waypoints exactly (u = 0 and 1 are exact in both methods).
    """
    if method not in INTERPOLATIONS:
        raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {method!r}")
    codes = np.asarray(codes, dtype=np.float64)
    idx, u = step_locations(codes, n_steps)
    out = np.empty((len(idx), codes.shape[1]))
    for j, (i, t) in enumerate(zip(idx, u)):
        a, b = codes[i], codes[i + 1]
        if t == 0.0:
            out[j] = a
        elif t == 1.0:
            out[j] = b
        elif method == "linear":
            out[j] = (1.0 - t) * a + t * b
        else:
            out[j] = slerp(a, b, float(t), centre=centre)
    return out


def path_positions(codes: np.ndarray, xy: np.ndarray, n_steps: int) -> np.ndarray:
    """Where the steps lie on the path as drawn on the map (for the playhead) [shape=(n_steps, 2)]."""
    idx, u = step_locations(codes, n_steps)
    xy = np.asarray(xy, dtype=np.float64)
    return (1.0 - u)[:, None] * xy[idx] + u[:, None] * xy[idx + 1]


def simplify_polyline(xy: np.ndarray, tolerance: float, *, max_points: int = 16) -> np.ndarray:
    """A hand-drawn polyline reduced to its corners (Ramer-Douglas-Peucker, scikit-image).

    The tolerance is raised until at most ``max_points`` remain, so a long scribble still makes a
    path of a few waypoints. xy [shape=(n, 2)] -> [shape=(m, 2)], ends kept.
    """
    from skimage.measure import approximate_polygon

    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy) <= 2:
        return xy
    tol = max(float(tolerance), 1e-12)
    out = approximate_polygon(xy, tolerance=tol)
    while len(out) > max_points:
        tol *= 1.5
        out = approximate_polygon(xy, tolerance=tol)
    return out


# --- the sound template ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Template:
    """The length and envelope every step is decoded with.

    n_samples : step length in samples.
    feature_shape : the representation's feature shape for that length.
    frame_max : frame-level envelope [shape=(n_frames,)] for frame models (``side["frame_max"]``
        of the template clip), else None.
    clip : the template clip's name (a record, not needed to render).
    """

    n_samples: int
    feature_shape: tuple[int, ...]
    frame_max: tuple[float, ...] | None = None
    clip: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"n_samples": self.n_samples, "feature_shape": list(self.feature_shape),
                "frame_max": None if self.frame_max is None else list(self.frame_max), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Template:
        fm = d.get("frame_max")
        return cls(n_samples=int(d["n_samples"]), feature_shape=tuple(int(v) for v in d["feature_shape"]),
                   frame_max=None if fm is None else tuple(float(v) for v in fm), clip=str(d.get("clip", "")))

    def stretched(self, n_samples: int, representation: Any) -> Template:
        """This template at another length; the envelope is stretched in time (linear)."""
        n_samples = int(n_samples)
        if n_samples == self.n_samples:
            return self
        shape = tuple(int(v) for v in representation.feature_shape(n_samples))
        fm = self.frame_max
        if fm is not None:
            old = np.asarray(fm, dtype=np.float32)
            t_new = np.linspace(0.0, 1.0, shape[0])
            t_old = np.linspace(0.0, 1.0, len(old))
            fm = tuple(float(v) for v in np.interp(t_new, t_old, old).astype(np.float32))
        return Template(n_samples=n_samples, feature_shape=shape, frame_max=fm, clip=self.clip)


def template_from_clip(representation: Any, dataset: Any, i: int, *, layout: str) -> Template:
    """The template of clip ``i``: what ``engine.render_code(..., template_clip=i)`` uses (its envelope).

    ``layout`` is not needed any more (the representation says which side information is an
    envelope); kept for callers.
    """
    ctx = decode.clip_context(representation, dataset, i).envelope(representation)
    fm = ctx.side.get("frame_max")
    if fm is not None:
        fm = tuple(float(v) for v in np.asarray(fm, dtype=np.float32).reshape(-1))
    return Template(n_samples=ctx.n_samples, feature_shape=ctx.feature_shape, frame_max=fm, clip=ctx.name)


def decode_step(
    model: Any, representation: Any, code: np.ndarray, *, latent_shape: Sequence[int], template: Template,
    phase: str = decode.ESTIMATED_PHASE,
) -> np.ndarray:
    """One code -> one sound [shape=(template.n_samples,), float32], as ``engine.render_code``."""
    with fixed_threads():
        return _decode_step(model, representation, code, latent_shape=latent_shape, template=template, phase=phase)


def _decode_step(model: Any, representation: Any, code: np.ndarray, *, latent_shape: Sequence[int],
                 template: Template, phase: str = decode.ESTIMATED_PHASE) -> np.ndarray:
    side = {} if template.frame_max is None else {"frame_max": np.asarray(template.frame_max, dtype=np.float32)}
    ctx = decode.DecodeContext(n_samples=template.n_samples, feature_shape=template.feature_shape, side=side,
                               name=template.clip)
    return decode.decode_to_sound(model, representation, np.asarray(code, dtype=np.float64).reshape(1, -1),
                                  latent_shape=latent_shape, context=ctx, phase=phase, spectrogram=False).y


def crossfade_concat(steps: Sequence[np.ndarray], overlap: int) -> np.ndarray:
    """Join equal-length sounds, each overlapping the next by ``overlap`` samples.

    Equal-power fades (sin/cos quarter periods) keep the loudness steady through the overlap
    of two uncorrelated sounds. Length: ``L + (n - 1) * (L - overlap)``.
    """
    if not steps:
        return np.zeros(0, np.float32)
    L = len(steps[0])
    c = int(np.clip(overlap, 0, L - 1 if L > 1 else 0))
    hop = L - c
    out = np.zeros(L + (len(steps) - 1) * hop, dtype=np.float64)
    t = (np.arange(c) + 0.5) / max(c, 1)
    fade_in, fade_out = np.sin(0.5 * np.pi * t), np.cos(0.5 * np.pi * t)
    for k, s in enumerate(steps):
        s = fit_length(np.asarray(s, dtype=np.float64), L)
        if c:
            if k > 0:
                s[:c] *= fade_in
            if k < len(steps) - 1:
                s[L - c:] *= fade_out
        out[k * hop: k * hop + L] += s
    return out.astype(np.float32)


def encode_sound(model: Any, representation: Any, y: np.ndarray) -> np.ndarray:
    """A sound's code as the map has it: analysed, cut into items, encoded, items averaged [shape=(d,)]."""
    return encode.encode_sound(model, representation, y)


def place_back(model: Any, representation: Any, embedding: Any, sounds: Sequence[np.ndarray]) -> np.ndarray:
    """Where decoded sounds land on the map when encoded again [shape=(n, 2)].

    The audio (what the user hears, phase reconstruction included) is analysed and encoded,
    then ``embedding.transform`` places the codes; the distance to the drawn path shows how far
    the decoder's output is from the code asked for.
    """
    codes = np.stack([encode_sound(model, representation, y) for y in sounds])
    return np.asarray(embedding.transform(codes), dtype=np.float64).reshape(-1, 2)
