"""``latent-trainer render SPEC.json``: decode again the audio an explorer export describes.

The spec (written beside every export) names the checkpoint and the hash of its weights, the
path or sound, and the output format; the WAVs written here hold the same samples as the
exported ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render again the audio of an explorer export (its .json spec)")
    p.add_argument("spec", type=Path, help="the .json written beside exported audio")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: beside the spec)")
    p.add_argument("--checkpoint", type=Path, default=None, help="the model's checkpoint, if it has moved")
    p.add_argument("--dataset", type=Path, default=None, help="the dataset folder, if it has moved (decoded clips)")
    p.add_argument("--overwrite", action="store_true", help="replace files of the same names in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.errors import ConfigError
    from models.morphing.export_audio import render_from_spec, write_export
    from models.safe_json import load_json_file
    from models.safe_paths import free_stem

    spec = load_json_file(args.spec, what="render spec", error=ConfigError, max_bytes=64 * 1024 * 1024)
    rendered = render_from_spec(spec, checkpoint=args.checkpoint, dataset_path=args.dataset)
    out = args.out or args.spec.parent
    names = rendered.names
    if not args.overwrite:
        # never overwrite an earlier render: the same names with the first free "-k" suffix
        stem = args.spec.stem
        new = free_stem(out, stem, lambda s: [numbered(n, stem, s) for n in names])
        names = [numbered(n, stem, new) for n in names]
    # write_export confines every name to `out`, with or without --overwrite
    written = write_export(out, list(zip(names, rendered.signals)), sr=rendered.sr, subtype=rendered.subtype)
    for p in written:
        print(p)
    return 0


def numbered(name: str, stem: str, candidate: str) -> str:
    """``name`` renamed for the free stem ``candidate`` (``stem`` or ``stem-k``).

    A name holding ``stem`` gets it replaced; any other name gets the ``-k`` before its
    extension, so every candidate really is a different name (the search always moves on).
    """
    if candidate == stem:
        return name
    if stem and stem in name:
        return name.replace(stem, candidate, 1)
    base, dot, ext = name.rpartition(".")
    tail = candidate[len(stem):]
    return f"{base}{tail}.{ext}" if dot and base else name + tail
