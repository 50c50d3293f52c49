"""``latent-trainer train``: train a preset on a dataset into a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a preset on a dataset",
        description="Train a preset on a dataset into a run folder (config, split, events, log, "
        "checkpoints last/best, resume state). Stop cleanly with Ctrl-C, SIGTERM, a file named STOP "
        "in the run folder, or 'stop' on stdin (--stdin-commands); continue with --resume.",
    )
    p.add_argument("--preset", help="preset name (see `latent-trainer presets`)")
    p.add_argument("--data", help="dataset folder (audio folder, NSynth, FSDD or Hydrogen kits)")
    p.add_argument("--run-dir", required=True, type=Path, help="run folder to create or resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model.*, train.* or rep.* key (repeatable), e.g. model.latent_dim=8")
    p.add_argument("--tiny", action="store_true", help="the preset's tiny size (tests, smoke runs)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--start-over", action="store_true",
                   help="train the run in --run-dir again from step 0, replacing its checkpoints "
                   "(what --resume refuses to do silently when the run has no training state)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start a new run from this checkpoint's weights (its model and "
                   "representation are kept; --preset defaults to the checkpoint's)")
    p.add_argument("--events", action="store_true", help="JSON-lines events on stdout")
    p.add_argument("--stdin-commands", action="store_true", help="read commands ('stop') from stdin")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=None, help="seed of split, init and data order (default 0)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    p.add_argument("--cache-dir", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from trainer.run import run_training
    from trainer.run_setup import TrainOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    opts = TrainOptions(
        run_dir=args.run_dir.resolve(), preset=args.preset, data=args.data, overrides=tuple(args.overrides),
        resume=args.resume, events=args.events, device=args.device, seed=args.seed,
        max_steps=args.max_steps, epochs=args.epochs, tiny=args.tiny,
        stdin_commands=args.stdin_commands, cache_dir=args.cache_dir,
        progress_bar=sys.stdout.isatty() and not args.events, init_from=args.init_from,
        start_over=args.start_over, debug=bool(getattr(args, "debug", False)),
    )
    return run_training(opts)
