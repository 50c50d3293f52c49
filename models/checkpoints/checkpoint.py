"""Trustworthy checkpoints: one self-describing ``.safetensors`` file per trained model.

The file holds the model's weights (unwrapped, on no device), the latent statistics of its
training set, and in the safetensors metadata a JSON document describing everything needed to
rebuild and use the model: model name and config, preset, representation parameters, dataset
fingerprint and labels, training summary, package version, schema version and a hash of the
tensors. docs/checkpoints.md describes the format field by field.

Loading never unpickles anything: ``.pt`` files are refused, the header is plain JSON read
with :mod:`json`, and tensors are read by safetensors. Training state for resuming (optimizer,
RNG, step), which needs ``torch.save``, lives in :mod:`models.checkpoints.training_state` (re-exported
here) and loads with ``weights_only=True`` only.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

import models
from models.atomic import WriteError, atomic_open
from models.checkpoints.format import (
    FORMAT_NAME,
    METADATA_KEY,
    PICKLE_SUFFIXES,
    SCHEMA_VERSION,
    STATS_PREFIX,
    parse_metadata,
    read_header,
    tensors_sha256,
)
from models.config import config_from_dict, config_to_dict
from models.errors import CheckpointError, ConfigError
from models.inference.layout import layout_for, parse_layout
from models.representations.base import representation_class
from models.checkpoints.latent_stats import LatentStats
from models.checkpoints.validate import check_meta, check_model_fits
from models.nets.base import LatentModel
from models.nets.registry import MODEL_REGISTRY, build_model
from models.checkpoints.training_state import load_training_state, save_training_state

__all__ = [
    "SCHEMA_VERSION",
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointWriteError",
    "LabelInfo",
    "TrainingSummary",
    "load_checkpoint",
    "load_training_state",
    "read_checkpoint_info",
    "save_checkpoint",
    "save_training_state",
    "unwrap_model",
]

#: torch.compile keeps the compiled module as ``._orig_mod``, which prefixes its state-dict keys
_COMPILE_SEGMENT = "_orig_mod"
_WRITE_CHUNK = 1 << 20


class CheckpointWriteError(CheckpointError, WriteError):
    """A checkpoint or training state could not be written (disk full...); the old file is kept."""


# --- typed parts of the metadata ---------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LabelInfo:
    """The label a model was trained with (e.g. its classifier's classes).

    field : dataset label field, e.g. ``"digit"`` or ``"instrument_family_str"``
    names : class names in class-index order
    """

    field: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TrainingSummary:
    """What training did; written by the trainer, shown by the explorer.

    Non-finite losses are stored as ``None`` (JSON has no NaN). ``date`` is ISO 8601, UTC.
    """

    epochs: int = 0
    steps: int = 0
    best_val_loss: float | None = None
    final_train_loss: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    date: str | None = None
    device: str | None = None
    wall_time_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, eq=False)
class CheckpointInfo:
    """Everything a checkpoint says about itself, read without building the model.

    ``meta`` is the full JSON document, migrated to the current schema; the other fields are
    typed views of it. ``stored_schema_version`` is the version found in the file.
    """

    path: Path
    meta: dict[str, Any]
    stored_schema_version: int
    model_name: str
    preset: str | None
    model_config: dict[str, Any]
    representation: dict[str, Any]
    dataset_fingerprint: str | None
    labels: LabelInfo | None
    training: TrainingSummary | None
    package_version: str
    created: str
    latent_shape: tuple[int, ...] | None
    item_layout: str
    has_latent_stats: bool
    n_parameters: int
    file_size: int


@dataclass(frozen=True, kw_only=True, eq=False)
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, on the requested device) and its description."""

    model: LatentModel
    info: CheckpointInfo
    latent_stats: LatentStats | None

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def meta(self) -> dict[str, Any]:
        return self.info.meta

    @property
    def representation(self) -> dict[str, Any]:
        return self.info.representation

    @property
    def labels(self) -> LabelInfo | None:
        return self.info.labels

    @property
    def training(self) -> TrainingSummary | None:
        return self.info.training

    @property
    def preset(self) -> str | None:
        return self.info.preset


# --- saving -------------------------------------------------------------------------------------
def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _clean_key(key: str) -> str:
    # A compiled *submodule* leaves "_orig_mod" mid-key. A leading "module." (DDP) cannot occur
    # here because unwrap_model removed the wrapper, and a mid-key "module" may be a real name.
    return ".".join(p for p in key.split(".") if p != _COMPILE_SEGMENT)


def _portable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with wrapper prefixes stripped, on the CPU, contiguous, sharing no storage."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        name = _clean_key(key)
        if name in out:
            raise CheckpointError(f"two state-dict entries map to {name!r} after unwrapping")
        if name.startswith(STATS_PREFIX):
            raise CheckpointError(f"state-dict key {name!r} clashes with the latent statistics")
        # clone: safetensors refuses tensors that share storage (tied weights, views)
        out[name] = tensor.detach().to("cpu").contiguous().clone()
    return out


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    preset: Any = None,
    representation: dict[str, Any],
    dataset_fingerprint: str | None = None,
    labels: LabelInfo | dict[str, Any] | None = None,
    training: TrainingSummary | dict[str, Any] | None = None,
    latent_stats: LatentStats | None = None,
    item_layout: str | None = None,
) -> Path:
    """Write ``model`` and its description to one ``.safetensors`` file, atomically.

    Parameters
    ----------
    path : destination; ``.safetensors`` is appended when it has no suffix
    model : a registered LatentModel, possibly wrapped by DDP or torch.compile
    preset : preset name (or a Preset), or None
    representation : the representation's ``to_dict()`` (``{"kind": ..., **params}``)
    dataset_fingerprint : ``Dataset.fingerprint`` of the training set
    labels : ``LabelInfo`` or ``{"field": ..., "names": [...]}``
    training : ``TrainingSummary`` or a dict of its fields
    latent_stats : statistics of the training set's codes (see ``latent_statistics``)
    item_layout : how clips were cut into the model's items (``models.inference.layout``);
        ``layout_for(model, representation)``, the trainer's rule, when None

    Returns
    -------
    Path : the file written. An existing file there is replaced only once the new one is complete.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".safetensors")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: checkpoints are .safetensors files, not {path.suffix}")
    bare = unwrap_model(model)
    model_cls = type(bare)
    if not isinstance(bare, LatentModel) or MODEL_REGISTRY.get(model_cls.name) is not model_cls:
        raise CheckpointError(
            f"{model_cls.__name__} is not a registered LatentModel; load_checkpoint could not rebuild it"
        )
    model_config = config_to_dict(bare.config)
    try:
        config_from_dict(model_cls.config_class, model_config)
    except ConfigError as exc:
        raise CheckpointError(f"the model's config does not survive JSON: {exc}") from exc
    rep = _check_representation(representation)
    labels_info = _as_dataclass(LabelInfo, labels, "labels")
    training_info = _as_dataclass(TrainingSummary, training, "training")
    latent_shape = _latent_shape_of(bare)
    if latent_stats is not None and latent_shape is not None and latent_stats.latent_shape != latent_shape:
        raise CheckpointError(
            f"latent statistics are for codes of shape {latent_stats.latent_shape}, "
            f"the model's codes have shape {latent_shape}"
        )

    tensors = _portable_tensors(bare)
    n_parameters = sum(t.numel() for t in tensors.values())
    if latent_stats is not None:
        for name, arr in latent_stats.to_arrays().items():
            tensors[STATS_PREFIX + name] = torch.from_numpy(arr)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT_NAME,
        "model_name": model_cls.name,
        "preset": getattr(preset, "name", preset),
        "model_config": model_config,
        "latent_shape": list(latent_shape) if latent_shape is not None else None,
        "variational": bool(model_cls.variational),
        "consumes": model_cls.consumes,
        "item_layout": _item_layout(item_layout, model_cls, rep),
        "representation": rep,
        "dataset_fingerprint": dataset_fingerprint,
        "labels": _finite(config_to_dict(labels_info)) if labels_info else None,
        "training": _finite(config_to_dict(training_info)) if training_info else None,
        "latent_stats": (
            {"latent_shape": list(latent_stats.latent_shape), "n_codes": latent_stats.n_codes}
            if latent_stats is not None
            else None
        ),
        "weights": {"sha256": tensors_sha256(tensors), "n_tensors": len(tensors), "n_parameters": n_parameters},
        "package_version": models.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint metadata is not plain JSON: {exc}") from exc
    blob = safetensors.torch.save(tensors, metadata={"format": "pt", METADATA_KEY: text})
    try:
        with atomic_open(path, "wb") as f:
            _write_chunks(f, blob)
    except OSError as exc:
        raise CheckpointWriteError.of(exc, path, kept="the previous file is unchanged") from exc
    return path


def _write_chunks(f: Any, blob: bytes) -> None:
    view = memoryview(blob)
    for start in range(0, len(view), _WRITE_CHUNK):
        f.write(view[start : start + _WRITE_CHUNK])


def _item_layout(given: str | None, model_cls: type, rep: dict[str, Any]) -> str:
    try:
        derived = layout_for(model_cls, representation_class(rep["kind"]))
        if given is not None and parse_layout(given) != derived:
            raise CheckpointError(f"{model_cls.name} on {rep['kind']} features takes {derived}, not {given}")
    except ConfigError as exc:
        raise CheckpointError(f"cannot record the item layout: {exc}") from exc
    return derived


def _check_representation(rep: Any) -> dict[str, Any]:
    if not isinstance(rep, dict) or not isinstance(rep.get("kind"), str):
        raise CheckpointError('representation must be a dict with a "kind" (Representation.to_dict())')
    try:
        return json.loads(json.dumps(rep, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"representation is not plain JSON: {exc}") from exc


def _as_dataclass(cls: type, value: Any, what: str) -> Any:
    if value is None or isinstance(value, cls):
        return value
    try:
        return config_from_dict(cls, value)
    except ConfigError as exc:
        raise CheckpointError(f"{what}: {exc}") from exc


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None: JSON cannot hold them, and a diverged loss is 'no value'."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _latent_shape_of(model: LatentModel) -> tuple[int, ...] | None:
    try:
        return tuple(int(s) for s in model.latent_shape)
    except NotImplementedError:
        return None


# --- reading ------------------------------------------------------------------------------------
def _resolve(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.safetensors"))
        hint = f"; it holds {', '.join(found)}" if found else ""
        raise CheckpointError(f"{path} is a folder; pass the checkpoint file itself{hint}")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def _info_from(path: Path, header: dict[str, Any], meta: dict[str, Any], stored: int) -> CheckpointInfo:
    check_meta(path, meta)  # types and size limits of every field, before anything uses them
    try:
        labels = config_from_dict(LabelInfo, meta["labels"]) if meta["labels"] else None
        training = config_from_dict(TrainingSummary, meta["training"]) if meta["training"] else None
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    for key, kind in (("model_name", str), ("model_config", dict), ("representation", dict)):
        if not isinstance(meta[key], kind):
            raise CheckpointError(f"{path}: {key} must be a {kind.__name__}, got {meta[key]!r}")
    weights = [e for n, e in header.items() if not n.startswith(STATS_PREFIX)]
    shape = meta.get("latent_shape")
    return CheckpointInfo(
        path=path,
        meta=meta,
        stored_schema_version=stored,
        model_name=meta["model_name"],
        preset=meta["preset"],
        model_config=meta["model_config"],
        representation=meta["representation"],
        dataset_fingerprint=meta["dataset_fingerprint"],
        labels=labels,
        training=training,
        package_version=str(meta["package_version"]),
        created=str(meta["created"]),
        latent_shape=tuple(shape) if isinstance(shape, list) else None,
        item_layout=meta["item_layout"],
        has_latent_stats=meta["latent_stats"] is not None,
        n_parameters=sum(math.prod(e["shape"]) for e in weights),
        file_size=path.stat().st_size,
    )


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """Read a checkpoint's description from its header only: no tensor data, no model built."""
    return _read_info(_resolve(path))[0]


