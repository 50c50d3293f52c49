"""``latent-trainer dataset ...``: build and inspect datasets."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build or inspect a dataset")
    p.set_defaults(func=lambda args: p.print_help() or 0)
