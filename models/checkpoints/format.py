"""The checkpoint file format, below the model: header parsing, hashing, schema migrations.

A checkpoint is one ``.safetensors`` file. Its header (8-byte little-endian length + JSON) is
read here with :func:`json.loads` only, and checked before any tensor is touched, so a
truncated or hand-edited file fails with a message that says what is wrong. Nothing here
imports pickle or calls ``torch.load``.

Schema versions: the JSON our header carries has an integer ``schema_version``. Older
versions are brought to :data:`SCHEMA_VERSION` by the chain in :data:`MIGRATIONS`; newer ones
are refused with a message asking to upgrade latent-explorer.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from models.errors import CheckpointError, ConfigError
from models.safe_json import loads_limited
from models.inference.layout import LAYOUTS, layout_of
from models.representations.base import representation_class

#: version of the JSON layout written by this code
SCHEMA_VERSION = 3
#: key of ``__metadata__`` that holds our JSON (safetensors metadata is a str -> str map)
METADATA_KEY = "latent_explorer"
#: value of ``format`` in our JSON, to tell our files from any other safetensors file
FORMAT_NAME = "latent-explorer-checkpoint"
#: tensors whose name starts with this hold the latent statistics, not model weights
STATS_PREFIX = "__latent_stats__."

#: suffixes of files written by ``torch.save`` / ``pickle``: never opened
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar", ".joblib"})
#: safetensors refuses headers above 100 MB; so do we, before reading them
MAX_HEADER_BYTES = 100_000_000
#: bytes per element of each safetensors dtype
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip

CONVERT_HINT = (
    "latent-explorer never opens pickle files, because unpickling can run any code hidden in "
    "the file. If you trust where this file comes from, convert its weights to a .safetensors "
    "checkpoint as shown in docs/checkpoints.md, section 'Converting a .pt file'."
)


# --- refusing pickles ---------------------------------------------------------------------
def refuse_pickle(path: Path, head: bytes) -> None:
    """Raise CheckpointError if ``path`` looks like a pickle or a ``torch.save`` zip.

    Judged from the suffix and the first bytes only; the file is never unpickled.
    ``head`` holds the first (up to 9) bytes of the file.
    """
    kind = None
    # A safetensors header length can start with the same bytes as a pickle (0x80 0x04 is a
    # 1152-byte header), so the JSON's opening brace at byte 8 tells them apart.
    looks_safetensors = head[8:9] == b"{"
    if path.suffix.lower() in PICKLE_SUFFIXES:
        kind = f"a PyTorch/pickle file ({path.suffix})"
    elif head.startswith(b"PK\x03\x04"):
        kind = "a zip archive (what torch.save writes)"
    elif head[:1] == b"\x80" and head[1:2] in {bytes([p]) for p in range(2, 6)} and not looks_safetensors:
        kind = "a Python pickle"
    if kind is not None:
        raise CheckpointError(f"{path} is {kind}, not a latent-explorer checkpoint. {CONVERT_HINT}")


# --- the safetensors header -----------------------------------------------------------------
def _strict_json(text: str, where: str) -> Any:
    """``json.loads`` that rejects duplicate keys and NaN/Infinity (neither is valid JSON)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            dup = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
            raise CheckpointError(f"{where}: duplicate key(s) {', '.join(dup[:10])}")
        return out

    def no_constant(name: str) -> Any:
        raise CheckpointError(f"{where}: {name} is not valid JSON")

    # depth-limited: a header nested 10^5 deep is refused instead of raising RecursionError
    return loads_limited(text, where=where, error=CheckpointError, object_pairs_hook=no_duplicates,
                         parse_constant=no_constant)


