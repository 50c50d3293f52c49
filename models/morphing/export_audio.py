"""Exporting rendered sounds for a DAW, with a JSON that renders them again (no Qt).

An export is one or more WAV files plus a *render spec* beside them: the model (checkpoint path
and the hash of its weights), the dataset (path and fingerprint), the path's waypoints (latent
codes and map positions) with their trajectories (codes over time, envelope, length: what the
steps are made from), and the output options.
:func:`render_from_spec` decodes the same audio again from that file alone (plus the
checkpoint; a decoded *clip* also needs its dataset, for the clip's own side information).

Writing is all-or-nothing: every file goes to a hidden temporary name first (atomically, through
``models.audio.save_wav`` / ``models.atomic``), and only when all are complete are they renamed
into place; any failure (no permission, disk full) removes what was written.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models import __version__, limits, safe_paths
from models.atomic import WriteError, default_file_mode
from models.audio import WAV_SUBTYPES, resample
from models.errors import CheckpointError, ConfigError, DatasetError
from models.inference import decode
from models.inference.layout import parse_layout
from models.morphing.morph import MorphPath, Template, decode_step, fixed_threads

#: 2: a path carries its waypoints' trajectories (codes over time); 1 (a template) still renders
SPEC_SCHEMA_VERSION = 2
SPEC_KIND = "latent-explorer render"
WHATS = ("morph", "steps", "sound")
#: peak level of normalised exports: -1 dBFS leaves room for inter-sample peaks after conversion
NORMALIZE_DBFS = -1.0


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What to write and how.

    what : ``"morph"`` (the continuous crossfaded morph, one file), ``"steps"`` (one file per
        step) or ``"sound"`` (the selected decoded sound).
    subtype : ``"pcm16"``, ``"pcm24"`` or ``"float32"``.
    sample_rate : output rate; ``None`` keeps the model's.
    normalize : scale so the loudest sample is at -1 dBFS; one gain for all files of an export,
        so steps keep their levels relative to each other.
    """

    what: str = "morph"
    subtype: str = "pcm24"
    sample_rate: int | None = None
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.what not in WHATS:
            raise ConfigError(f"what must be one of {WHATS}, got {self.what!r}")
        if self.subtype not in WAV_SUBTYPES:
            raise ConfigError(f"subtype must be one of {sorted(WAV_SUBTYPES)}, got {self.subtype!r}")
        if self.sample_rate is not None and not 1000 <= int(self.sample_rate) <= 384000:
            raise ConfigError(f"sample_rate must be between 1000 and 384000 Hz, got {self.sample_rate}")

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "subtype": self.subtype, "sample_rate": self.sample_rate, "normalize": self.normalize}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExportOptions:
        from models.config import config_from_dict

        return config_from_dict(cls, d)


# --- names -------------------------------------------------------------------------------------------
def slug(text: str, *, max_len: int = 40) -> str:
    """File-name-safe lower-case words joined by ``-`` (``"Brass (decoded)"`` -> ``brass-decoded``)."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return (s[:max_len].rstrip("-")) or "sound"


def export_stem(options: ExportOptions, *, title: str, model: str, n_steps: int | None = None) -> str:
    """``morph_flute-to-brass_16steps_colonel`` or ``sound_flute-042_colonel``."""
    if options.what == "sound":
        return f"sound_{slug(title)}_{slug(model, max_len=24)}"
    return f"morph_{slug(title)}_{int(n_steps or 0)}steps_{slug(model, max_len=24)}"


def export_names(options: ExportOptions, stem: str, n_steps: int | None = None) -> list[str]:
    """The WAV names of an export (the JSON is ``stem + ".json"``)."""
    if options.what == "steps":
        width = max(2, len(str(n_steps)))
        return [f"{stem}_step{k + 1:0{width}d}.wav" for k in range(int(n_steps or 0))]
    return [f"{stem}.wav"]


def free_stem(out_dir: str | os.PathLike, stem: str, names_for: Any) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... so that no earlier export is overwritten.

    names_for : ``stem -> list of file names`` the export would write. The search is bounded
    and every name is checked to be a plain file name (models.safe_paths.free_stem).
    """
    return safe_paths.free_stem(out_dir, stem, lambda s: [*names_for(s), s + ".json"])


