"""``latent-trainer``: the command-line entry point.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``; the parser it
adds carries a ``func(args) -> int`` default.
"""

from __future__ import annotations

import argparse
import logging
import sys

from models import __version__
from models.atomic import os_error_message
from models.errors import LatentExplorerError
from models.threads import apply_nice_from_env

# Sub-command modules, in the order they appear in --help.
_COMMAND_MODULES = (
    "trainer.dataset_cmd",
    "trainer.train_cmd",
    "trainer.presets_cmd",
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
    parser.add_argument("--debug", action="store_true",
                        help="on a failure, print the traceback too (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


#: exit codes of every command (docs/trainer.md, "Exit codes")
EXIT_OK = 0
#: a bug: an exception none of our checks expected (one line; --debug shows the traceback)
EXIT_INTERNAL = 1
#: bad input: a wrong argument, a malformed or hostile file (ConfigError, DatasetError, ...)
EXIT_INPUT = 2
#: the file system refused: disk full, no permission, a read-only folder
EXIT_FILES = 3
#: the run folder is in use by another trainer
EXIT_BUSY = 4
#: interrupted (Ctrl-C twice while training, or Ctrl-C elsewhere)
EXIT_INTERRUPTED = 130
#: longest message printed; a failure is always one line
MAX_MESSAGE = 2000


def one_line(text: str) -> str:
    """``text`` on one line (newlines folded), cut to MAX_MESSAGE characters."""
    flat = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that ended a command."""
    from trainer.run_lock import RunLockedError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, RunLockedError):
        return EXIT_BUSY, f"error: {one_line(str(exc))}"
    if isinstance(exc, OSError):  # ours (models.atomic.WriteError) say what was kept
        text = str(exc) if isinstance(exc, LatentExplorerError) else os_error_message(exc)
        return EXIT_FILES, f"error: {one_line(text)}"
    if isinstance(exc, LatentExplorerError):
        return EXIT_INPUT, f"error: {one_line(str(exc))}"
    if isinstance(exc, MemoryError):
        return EXIT_INTERNAL, "error: out of memory"
    what = one_line(f"{type(exc).__name__}: {exc}")
    return EXIT_INTERNAL, f"internal error: {what} (a bug; run again with --debug for the traceback)"


def main(argv: list[str] | None = None) -> int:
    apply_nice_from_env()  # before any thread exists: they inherit it
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose or debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the CLI's one boundary
        code, message = describe_failure(exc)
        if debug and code != EXIT_INTERRUPTED:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        print(f"latent-trainer: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
