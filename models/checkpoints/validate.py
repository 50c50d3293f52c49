"""Checks of a checkpoint's metadata against types, limits and its own tensors, before any build.

A checkpoint is a file from anywhere. Its metadata says how big the representation and the
model are, and building them allocates that much: ``n_fft = 2**31`` is a 16 GiB window, a
``hidden = [60000, 60000]`` deep AE 14 GB of weights. So every field is type-checked, every
size is checked against :mod:`models.limits`, and the model is first built on PyTorch's
``meta`` device (shapes only, no memory) and compared with the tensors the file really holds:
a real build then allocates no more than the file's own size. Everything wrong is one
CheckpointError naming the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from models import limits
from models.checkpoints.format import STATS_PREFIX
from models.errors import CheckpointError, ConfigError

__all__ = ["check_meta", "check_model_fits"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EDITED = "the file was edited or tampered with, or written by an incompatible version"


def _fail(path: Path, text: str) -> CheckpointError:
    return CheckpointError(f"{path}: {text}")


def _optional(path: Path, meta: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> None:
    if meta[key] is not None and not isinstance(meta[key], kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _fail(path, f"{key} must be {names} or null, got {type(meta[key]).__name__}")


def check_meta(path: Path, meta: dict[str, Any]) -> None:
    """Types and sizes of every field of (migrated) checkpoint metadata."""
    for key, kind in (("model_name", str), ("model_config", dict), ("representation", dict),
                      ("package_version", str), ("created", str)):
        if not isinstance(meta[key], kind):
            raise _fail(path, f"{key} must be a {'JSON object' if kind is dict else 'string'}, "
                        f"got {type(meta[key]).__name__}")
    for key in ("preset", "dataset_fingerprint"):
        _optional(path, meta, key, str)
    for key in ("labels", "training", "weights", "latent_stats"):
        _optional(path, meta, key, dict)
    where = str(path)
    limits.check_representation(meta["representation"], where=where, error=CheckpointError)
    limits.check_sizes(meta["model_config"], "model_config", where=where, error=CheckpointError)
    if "input_shape" in meta["model_config"]:
        limits.check_shape(meta["model_config"]["input_shape"], "model_config.input_shape", where=where,
                           error=CheckpointError)
    if meta.get("latent_shape") is not None:
        limits.check_shape(meta["latent_shape"], "latent_shape", where=where, error=CheckpointError)
    weights = meta["weights"]
    if weights is not None:
        if not isinstance(weights.get("sha256"), str) or not _SHA256.fullmatch(weights["sha256"]):
            raise _fail(path, "weights.sha256 must be 64 lower-case hex digits")
        for key in ("n_tensors", "n_parameters"):
            if key in weights:
                limits.check_count(weights[key], f"weights.{key}", hi=1 << 40, where=where,
                                   error=CheckpointError)
    stats = meta["latent_stats"]
    if stats is not None:
        limits.check_shape(stats.get("latent_shape"), "latent_stats.latent_shape", where=where,
                           error=CheckpointError)
        limits.check_count(stats.get("n_codes"), "latent_stats.n_codes", hi=1 << 40, where=where,
                           error=CheckpointError)


def check_model_fits(path: Path, model_name: str, model_config: dict[str, Any], header: dict[str, Any]) -> None:
    """Build the model on the ``meta`` device and compare its tensors with the file's.

    Names and shapes must agree, so the real build allocates what the file holds (within the
    factor of its dtypes: a float16 file loads into a float32 model).
    """
    from models.nets.registry import build_model

    try:
        with torch.device("meta"):
            probe = build_model(model_name, model_config)
    except ConfigError as exc:
        raise _fail(path, f"cannot rebuild the model: {exc}") from None
    except (TypeError, ValueError, RuntimeError, NotImplementedError, KeyError, IndexError) as exc:
        raise _fail(path, f"building {model_name} from its stored config failed: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    stored = {n: tuple(e["shape"]) for n, e in header.items() if not n.startswith(STATS_PREFIX)}
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + (
            [f"unexpected {', '.join(extra[:5])}"] if extra else [])
        raise _fail(path, f"the weights do not fit a {model_name} built from the stored config "
                    f"({'; '.join(parts)}); {_EDITED}")
    for name in sorted(expected):
        if expected[name] != stored[name]:
            raise _fail(path, f"the weights do not fit a {model_name} built from the stored config: size mismatch "
                        f"for {name}: the file holds {list(stored[name])}, the config gives {list(expected[name])}; {_EDITED}")