def read_header(path: Path, file: BinaryIO | None = None) -> tuple[dict[str, Any], dict[str, str], int]:
    """Read and check the safetensors header of ``path`` without reading the tensor data.

    ``file``: ``path`` already open (binary): the header and the size are that open file's, so
    a caller that goes on to read the tensors from it reads one version of the file even when
    another process replaces ``path`` meanwhile.

    Returns
    -------
    tensors : dict[str, dict]
        name -> ``{"dtype", "shape", "data_offsets"}``, each checked against the file size.
    metadata : dict[str, str]
        The ``__metadata__`` map (empty if absent).
    data_start : int
        Offset of the data section in the file.
    """
    try:
        with contextlib.ExitStack() as stack:
            f = file if file is not None else stack.enter_context(open(path, "rb"))
            size = os.fstat(f.fileno()).st_size
            f.seek(0)
            head = f.read(9)
            refuse_pickle(path, head)
            head = head[:8]
            f.seek(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is too short ({size} bytes) to be a safetensors file")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise CheckpointError(
                    f"{path} is truncated or not a safetensors file: its header claims {n} bytes "
                    f"but the file holds {size - 8} after the length prefix"
                )
            raw = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: the safetensors header is not UTF-8 text") from None
    header = _strict_json(text, f"{path}: safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")
    data_size = size - 8 - n
    _check_layout(path, header, data_size)
    return header, metadata, 8 + n


