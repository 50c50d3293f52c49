"""``latent-trainer``: the command-line entry point.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the parser it
adds carries a ``func(args) -> int`` default.
"""

from __future__ import annotations

import argparse
import logging
import sys

from models import __version__
from models.errors import LatentExplorerError

# Sub-command modules, in the order they appear in --help.
_COMMAND_MODULES = (
    "trainer.dataset_cmd",
    "trainer.train_cmd",
    "trainer.evaluate_cmd",
    "trainer.compare_cmd",
    "trainer.export_cmd",
    "trainer.render_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="latent-trainer",
        description="Build datasets, train, evaluate and export latent-explorer models.",
    )
    parser.add_argument("--version", action="version", version=f"latent-explorer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except LatentExplorerError as exc:
        print(f"latent-trainer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latent-trainer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