# --- files for a DAW -----------------------------------------------------------------------------------
#: the rate exports and drags default to: what a DAW session runs at (44100 is the other choice)
DAW_RATE = 48000
DAW_RATES = (44100, 48000)
#: environment variable naming the folder dragged files go to (the app's setting wins)
DRAG_DIR_ENV = "LATENT_EXPLORER_DRAG_DIR"


def default_drag_folder() -> Path:
    """Where a dragged morph is written: a folder the user can see and keep.

    A DAW that references (rather than copies) dropped files needs them to stay: the folder is
    ``$LATENT_EXPLORER_DRAG_DIR``, else ``~/Music/latent-explorer`` (``~/latent-explorer`` when
    there is no Music folder). Files there are never overwritten or deleted by the app.
    """
    explicit = os.environ.get(DRAG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    music = Path.home() / "Music"
    return (music if music.is_dir() else Path.home()) / "latent-explorer"


def drag_stem(options: ExportOptions, *, title: str, model: str, n_steps: int, when: float) -> str:
    """A dragged file's stem: the export's, plus the time of the drag (one file per render)."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return f"{export_stem(options, title=title, model=model, n_steps=n_steps)}_{stamp}"


# --- audio post-processing -----------------------------------------------------------------------
#: longest fade at a file's start and end: short enough to keep an attack, long enough for no click
EDGE_FADE_S = 0.005


def edge_fades(y: np.ndarray, sr: int, *, seconds: float = EDGE_FADE_S) -> np.ndarray:
    """``y`` with a raised-cosine fade-in and fade-out of ``seconds`` (at most a quarter of it each).

    A decoded step starts wherever its first frame starts: up to 15 % of full scale on sample
    0, which a DAW plays as a click. The first and last samples become exactly 0.
    """
    y = np.array(y, dtype=np.float32, copy=True)
    n = min(int(round(seconds * sr)), len(y) // 4)
    if n < 2:
        return y
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    y[:n] *= ramp if y.ndim == 1 else ramp[:, None]
    y[len(y) - n:] *= ramp[::-1] if y.ndim == 1 else ramp[::-1, None]
    return y


def finish_signals(signals: Sequence[np.ndarray], sr: int, options: ExportOptions) -> tuple[list[np.ndarray], int]:
    """Resample, fade the edges of and (jointly) normalise the signals of one export.

    Returns (signals, output rate). Every file starts and ends with a fade of at most
    :data:`EDGE_FADE_S` (:func:`edge_fades`), so a DAW never plays a click at a file's edges.
    """
    out_sr = int(options.sample_rate or sr)
    out = [edge_fades(resample(y, sr, out_sr), out_sr) for y in signals]
    if options.normalize:
        peak = max((float(np.max(np.abs(y))) for y in out if len(y)), default=0.0)
        if peak > 0.0:
            gain = np.float32(10.0 ** (NORMALIZE_DBFS / 20.0) / peak)
            out = [(y * gain).astype(np.float32) for y in out]
    return out, out_sr


# --- writing, all or nothing -------------------------------------------------------------------
def write_export(
    out_dir: str | os.PathLike,
    files: Sequence[tuple[str, np.ndarray]],
    *,
    sr: int,
    subtype: str,
    spec: dict[str, Any] | None = None,
    spec_name: str | None = None,
) -> list[Path]:
    """Write WAVs (and the spec JSON) into ``out_dir``; either all appear or none does.

    Every name must be a plain file name (models.safe_paths.confined_path): nothing is ever
    written outside ``out_dir``.

    Raises
    ------
    ConfigError
        A name is not a plain file name, or two files have the same name.
    ExportWriteError
        The folder cannot be created or written (no permission, disk full...); its message
        names the folder, never a temporary file, and nothing of this export is left behind.
    """
    out_dir = Path(out_dir)
    finals = [safe_paths.confined_path(out_dir, name) for name, _ in files]
    if spec is not None:
        finals.append(safe_paths.confined_path(out_dir, spec_name or "render.json"))
    if len({p.name for p in finals}) != len(finals):
        raise ConfigError("an export cannot write two files of the same name")
    plan: list[tuple[Path, Path]] = []  # (temporary, final)
    done: list[Path] = []
    # files this export replaces (an overwrite): kept aside until every new file is in place, so
    # a failure half-way puts the user's old files back instead of leaving them deleted
    kept: list[tuple[Path, Path]] = []  # (backup, final)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        blobs = [_wav_bytes(y, sr=int(sr), subtype=subtype) for _, y in files]
        if spec is not None:
            blobs.append((json.dumps(spec, indent=2) + "\n").encode("utf-8"))
        for final, blob in zip(finals, blobs):
            tmp = _temp_name(out_dir, final.name)
            plan.append((tmp, final))
            _write_file(tmp, blob)
        for tmp, final in plan:
            if final.exists():
                backup = _temp_name(out_dir, final.name)
                try:
                    os.replace(final, backup)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.unlink(backup)
                    raise
                kept.append((backup, final))
            os.replace(tmp, final)
            done.append(final)
    except BaseException as exc:
        for p in [t for t, _ in plan] + done:
            with contextlib.suppress(OSError):
                os.unlink(p)
        for backup, final in kept:
            with contextlib.suppress(OSError):
                os.replace(backup, final)
        if isinstance(exc, OSError) and not isinstance(exc, ExportWriteError):
            raise ExportWriteError.of(exc, out_dir) from None  # names the folder, not a temporary
        raise
    for backup, _ in kept:
        with contextlib.suppress(OSError):
            os.unlink(backup)
    return done


class ExportWriteError(WriteError):
    """An export could not be written; nothing of it was left behind. The message says why."""


def _wav_bytes(y: np.ndarray, *, sr: int, subtype: str) -> bytes:
    """The WAV file of ``y`` in memory, checked as models.audio.save_wav checks it.

    Encoded in memory so that a failing disk write surfaces as the OSError it is: soundfile
    writing to a file object swallows the error and asserts instead.
    """
    import soundfile as sf

    if subtype not in WAV_SUBTYPES:
        raise ConfigError(f"subtype must be one of {sorted(WAV_SUBTYPES)}, got {subtype!r}")
    y = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise ConfigError("audio contains NaN or infinite samples; refusing to write it")
    if subtype != "float32":
        y = np.clip(y, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, y, int(sr), subtype=WAV_SUBTYPES[subtype], format="WAV")
    return buf.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _temp_name(out_dir: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out_dir)
    try:
        os.fchmod(fd, default_file_mode())  # not mkstemp's 0600: a DAW or a colleague reads these
    finally:
        os.close(fd)
    return Path(tmp)


# --- the render spec ------------------------------------------------------------------------------------
def model_record(checkpoint: Any, *, label: str = "") -> dict[str, Any]:
    """Name a model by its checkpoint file and the hash of its weights (None: not a checkpoint)."""
    if checkpoint is None:
        return {"path": None, "weights_sha256": None, "model_name": None, "preset": None, "label": label}
    meta = checkpoint.meta
    return {
        "path": str(Path(checkpoint.path).resolve()),
        "weights_sha256": (meta.get("weights") or {}).get("sha256"),
        "model_name": checkpoint.info.model_name,
        "preset": checkpoint.info.preset,
        "label": label,
    }


def _base_spec(model: dict, representation: Any, dataset: dict, latent_shape: Sequence[int], layout: str,
               options: ExportOptions, files: list[str]) -> dict[str, Any]:
    return {
        "schema_version": SPEC_SCHEMA_VERSION,
        "kind": SPEC_KIND,
        "app_version": __version__,
        "model": model,
        "representation": representation.to_dict(),
        "dataset": dataset,
        "latent_shape": [int(v) for v in latent_shape],
        "layout": layout,
        "output": {**options.to_dict(), "files": list(files)},
    }


def morph_spec(*, model: dict, representation: Any, dataset: dict, latent_shape: Sequence[int], layout: str,
               path: MorphPath, trajectories: Sequence[Any], centre: np.ndarray | None, options: ExportOptions,
               files: list[str]) -> dict[str, Any]:
    """The spec of a path export: ``trajectories`` are the waypoints' (what the steps are made from)."""
    spec = _base_spec(model, representation, dataset, latent_shape, layout, options, files)
    spec["path"] = path.to_dict()
    spec["trajectories"] = [t.to_dict() for t in trajectories]
    spec["centre"] = None if centre is None else [float(v) for v in np.asarray(centre).reshape(-1)]
    return spec


def sound_spec(*, model: dict, representation: Any, dataset: dict, latent_shape: Sequence[int], layout: str,
               source: dict[str, Any], options: ExportOptions, files: list[str]) -> dict[str, Any]:
    """The spec of one decoded sound.

    source : ``{"kind": "code", "code": [...], "template": {...}}`` (a map position, a frame or a
        class centre: self-contained) or ``{"kind": "clip", "clip": i, "codes": [[...]],
        "gains": [...] | None}`` (a clip's own decoding: needs the dataset for its side information).
    """
    spec = _base_spec(model, representation, dataset, latent_shape, layout, options, files)
    spec["sound"] = source
    return spec


def read_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Check a render spec's structure, types and sizes before anything is built from it.

    Raises ConfigError for anything that is not a spec this version renders: a missing or
    mistyped field, an output file name that is not a plain name, sizes past models.limits.
    """
    if not isinstance(spec, dict) or spec.get("kind") != SPEC_KIND:
        raise ConfigError("not a latent-explorer render spec (its 'kind' is missing or different)")
    v = spec.get("schema_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError("render spec without an integer schema_version")
    if v > SPEC_SCHEMA_VERSION:
        raise ConfigError(f"this render spec was written by a newer latent-explorer (schema {v}); update to render it")
    for key, kind in (("output", dict), ("representation", dict), ("latent_shape", list)):
        if not isinstance(spec.get(key), kind):
            raise ConfigError(f"render spec: '{key}' must be a JSON {'object' if kind is dict else 'list'}"
                              + (" (missing)" if key not in spec else ""))
    for key in ("model", "dataset", "path", "sound", "template"):
        if spec.get(key) is not None and not isinstance(spec[key], dict):
            raise ConfigError(f"render spec: '{key}' must be a JSON object")
    files = spec["output"].get("files")
    if not isinstance(files, list) or not files:
        raise ConfigError("render spec: output.files must list the file names it renders")
    for name in files:
        safe_paths.safe_name(name, what="render spec: output file name")
    limits.check_shape(spec["latent_shape"], "latent_shape", where="render spec")
    limits.check_representation(spec["representation"], where="render spec")
    for key in ("template",):
        if isinstance(spec.get(key), dict):
            _check_template(spec[key])
    if isinstance(spec.get("sound"), dict) and isinstance(spec["sound"].get("template"), dict):
        _check_template(spec["sound"]["template"])
    trajectories = spec.get("trajectories")
    if trajectories is not None and not isinstance(trajectories, list):
        raise ConfigError("render spec: 'trajectories' must be a JSON list")
    if isinstance(spec.get("sound"), dict) and spec["sound"].get("kind") == "trajectory":
        trajectories = [*(trajectories or []), spec["sound"].get("trajectory")]
    for t in trajectories or []:
        if not isinstance(t, dict):
            raise ConfigError("render spec: a trajectory must be a JSON object")
        limits.check_count(t.get("n_samples"), "trajectory.n_samples", lo=1, hi=limits.MAX_SAMPLES, where="render spec")
    return spec


def _check_template(d: dict[str, Any]) -> None:
    limits.check_count(d.get("n_samples"), "template.n_samples", lo=1, hi=limits.MAX_SAMPLES, where="render spec")
    limits.check_shape(d.get("feature_shape"), "template.feature_shape", where="render spec")
    fm = d.get("frame_max")
    if fm is not None and (not isinstance(fm, list) or len(fm) > limits.MAX_SAMPLES):
        raise ConfigError("render spec: template.frame_max must be a list of numbers")


def _parsed(what: str, build: Any, d: Any) -> Any:
    """``build(d)`` for one part of a spec; a part of the wrong shape is a ConfigError naming it."""
    if not isinstance(d, dict):
        raise ConfigError(f"render spec: '{what}' must be a JSON object")
    try:
        return build(d)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"render spec: malformed '{what}' ({type(exc).__name__}: {exc})") from None


@dataclass
class Rendered:
    """What a spec renders: file names and their (post-processed) signals at ``sr``."""

    names: list[str]
    signals: list[np.ndarray]
    sr: int
    subtype: str


def load_spec_model(spec: dict[str, Any], checkpoint: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """(model, representation) of a spec, checking the weights are the ones it was rendered with."""
    from models.checkpoints.checkpoint import load_checkpoint
    from models.representations import representation_from_dict

    rec = spec.get("model") or {}
    path = checkpoint or rec.get("path")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ConfigError("render spec: model.path must be a string")
    if not path:
        raise ConfigError("this render's model was not loaded from a checkpoint file; it cannot be rendered again")
    ckpt = load_checkpoint(path)
    want, got = rec.get("weights_sha256"), (ckpt.meta.get("weights") or {}).get("sha256")
    if want and got != want:
        raise CheckpointError(
            f"{path} is not the model this was rendered with (weights hash {str(got)[:12]}…, the spec names "
            f"{str(want)[:12]}…); pass the right checkpoint"
        )
    rep = representation_from_dict(dict(spec["representation"]))
    trained = representation_from_dict(dict(ckpt.representation))
    if rep != trained:  # same weights, another analysis: it would sound different
        raise ConfigError(f"render spec: its representation ({rep}) is not the one {path} was trained on ({trained})")
    return ckpt.model, rep


def render_from_spec(spec: dict[str, Any], *, checkpoint: str | os.PathLike | None = None,
                     dataset_path: str | os.PathLike | None = None, state: Any = None) -> Rendered:
    """Decode again the audio a spec describes: the same samples the app exported.

    checkpoint, dataset_path : override the paths the spec names (files moved since).
    """
    spec = read_spec(spec)
    model, rep = load_spec_model(spec, checkpoint)
    options = ExportOptions.from_dict({k: v for k, v in spec["output"].items() if k != "files"})
    latent_shape = tuple(spec["latent_shape"])
    with contextlib.suppress(NotImplementedError):
        if tuple(int(v) for v in model.latent_shape) != latent_shape:
            raise ConfigError(f"render spec: latent_shape {list(latent_shape)} is not the model's "
                              f"{list(model.latent_shape)}")
    if "path" in spec:
        path = _parsed("path", MorphPath.from_dict, spec["path"])
        if any(len(w.code) != math.prod(latent_shape) for w in path.waypoints) or len(path.waypoints) < 2:
            raise ConfigError(f"render spec: a path needs two or more waypoints whose codes fit latent_shape "
                              f"{list(latent_shape)}")
        from models.morphing import render

        template = None if spec.get("template") is None else _parsed("template", Template.from_dict, spec["template"])
        layout = _parsed("layout", lambda d: parse_layout(str(d["v"])), {"v": spec.get("layout", "frames")})
        path, trajectories = _parsed("trajectories", lambda d: render.trajectories_of_spec(
            path, d["v"], template, rep, layout=layout, input_shape=model.input_shape), {"v": spec.get("trajectories")})
        centre = None if spec.get("centre") is None else _parsed(
            "centre", lambda d: np.asarray(d["v"], dtype=np.float64), {"v": spec["centre"]})
        r = render.render_path(model, rep, path, latent_shape=latent_shape, layout=layout, trajectories=trajectories,
                               centre=centre, state=state)
        signals = [r.morph] if options.what == "morph" else list(r.steps)
        sr = r.sr
    elif "sound" in spec:
        with fixed_threads():
            signals, sr = [_render_sound(spec, model, rep, latent_shape, dataset_path)], int(rep.sample_rate)
    else:
        raise ConfigError("the render spec holds neither a path nor a sound")
    out, out_sr = finish_signals(signals, sr, options)
    names = list(spec["output"].get("files") or [])
    if len(names) != len(out):
        raise ConfigError(f"the spec names {len(names)} files for {len(out)} rendered sounds")
    return Rendered(names=names, signals=out, sr=out_sr, subtype=options.subtype)


def _render_sound(spec: dict, model: Any, rep: Any, latent_shape: tuple, dataset_path: Any) -> np.ndarray:
    src = spec["sound"]
    width = math.prod(latent_shape)
    if src.get("kind") == "trajectory":
        from models.morphing import render
        from models.morphing.trajectory import Trajectory

        traj = _parsed("sound.trajectory", Trajectory.from_dict, src.get("trajectory"))
        if traj.codes.shape[1] != width:
            raise ConfigError(f"render spec: the sound's codes have {traj.codes.shape[1]} values, latent_shape "
                              f"{list(latent_shape)} needs {width}")
        return render.decode_trajectory(model, rep, traj, latent_shape=latent_shape,
                                        phase=src.get("phase", decode.ESTIMATED_PHASE)).y
    if src.get("kind") == "code":
        code = _parsed("sound", lambda d: np.asarray(d["code"], dtype=np.float64).reshape(-1), src)
        if code.size != width:
            raise ConfigError(f"render spec: the sound's code has {code.size} values, latent_shape "
                              f"{list(latent_shape)} needs {width}")
        return decode_step(model, rep, code, latent_shape=latent_shape,
                           template=_parsed("sound.template", Template.from_dict, src.get("template")),
                           phase=src.get("phase", decode.ESTIMATED_PHASE))
    if src.get("kind") != "clip":
        raise ConfigError(f"unknown sound source {src.get('kind')!r}")
    from models.datasets import open_dataset

    rec = spec.get("dataset") or {}
    where = dataset_path or rec.get("path")
    if not where:
        raise DatasetError("a decoded clip is rendered from its dataset, and this spec names none")
    if not isinstance(where, (str, os.PathLike)):
        raise ConfigError("render spec: dataset.path must be a string")
    ds = open_dataset(where)
    if rec.get("fingerprint") and ds.fingerprint != rec["fingerprint"]:
        raise DatasetError(f"{where} is not the dataset this sound was rendered from (its content changed)")
    i = _parsed("sound", lambda d: limits.check_count(d["clip"], "sound.clip", hi=len(ds.clips) - 1), src)
    codes = _parsed("sound", lambda d: np.asarray(d["codes"], dtype=np.float64), src)
    if codes.ndim != 2 or codes.shape[1] != width or not len(codes):
        raise ConfigError(f"render spec: sound.codes must be a list of codes of {width} values")
    gains = None if src.get("gains") is None else np.asarray(src["gains"], dtype=np.float64)
    # specs written before the phase was recorded decoded a clip with its original phase
    return decode.decode_clip(model, rep, ds, i, codes, latent_shape=latent_shape, gains=gains,
                              phase=src.get("phase", decode.CLIP_PHASE)).y
