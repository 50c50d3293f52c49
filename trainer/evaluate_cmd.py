"""``latent-trainer evaluate``: the papers' measures for a run, as JSON and a Markdown table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run on its test split",
                       description="RMSE, SSIM, harmonic precision/recall/F1, 1-NN latent accuracy and "
                       "MFCC-DTW deviation per class; writes evaluation.json and evaluation.md in the run.")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--checkpoint", default="best", choices=("best", "last"))
    p.add_argument("--data", default=None, help="the dataset, if it moved since training")
    p.add_argument("--unseen", default=None, metavar="DATA",
                   help="evaluate every clip of this dataset (same labels, other speakers) instead of --split; "
                   "writes evaluation-unseen.json and .md")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--events", action="store_true", help="print an 'evaluation' event on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.events import Evaluation, encode_event
    from trainer.evaluate import evaluate_run

    run_dir = args.run_dir.resolve()
    result = evaluate_run(run_dir, split=args.split, checkpoint=args.checkpoint, data=args.data,
                          cache_dir=args.cache_dir, device=args.device, unseen=args.unseen)
    stem = "evaluation-unseen" if args.unseen else "evaluation"
    flat = {k: (v["mean"] if isinstance(v, dict) and "mean" in v else v)
            for k, v in result["summary"].items() if k not in ("mfcc_dtw", "knn1_per_class")}
    line = encode_event(Evaluation(split=result["split"], checkpoint=result["checkpoint"],
                                   path=str(run_dir / f"{stem}.json"), metrics=flat))
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    if args.events:
        print(line, flush=True)
    else:
        print((run_dir / f"{stem}.md").read_text(encoding="utf-8"), file=sys.stdout)
    return 0
