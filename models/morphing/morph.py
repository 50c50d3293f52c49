"""Morph paths through latent space, rendered to sound (no Qt).

A :class:`MorphPath` is a list of waypoints, each a latent code with the 2-D map position it was
picked at: a map point (a clip's code), a class centre (the mean code of a class, as in
Lionello & Purwins' morphs) or a free map position (a code estimated by the embedding's
``inverse``; a drawn polyline becomes such waypoints). ``n_steps`` codes are spaced evenly along
the path by latent distance and interpolated linearly or spherically (slerp), each decoded to one
step sound; the steps are also joined into one continuous morph by equal-power crossfades.

All steps share one :class:`Template`: the length (and, for frame models, the frame-level
envelope, as Colonel's synthesiser holds a decoded frame) of one clip, stretched to the step
duration the user chose. With the template's own length a step is exactly what
``engine.render_code`` makes of the same code, so a morph's first and last steps are the
decodings of its end points.

Where the path "really" goes: every decoded step is analysed and encoded again, and the code
placed on the map with ``embedding.transform`` (:func:`place_back`).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.inference import engine
from models.inference.engine import JobState, NullState
from models.errors import ConfigError

INTERPOLATIONS = ("linear", "spherical")
WAYPOINT_KINDS = ("point", "centre", "position")
MAX_STEPS = 256
_THREADS_LOCK = threading.RLock()


@contextlib.contextmanager
def fixed_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads, so a render is the same bits on any machine.

    Phase reconstruction sums in an order that depends on torch's thread count (measured: 2e-5
    apart between 1 and 2 threads, one LSB at 16 bits), and a render spec promises the same
    samples. Renders hold a lock while the global setting is changed; other work running at
    the same time only runs slower.
    """
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(before)


