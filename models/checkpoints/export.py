"""Export a checkpoint's decoder for other tools: TorchScript (libtorch, nn~) and ONNX.

The exported graph maps a batch of latent codes to the decoded representation features, the
same numbers ``model.decode`` gives. Turning features into audio depends on the representation
(an inverse STFT with estimated phase, mel inversion, or nothing for waveforms); the metadata
JSON written beside the graphs says how, with the representation's parameters.

Each export is run once more after writing and compared with ``model.decode``; an exported file
that does not reproduce the model is an error, not a warning.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import models
from models.atomic import atomic_open, atomic_write_bytes, atomic_write_json
from models.checkpoints.checkpoint import Checkpoint, load_checkpoint
from models.checkpoints.format import file_sha256
from models.errors import CheckpointError

__all__ = ["EXPORT_FORMATS", "DecoderModule", "ExportError", "ExportResult", "export_decoder"]

EXPORT_FORMATS = ("torchscript", "onnx")
EXPORT_SCHEMA_VERSION = 1
_SUFFIX = {"torchscript": ".decoder.ts", "onnx": ".decoder.onnx"}
#: name of the metadata JSON inside the TorchScript archive and the ONNX model's properties
EMBEDDED_KEY = "latent_explorer.json"
#: how many principal axes of the latent statistics go into the metadata (for XY pads)
N_AXES_IN_METADATA = 8

TO_AUDIO = {
    "stft_frames": (
        "Each output row is one magnitude-STFT frame (n_fft // 2 + 1 bins) scaled so that its "
        "maximum is 1 (a sequence model gives (n_frames, n_bins)). Multiply by a gain (the frame "
        "maximum), give it a phase (Griffin-Lim, or phase-gradient integration as in "
        "latent-explorer) and inverse-STFT with the representation's sample_rate, n_fft, "
        "hop_length and window. One frame repeated over time is a steady tone."
    ),
    "stft_sequence": (
        "Output is (n_frames, n_bins) magnitude frames, each scaled to a maximum of 1; invert as "
        "for stft_frames, frame by frame."
    ),
    "logmel": (
        "Output is a log-mel spectrogram (n_mels, n_frames) scaled to [0, 1]. Undo the scaling "
        "(the representation's dB range), convert dB to power, map mel bands back to STFT bins "
        "(e.g. librosa.feature.inverse.mel_to_stft) and estimate phase (Griffin-Lim)."
    ),
    "waveform": "Output is audio: samples at the representation's sample_rate, roughly in [-1, 1].",
}
PYTHON_RECIPE = (
    "from models.representations import representation_from_dict; "
    "rep = representation_from_dict(meta['representation']); y = rep.synthesize(features[0])"
)


class ExportError(CheckpointError):
    """A decoder could not be exported, or the export does not reproduce the model."""


class DecoderModule(nn.Module):
    """What is exported: ``z [shape=(batch, *latent_shape)] -> features [shape=(batch, *feature_shape)]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    """Paths written by :func:`export_decoder` and the metadata written beside them.

    files : format name (``"torchscript"``, ``"onnx"``) -> path; ``metadata_path`` is the JSON.
    max_abs_error : format name -> largest |exported - model.decode| on the check batch.
    """

    files: dict[str, Path]
    metadata_path: Path
    metadata: dict[str, Any]
    max_abs_error: dict[str, float]


@contextlib.contextmanager
def _quiet_export_warnings() -> Iterator[None]:
    # Upstream deprecates TorchScript and the TorchScript-based ONNX exporter for torch.export,
    # but TorchScript is what nn~ and libtorch hosts load, and the dynamo ONNX exporter needs
    # onnxscript, which we do not depend on (torch is pinned). TracerWarnings and the LSTM
    # batch-size warning are about inputs other than the traced one: export_decoder runs every
    # file on another batch size and compares, the check they ask for. Constant folding of
    # strided slices is an optimisation note.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, message=r".*(legacy TorchScript|torch\.jit)"
        )
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r"Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", message=r"Constant folding - Only steps=1")
        yield