def _check_layout(path: Path, tensors: dict[str, Any], data_size: int) -> None:
    """Every tensor's dtype, shape and byte range must agree, and lie inside the data section."""
    end_max = 0
    for name, entry in tensors.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{where}: expected dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_SIZES:
            raise CheckpointError(f"{where}: unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(_is_count(s) for s in shape)):
            raise CheckpointError(f"{where}: bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
            raise CheckpointError(f"{where}: bad data_offsets {offsets!r}")
        begin, end = offsets
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        if end < begin or end - begin != nbytes:
            raise CheckpointError(
                f"{where}: shape {shape} of {dtype} needs {nbytes} bytes, offsets give {end - begin}"
            )
        if end > data_size:
            raise CheckpointError(
                f"{path} is truncated: tensor {name!r} ends at byte {end} of the data section, "
                f"which holds only {data_size} bytes"
            )
        end_max = max(end_max, end)
    if end_max != data_size:
        raise CheckpointError(
            f"{path}: the data section holds {data_size} bytes but the tensors cover {end_max}; "
            "the file was altered or appended to"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_metadata(path: Path, metadata: Mapping[str, str]) -> dict[str, Any]:
    """Our JSON from the safetensors metadata, migrated to the current schema."""
    if METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path} is a safetensors file but not a latent-explorer checkpoint "
            f"(no {METADATA_KEY!r} entry in its metadata); save models with "
            "models.checkpoints.checkpoint.save_checkpoint"
        )
    meta = _strict_json(metadata[METADATA_KEY], f"{path}: checkpoint metadata")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: checkpoint metadata is not a JSON object")
    return migrate(meta, where=str(path))


# --- schema migrations ------------------------------------------------------------------------
def migrate_1_to_2(meta: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (0.0.x): short key names, labels nested in ``dataset``, no hash, no statistics.

    v1: ``model``, ``config``, ``dataset: {fingerprint, label_field, classes}``, ``version``.
    v2: ``model_name``, ``model_config``, ``dataset_fingerprint``, ``labels: {field, names}``,
    ``package_version``, plus ``format``, ``weights`` (hash) and ``latent_stats``.
    """
    out = {k: v for k, v in meta.items() if k not in {"model", "config", "dataset", "version"}}
    out["format"] = FORMAT_NAME
    out["model_name"] = meta["model"]
    out["model_config"] = meta["config"]
    dataset = meta.get("dataset") or {}
    out["dataset_fingerprint"] = dataset.get("fingerprint")
    field = dataset.get("label_field")
    out["labels"] = {"field": field, "names": list(dataset.get("classes") or [])} if field else None
    out["package_version"] = meta.get("version", "unknown")
    out.setdefault("preset", None)
    out.setdefault("training", None)
    out["weights"] = None  # v1 stored no hash: nothing to verify against
    out["latent_stats"] = None
    out["schema_version"] = 2
    return out


def migrate_2_to_3(meta: dict[str, Any]) -> dict[str, Any]:
    """Version 2 did not record how clips were cut into items: ``item_layout`` is derived.

    Version-2 files were trained by the rule of :func:`models.inference.layout.layout_for`:
    ``"clips"`` unless the representation is time-first (stft_frames), then ``"windows"`` for a
    sequence model and ``"frames"`` otherwise. The only sequence model (lstm_ae) is also the only
    one whose items on time-first features are two-dimensional ``(seq_len, n_bins)``, which is
    what is read here (no model class is needed to open a file's header).
    """
    out = dict(meta)
    time_first = representation_class(meta["representation"]["kind"]).time_first
    sequence = time_first and len(meta["model_config"]["input_shape"]) == 2
    out["item_layout"] = layout_of(time_first=time_first, sequence=sequence)
    out["schema_version"] = 3
    return out


#: ``MIGRATIONS[v]`` turns a version-``v`` dict into a version ``v + 1`` dict
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: migrate_1_to_2, 2: migrate_2_to_3}

#: keys every current-version dict has (checked after migration)
REQUIRED_KEYS = frozenset({
    "schema_version", "format", "model_name", "preset", "model_config", "representation",
    "dataset_fingerprint", "labels", "training", "weights", "latent_stats", "package_version",
    "created", "item_layout",
})  # fmt: skip


def migrate(meta: dict[str, Any], *, where: str = "checkpoint") -> dict[str, Any]:
    """Bring ``meta`` to :data:`SCHEMA_VERSION` through :data:`MIGRATIONS`, or explain why not."""
    version = meta.get("schema_version")
    if not _is_count(version):
        raise CheckpointError(f"{where}: metadata has no integer schema_version (got {version!r})")
    if version > SCHEMA_VERSION:
        raise CheckpointError(
            f"{where} uses checkpoint schema {version}, newer than this latent-explorer reads "
            f"(up to {SCHEMA_VERSION}); upgrade latent-explorer to open it"
        )
    oldest = min(MIGRATIONS, default=SCHEMA_VERSION)
    if version < oldest:
        raise CheckpointError(
            f"{where} uses checkpoint schema {version}, older than any this latent-explorer can "
            f"migrate (from {oldest}); open it with an older latent-explorer and save it again, "
            "or retrain"
        )
    while meta["schema_version"] < SCHEMA_VERSION:
        step = meta["schema_version"]
        try:
            meta = MIGRATIONS[step](dict(meta))
        except (KeyError, TypeError, AttributeError, ConfigError) as exc:
            raise CheckpointError(
                f"{where}: cannot migrate schema {step} metadata to {step + 1} "
                f"(missing or malformed {exc})"
            ) from None
    missing = sorted(REQUIRED_KEYS - set(meta))
    if missing:
        raise CheckpointError(f"{where}: checkpoint metadata lacks {', '.join(missing)}")
    if meta["item_layout"] not in LAYOUTS:
        raise CheckpointError(f"{where}: item_layout is {meta['item_layout']!r}, expected one of {', '.join(LAYOUTS)}")
    if meta["format"] != FORMAT_NAME:
        raise CheckpointError(f"{where}: format is {meta['format']!r}, expected {FORMAT_NAME!r}")
    return meta


# --- content hash -----------------------------------------------------------------------------
def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the name, dtype, shape and bytes of every tensor, in name order.

    safetensors itself has no checksum, so a flipped byte in the data section would load
    silently; this hash, stored in the metadata, catches it. It does not depend on where
    safetensors places each tensor in the file. Tensors must be on the CPU.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        # uint8 view: raw bytes for any dtype (numpy has no bfloat16)
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a whole file (what export writes beside each exported decoder)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