# --- the path ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Waypoint:
    """One stop of a path.

    kind : ``"point"`` (a map point: ``clip``/``frame`` say which), ``"centre"`` (a class
        centre: ``label`` names the class) or ``"position"`` (a code estimated from ``xy``).
    code : the latent code, flattened [shape=(d,)].
    xy : where it sits on the map the user picked it on.
    label : a short name for file names ("flute", a clip's name).
    """

    kind: str
    code: tuple[float, ...]
    xy: tuple[float, float]
    label: str = ""
    clip: int | None = None
    frame: int = -1

    def __post_init__(self) -> None:
        if self.kind not in WAYPOINT_KINDS:
            raise ConfigError(f"waypoint kind must be one of {WAYPOINT_KINDS}, got {self.kind!r}")

    @classmethod
    def make(cls, kind: str, code: np.ndarray, xy: Sequence[float], **kw: Any) -> Waypoint:
        return cls(kind=kind, code=tuple(float(v) for v in np.asarray(code, dtype=np.float64).reshape(-1)),
                   xy=(float(xy[0]), float(xy[1])), **kw)

    def moved(self, xy: Sequence[float], code: np.ndarray, **kw: Any) -> Waypoint:
        return replace(self, xy=(float(xy[0]), float(xy[1])),
                       code=tuple(float(v) for v in np.asarray(code, dtype=np.float64).reshape(-1)), **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "clip": self.clip, "frame": self.frame,
                "xy": list(self.xy), "code": list(self.code)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Waypoint:
        try:
            return cls(kind=d["kind"], code=tuple(float(v) for v in d["code"]), xy=(float(d["xy"][0]), float(d["xy"][1])),
                       label=str(d.get("label", "")), clip=None if d.get("clip") is None else int(d["clip"]),
                       frame=int(d.get("frame", -1)))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"not a waypoint: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class MorphParams:
    """How a path becomes sound.

    n_steps : decoded sounds along the path, ends included (>= 2).
    interpolation : ``"linear"`` or ``"spherical"`` (slerp about ``centre``, see :func:`slerp`).
    step_duration : seconds per step; ``None`` keeps the template clip's own length.
    crossfade : fraction of a step that overlaps the next in the continuous morph (0 = butt
        splices, 0.5 = half a step of equal-power crossfade).
    """

    n_steps: int = 8
    interpolation: str = "linear"
    step_duration: float | None = None
    crossfade: float = 0.5

    def __post_init__(self) -> None:
        if not 2 <= int(self.n_steps) <= MAX_STEPS:
            raise ConfigError(f"n_steps must be between 2 and {MAX_STEPS}, got {self.n_steps}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.step_duration is not None and not 0.01 <= float(self.step_duration) <= 60.0:
            raise ConfigError(f"step_duration must be between 0.01 and 60 s, got {self.step_duration}")
        if not 0.0 <= float(self.crossfade) <= 0.95:
            raise ConfigError(f"crossfade must be between 0 and 0.95 of a step, got {self.crossfade}")

    def to_dict(self) -> dict[str, Any]:
        return {"n_steps": int(self.n_steps), "interpolation": self.interpolation,
                "step_duration": self.step_duration, "crossfade": float(self.crossfade)}

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
    codes = np.asarray(codes, dtype=np.float64)
    k = len(codes)
    if k < 2:
        raise ConfigError("a path needs at least two waypoints")
    seg = np.linalg.norm(np.diff(codes, axis=0), axis=1)
    if seg.sum() <= 1e-12:
        seg = np.ones(k - 1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, cum[-1], int(n_steps))
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, k - 2)
    u = np.where(seg[idx] > 0, (s - cum[idx]) / np.where(seg[idx] > 0, seg[idx], 1.0), 0.0)
    idx[-1], u[-1] = k - 2, 1.0  # exactly the last waypoint, whatever rounding says
    u[0] = 0.0
    return idx, np.clip(u, 0.0, 1.0)


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
    """The template of clip ``i``: what ``engine.render_code(..., template_clip=i)`` uses."""
    _, analysis = engine.clip_features(dataset, i, representation)
    fm = None
    if layout in ("frames", "chunks") and "frame_max" in (analysis.side or {}):
        fm = tuple(float(v) for v in np.asarray(analysis.side["frame_max"], dtype=np.float32).reshape(-1))
    return Template(n_samples=int(analysis.n_samples), feature_shape=tuple(np.shape(analysis.features)),
                    frame_max=fm, clip=str(dataset.clips[i].name))


def decode_step(
    model: Any, representation: Any, code: np.ndarray, *, latent_shape: Sequence[int], template: Template
) -> np.ndarray:
    """One code -> one sound [shape=(template.n_samples,), float32], as ``engine.render_code``."""
    with fixed_threads():
        return _decode_step(model, representation, code, latent_shape=latent_shape, template=template)


def _decode_step(model: Any, representation: Any, code: np.ndarray, *, latent_shape: Sequence[int],
                 template: Template) -> np.ndarray:
    items = engine.decode_codes(model, np.asarray(code, dtype=np.float64).reshape(1, -1), tuple(latent_shape))
    feats = engine.from_items(items, template.feature_shape, time_first=representation.kind == "stft_frames")
    side = None
    if template.frame_max is not None:
        side = {"frame_max": np.asarray(template.frame_max, dtype=np.float32)}
    try:
        y = engine.synthesize(representation, feats, side, template.n_samples)
    except (KeyError, TypeError, ValueError):
        y = engine.synthesize(representation, feats, None, template.n_samples)
    y = np.nan_to_num(np.asarray(y, dtype=np.float32).reshape(-1))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return y / peak if peak > 1.0 else y  # engine._finish's limit: never more than full scale


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


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
        s = fit_length(s, L).astype(np.float64)
        if c:
            if k > 0:
                s[:c] *= fade_in
            if k < len(steps) - 1:
                s[L - c:] *= fade_out
        out[k * hop: k * hop + L] += s
    return out.astype(np.float32)


# --- rendering -------------------------------------------------------------------------------------
@dataclass
class MorphRender:
    """A rendered path.

    codes : [shape=(n_steps, d)] step codes.
    xy : [shape=(n_steps, 2)] the steps on the path as drawn.
    steps : one float32 sound per step, each ``step_samples`` long.
    morph : the continuous crossfaded morph, ``step_samples + (n - 1) * hop_samples`` long.
    placed : [shape=(n_steps, 2)] the decoded steps encoded again and placed on the map, or None.
    """

    codes: np.ndarray
    xy: np.ndarray
    steps: list[np.ndarray]
    morph: np.ndarray
    sr: int
    step_samples: int
    hop_samples: int
    template: Template
    placed: np.ndarray | None = None
    #: the template before the step duration stretched it (what a render spec records)
    base_template: Template | None = None

    def step_start(self, k: int) -> int:
        """Sample where step ``k`` enters the continuous morph."""
        return int(k) * self.hop_samples


def step_template(template: Template, params: MorphParams, representation: Any) -> Template:
    if params.step_duration is None:
        return template
    return template.stretched(int(round(float(params.step_duration) * representation.sample_rate)), representation)


def render_path(
    model: Any,
    representation: Any,
    path: MorphPath,
    *,
    latent_shape: Sequence[int],
    template: Template,
    centre: np.ndarray | None = None,
    embedding: Any = None,
    state: JobState | None = None,
) -> MorphRender | None:
    """Decode ``path`` to its steps and continuous morph; ``None`` when stopped.

    ``embedding`` given: the steps are also placed back on that map (:func:`place_back`).
    """
    with fixed_threads():
        return _render_path(model, representation, path, latent_shape=latent_shape, template=template,
                            centre=centre, embedding=embedding, state=state or NullState())


def _render_path(model: Any, representation: Any, path: MorphPath, *, latent_shape: Sequence[int],
                 template: Template, centre: np.ndarray | None, embedding: Any, state: JobState) -> MorphRender | None:
    p = path.params
    codes = interpolate_path(path.codes, p.n_steps, method=p.interpolation, centre=centre)
    xy = path_positions(path.codes, path.xy, p.n_steps)
    tpl = step_template(template, p, representation)
    steps: list[np.ndarray] = []
    share = 0.8 if embedding is not None else 1.0
    for k, code in enumerate(codes):
        if state.should_stop():
            return None
        steps.append(fit_length(decode_step(model, representation, code, latent_shape=latent_shape, template=tpl),
                                tpl.n_samples))
        state.report(share * (k + 1) / len(codes), f"decoding step {k + 1}/{len(codes)}")
    overlap = int(round(float(p.crossfade) * tpl.n_samples))
    overlap = min(overlap, max(tpl.n_samples - 1, 0))
    out = MorphRender(codes=codes, xy=xy, steps=steps, morph=crossfade_concat(steps, overlap),
                      sr=int(representation.sample_rate), step_samples=tpl.n_samples,
                      hop_samples=tpl.n_samples - overlap, template=tpl, base_template=template)
    if embedding is not None:
        if state.should_stop():
            return None
        state.report(0.85, "placing the steps back on the map")
        out.placed = place_back(model, representation, embedding, steps)
        state.report(1.0, "done")
    return out


def encode_sound(model: Any, representation: Any, y: np.ndarray) -> np.ndarray:
    """A sound's code as the map has it: analysed, cut into items, encoded, items averaged [shape=(d,)]."""
    analysis = representation.analyze(np.asarray(y, dtype=np.float32))
    items = engine.to_items(analysis.features, tuple(model.input_shape), time_first=representation.kind == "stft_frames")
    codes, _ = engine.encode_items(model, items)
    return codes.mean(axis=0)


def place_back(model: Any, representation: Any, embedding: Any, sounds: Sequence[np.ndarray]) -> np.ndarray:
    """Where decoded sounds land on the map when encoded again [shape=(n, 2)].

    The audio (what the user hears, phase reconstruction included) is analysed and encoded,
    then ``embedding.transform`` places the codes; the distance to the drawn path shows how far
    the decoder's output is from the code asked for.
    """
    codes = np.stack([encode_sound(model, representation, y) for y in sounds])
    return np.asarray(embedding.transform(codes), dtype=np.float64).reshape(-1, 2)