def _read_info(path: Path, file: BinaryIO | None = None) -> tuple[CheckpointInfo, dict[str, Any]]:
    header, metadata, _ = read_header(path, file)
    meta = parse_metadata(path, metadata)  # first: it refuses what is too deep to parse
    stored = _stored_version(metadata)
    return _info_from(path, header, meta, stored), header


def _stored_version(metadata: dict[str, str]) -> int:
    # Only for reporting; parse_metadata does the real checks.
    try:
        return int(json.loads(metadata.get(METADATA_KEY, "{}")).get("schema_version", -1))
    except (ValueError, TypeError, AttributeError):
        return -1


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model of a checkpoint and load its weights, checking everything on the way.

    Parameters
    ----------
    path : a ``.safetensors`` checkpoint written by :func:`save_checkpoint` (any schema version
        this code can migrate). ``.pt`` / pickle files are refused without being opened.
    device : where the model goes (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``). Weights are
        always read on the CPU first, so a GPU-trained checkpoint never needs CUDA.

    Raises
    ------
    CheckpointError
        Missing, pickled, truncated or tampered file; unknown schema or model; weights that do
        not fit the model's config; a device that is not available.
    """
    path = _resolve(path)
    target = _resolve_device(device)
    try:
        # one open file for the header and the tensors: a trainer that replaces the checkpoint
        # meanwhile (an atomic rename) leaves this one reading the version it opened, where two
        # opens could pair one version's metadata with the next one's tensors ("tampered")
        with open(path, "rb") as f:
            info, header = _read_info(path, f)
            # shapes first, on the meta device: a config that would not fit the file's tensors
            # (or would allocate gigabytes) is refused before any memory is spent on it
            check_model_fits(path, info.model_name, info.model_config, header)
            f.seek(0)
            data = f.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the tensors ({exc})") from exc
    del data  # the file's bytes: the tensors hold their own copy
    meta = info.meta
    expected = (meta["weights"] or {}).get("sha256")
    if expected is not None and tensors_sha256(tensors) != expected:
        raise CheckpointError(
            f"{path} is corrupt or was tampered with: its tensors do not match the hash in its "
            "metadata. Use a fresh copy of the file."
        )
    weights = {n: t for n, t in tensors.items() if not n.startswith(STATS_PREFIX)}
    stats = {n[len(STATS_PREFIX) :]: t.numpy() for n, t in tensors.items() if n.startswith(STATS_PREFIX)}
    model = _build(path, info)
    _check_item_layout(path, info, model)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the weights do not fit a {info.model_name} built from the stored config "
            f"(the file was edited, or written by an incompatible version):\n{exc}"
        ) from None
    model.eval().to(target)
    return Checkpoint(model=model, info=info, latent_stats=_stats(path, meta, stats))


def _check_item_layout(path: Path, info: CheckpointInfo, model: LatentModel) -> None:
    """The app cuts clips the way the model was trained, or refuses it (the file says how)."""
    try:
        now = layout_for(model, representation_class(info.representation.get("kind")))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    if now != info.item_layout:
        raise CheckpointError(
            f"{path} was trained on {info.item_layout} of its features, but this latent-explorer feeds a "
            f"{info.model_name} {now}; open it with the version that trained it, or retrain"
        )


def _build(path: Path, info: CheckpointInfo) -> LatentModel:
    try:
        return build_model(info.model_name, info.model_config)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model: {exc}") from exc
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: building {info.model_name} from its stored config failed: {exc}") from exc


def _stats(path: Path, meta: dict[str, Any], arrays: dict[str, Any]) -> LatentStats | None:
    desc = meta["latent_stats"]
    if desc is None:
        return None
    try:
        return LatentStats.from_arrays(arrays, latent_shape=desc["latent_shape"], n_codes=desc["n_codes"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: bad latent statistics: {exc}") from exc


def _resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CheckpointError(f"unknown device {device!r}: {exc}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} asked for, but CUDA is not available; use device='cpu'")
    return target
