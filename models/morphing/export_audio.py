"""Exporting rendered sounds for a DAW, with a JSON that renders them again (no Qt).

An export is one or more WAV files plus a *render spec* beside them: the model (checkpoint path
and the hash of its weights), the dataset (path and fingerprint), the path's waypoints (latent
codes and map positions), the template the steps were decoded with, and the output options.
:func:`render_from_spec` decodes the same audio again from that file alone (plus the
checkpoint; a decoded *clip* also needs its dataset, for the clip's own side information).

Writing is all-or-nothing: every file goes to a hidden temporary name first (atomically, through
``models.audio.save_wav`` / ``models.atomic``), and only when all are complete are they renamed
into place; any failure (no permission, disk full) removes what was written.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from models import __version__
from models.atomic import atomic_write_json
from models.audio import WAV_SUBTYPES, save_wav
from models.errors import CheckpointError, ConfigError, DatasetError
from models.morphing.morph import MorphParams, MorphPath, Template, decode_step, fixed_threads, render_path

SPEC_SCHEMA_VERSION = 1
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

    names_for : ``stem -> list of file names`` the export would write.
    """
    out_dir = Path(out_dir)
    candidate, k = stem, 1
    while any((out_dir / n).exists() for n in [*names_for(candidate), candidate + ".json"]):
        k += 1
        candidate = f"{stem}-{k}"
    return candidate


# --- audio post-processing -----------------------------------------------------------------------
def resample(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy): deterministic, so a spec renders the same samples again."""
    if int(sr) == int(target_sr):
        return np.asarray(y, dtype=np.float32)
    from scipy.signal import resample_poly

    f = Fraction(int(target_sr), int(sr)).limit_denominator(10000)
    return resample_poly(np.asarray(y, dtype=np.float64), f.numerator, f.denominator).astype(np.float32)


def finish_signals(signals: Sequence[np.ndarray], sr: int, options: ExportOptions) -> tuple[list[np.ndarray], int]:
    """Resample and (jointly) normalise the signals of one export -> (signals, output rate)."""
    out_sr = int(options.sample_rate or sr)
    out = [resample(y, sr, out_sr) for y in signals]
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

    Raises
    ------
    OSError
        The folder cannot be created or written (no permission, disk full...); nothing of this
        export is left behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[Path, Path]] = []  # (temporary, final)
    done: list[Path] = []
    try:
        for name, y in files:
            tmp = _temp_name(out_dir, name)
            plan.append((tmp, out_dir / name))
            save_wav(tmp, y, sr=int(sr), subtype=subtype)
        if spec is not None:
            name = spec_name or "render.json"
            tmp = _temp_name(out_dir, name)
            plan.append((tmp, out_dir / name))
            atomic_write_json(tmp, spec)
        for tmp, final in plan:
            os.replace(tmp, final)
            done.append(final)
    except BaseException:
        for p in [t for t, _ in plan] + done:
            with contextlib.suppress(OSError):
                os.unlink(p)
        raise
    return done


def _temp_name(out_dir: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=out_dir)
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
               path: MorphPath, template: Template, centre: np.ndarray | None, options: ExportOptions,
               files: list[str]) -> dict[str, Any]:
    """The spec of a path export. ``template`` is the path's template before the step duration."""
    spec = _base_spec(model, representation, dataset, latent_shape, layout, options, files)
    spec["path"] = path.to_dict()
    spec["template"] = template.to_dict()
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
    if not isinstance(spec, dict) or spec.get("kind") != SPEC_KIND:
        raise ConfigError("not a latent-explorer render spec (its 'kind' is missing or different)")
    v = spec.get("schema_version")
    if not isinstance(v, int):
        raise ConfigError("render spec without an integer schema_version")
    if v > SPEC_SCHEMA_VERSION:
        raise ConfigError(f"this render spec was written by a newer latent-explorer (schema {v}); update to render it")
    return spec


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
    if not path:
        raise ConfigError("this render's model was not loaded from a checkpoint file; it cannot be rendered again")
    ckpt = load_checkpoint(path)
    want, got = rec.get("weights_sha256"), (ckpt.meta.get("weights") or {}).get("sha256")
    if want and got != want:
        raise CheckpointError(
            f"{path} is not the model this was rendered with (weights hash {str(got)[:12]}…, the spec names "
            f"{str(want)[:12]}…); pass the right checkpoint"
        )
    return ckpt.model, representation_from_dict(dict(spec["representation"]))


def render_from_spec(spec: dict[str, Any], *, checkpoint: str | os.PathLike | None = None,
                     dataset_path: str | os.PathLike | None = None, state: Any = None) -> Rendered:
    """Decode again the audio a spec describes: the same samples the app exported.

    checkpoint, dataset_path : override the paths the spec names (files moved since).
    """
    spec = read_spec(spec)
    model, rep = load_spec_model(spec, checkpoint)
    options = ExportOptions.from_dict({k: v for k, v in spec["output"].items() if k != "files"})
    latent_shape = tuple(spec["latent_shape"])
    if "path" in spec:
        path = MorphPath.from_dict(spec["path"])
        centre = None if spec.get("centre") is None else np.asarray(spec["centre"], dtype=np.float64)
        r = render_path(model, rep, path, latent_shape=latent_shape, template=Template.from_dict(spec["template"]),
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
    if src.get("kind") == "code":
        return decode_step(model, rep, np.asarray(src["code"], dtype=np.float64), latent_shape=latent_shape,
                           template=Template.from_dict(src["template"]))
    if src.get("kind") != "clip":
        raise ConfigError(f"unknown sound source {src.get('kind')!r}")
    from models.inference import engine
    from models.datasets import open_dataset

    rec = spec.get("dataset") or {}
    where = dataset_path or rec.get("path")
    if not where:
        raise DatasetError("a decoded clip is rendered from its dataset, and this spec names none")
    ds = open_dataset(where)
    if rec.get("fingerprint") and ds.fingerprint != rec["fingerprint"]:
        raise DatasetError(f"{where} is not the dataset this sound was rendered from (its content changed)")
    i = int(src["clip"])
    codes = np.asarray(src["codes"], dtype=np.float64)
    enc = engine.Encoding(clip_codes=codes.mean(0, keepdims=True), frame_codes=codes,
                          frame_clip=np.full(len(codes), i), frame_index=np.arange(len(codes)),
                          latent_shape=latent_shape, layout=spec.get("layout", "whole"))
    gains = None if src.get("gains") is None else np.asarray(src["gains"], dtype=np.float64)
    return engine.render_clip(model, rep, ds, enc, i, gains=gains).y


def params_summary(params: MorphParams) -> str:
    d = "clip length" if params.step_duration is None else f"{params.step_duration:g} s"
    return f"{params.n_steps} steps, {params.interpolation}, {d} each, crossfade {params.crossfade:.0%}"
