"""``latent-trainer export``: a checkpoint's decoder as TorchScript / ONNX (models/checkpoints/export.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


#: models.checkpoints.export.EXPORT_FORMATS, repeated so that `--help` does not import torch and onnx
_FORMATS = ("torchscript", "onnx")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint's decoder (TorchScript, ONNX)")
    p.add_argument("--checkpoint", required=True, type=Path, help="a .safetensors checkpoint")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--formats", nargs="+", default=list(_FORMATS), choices=_FORMATS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.checkpoints.export import export_decoder

    result = export_decoder(args.checkpoint, args.out, formats=tuple(args.formats))
    for fmt, path in result.files.items():
        print(f"{fmt}: {path} (max abs error {result.max_abs_error[fmt]:.3g} against the checkpoint)")
    print(f"metadata: {result.metadata_path}")
    return 0