def export_decoder(
    checkpoint_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = EXPORT_FORMATS,
    opset: int = 17,
    atol: float = 1e-4,
) -> ExportResult:
    """Export the decoder of a checkpoint to ``out_dir`` with a metadata JSON beside it.

    Parameters
    ----------
    checkpoint_path : a ``.safetensors`` checkpoint (see ``models.checkpoints.checkpoint``)
    out_dir : created if missing; files are named after the checkpoint:
        ``<stem>.decoder.ts``, ``<stem>.decoder.onnx`` and ``<stem>.decoder.json``
    formats : any of ``"torchscript"``, ``"onnx"``
    opset : ONNX opset version
    atol : largest tolerated |exported - model.decode| on a check batch

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        Unknown format, tracing or export failure, or an export that does not match the model.
    CheckpointError
        The checkpoint itself cannot be loaded.
    """
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown export format(s) {unknown}; choose from {', '.join(EXPORT_FORMATS)}")
    checkpoint_path = Path(checkpoint_path)
    ck = load_checkpoint(checkpoint_path, device="cpu")
    out_dir = Path(out_dir)
    stem = checkpoint_path.name.removesuffix(".safetensors")
    decoder = DecoderModule(ck.model).eval()
    latent_shape = tuple(ck.model.latent_shape)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(2, *latent_shape, generator=gen)
    check = _check_batch(ck, latent_shape, gen)
    with torch.no_grad():
        expected = decoder(check)
    meta = _metadata(ck, checkpoint_path, latent_shape, tuple(expected.shape[1:]), opset)
    embedded = json.dumps(meta)

    files: dict[str, Path] = {}
    errors: dict[str, float] = {}
    for fmt in formats:
        path = out_dir / (stem + _SUFFIX[fmt])
        writer = _export_torchscript if fmt == "torchscript" else _export_onnx
        with _quiet_export_warnings(), torch.no_grad():
            got = writer(decoder, example, check, path, embedded, opset)
        err = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
        if not err <= atol:
            path.unlink(missing_ok=True)
            raise ExportError(
                f"{fmt} export of {stem} does not reproduce model.decode "
                f"(max |error| {err:.3g} > {atol:g}, shapes {tuple(got.shape)} vs {tuple(expected.shape)})"
            )
        files[fmt] = path
        errors[fmt] = err
        meta["files"][fmt] = {"file": path.name, "sha256": file_sha256(path), "max_abs_error": err}
    metadata_path = out_dir / f"{stem}.decoder.json"
    atomic_write_json(metadata_path, meta)
    return ExportResult(files=files, metadata_path=metadata_path, metadata=meta, max_abs_error=errors)


def _check_batch(ck: Checkpoint, latent_shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Three codes (a batch size other than the traced one) drawn where the training codes lie."""
    noise = torch.randn(3, *latent_shape, generator=gen)
    stats = ck.latent_stats
    if stats is None:
        return noise
    mean = torch.from_numpy(stats.mean).reshape(latent_shape)
    std = torch.from_numpy(stats.std).reshape(latent_shape)
    return mean + std * noise


def _export_torchscript(
    decoder: nn.Module, example: torch.Tensor, check: torch.Tensor, path: Path, embedded: str, opset: int
) -> torch.Tensor:
    try:
        traced = torch.jit.trace(decoder, (example,), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={EMBEDDED_KEY: embedded})
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ExportError(f"TorchScript tracing failed: {exc}") from exc
    atomic_write_bytes(path, buf.getvalue())
    # Run the file as a consumer would, from disk, on a batch size it was not traced with.
    return torch.jit.load(str(path), map_location="cpu")(check)


def _export_onnx(
    decoder: nn.Module, example: torch.Tensor, check: torch.Tensor, path: Path, embedded: str, opset: int
) -> torch.Tensor:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ExportError(
            f"ONNX export needs onnx and onnxruntime: pip install 'latent-explorer[export]' ({exc})"
        ) from None
    buf = io.BytesIO()
    try:
        torch.onnx.export(
            decoder,
            (example,),
            buf,
            dynamo=False,  # the dynamo exporter needs onnxscript, not a dependency of ours
            input_names=["z"],
            output_names=["features"],
            dynamic_axes={"z": {0: "batch"}, "features": {0: "batch"}},
            opset_version=opset,
        )
        proto = onnx.load_from_string(buf.getvalue())
        onnx.helper.set_model_props(proto, {EMBEDDED_KEY: embedded})
        onnx.checker.check_model(proto)
    except (RuntimeError, TypeError, ValueError, onnx.checker.ValidationError) as exc:
        raise ExportError(f"ONNX export failed: {exc}") from exc
    with atomic_open(path, "wb") as f:
        f.write(proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["features"], {"z": check.numpy()})
    return torch.from_numpy(np.asarray(out))


def _metadata(
    ck: Checkpoint, path: Path, latent_shape: tuple[int, ...], feature_shape: tuple[int, ...], opset: int
) -> dict[str, Any]:
    info = ck.info
    kind = str(info.representation.get("kind"))
    stats = ck.latent_stats
    latent_stats = None
    if stats is not None:
        latent_stats = {
            "mean": stats.mean.tolist(),
            "std": stats.std.tolist(),
            "principal_axes": stats.components[:N_AXES_IN_METADATA].tolist(),
            "explained_variance_ratio": stats.explained_variance_ratio[:N_AXES_IN_METADATA].tolist(),
            "note": "a 2-D pad maps to z = mean + x * principal_axes[0] + y * principal_axes[1] "
            "(flattened; reshape to the input shape)",
        }
    return {
        "format": "latent-explorer-decoder",
        "schema_version": EXPORT_SCHEMA_VERSION,
        "model_name": info.model_name,
        "preset": info.preset,
        "variational": bool(type(ck.model).variational),
        "input": {"name": "z", "shape": ["batch", *latent_shape], "dtype": "float32"},
        "output": {"name": "features", "shape": ["batch", *feature_shape], "dtype": "float32", "kind": kind},
        "representation": info.representation,
        "to_audio": TO_AUDIO.get(kind, "see the representation's parameters"),
        "python": PYTHON_RECIPE,
        "latent_stats": latent_stats,
        "dataset_fingerprint": info.dataset_fingerprint,
        "labels": None if info.labels is None else {"field": info.labels.field, "names": list(info.labels.names)},
        "source_checkpoint": {
            "file": path.name,
            "sha256": file_sha256(path),
            "schema_version": info.stored_schema_version,
        },
        "onnx_opset": opset,
        "files": {},
        "package_version": models.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
