"""``latent-trainer export``: a checkpoint's decoder as TorchScript / ONNX (models/checkpoints/export.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


#: models.checkpoints.export.EXPORT_FORMATS, repeated so that `--help` does not import torch and onnx
_FORMATS = ("torchscript", "onnx")
#: an audio-out TorchScript for nn~ in Max / Pd (models/nntilde/export.py); asked for by name
NN_TILDE = "nn_tilde"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint's decoder (TorchScript, ONNX)")
    p.add_argument("--checkpoint", required=True, type=Path, help="a .safetensors checkpoint")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--formats", "--format", nargs="+", default=list(_FORMATS), choices=(*_FORMATS, NN_TILDE),
                   help=f"decoder formats (default: {' '.join(_FORMATS)}); {NN_TILDE}: latents in, audio out, for nn~")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.checkpoints.export import export_decoder

    decoders = tuple(f for f in args.formats if f != NN_TILDE)
    if decoders:
        result = export_decoder(args.checkpoint, args.out, formats=decoders)
        for fmt, path in result.files.items():
            print(f"{fmt}: {path} (max abs error {result.max_abs_error[fmt]:.3g} against the checkpoint)")
        print(f"metadata: {result.metadata_path}")
    if NN_TILDE in args.formats:
        from models.nntilde.export import export_nn_tilde

        nn = export_nn_tilde(args.checkpoint, args.out)
        print(f"{NN_TILDE}: {nn.path} (spectral convergence {nn.spectral_convergence:.3f} against the app's decode)")
        print(f"metadata: {nn.metadata_path}")
    return 0
