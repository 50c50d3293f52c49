"""A stand-in for ``latent-trainer train`` that prints canned events (GUI tests, no torch).

    python tests/fake_trainer.py --mode ok|crash|hang train --run-dir DIR [any trainer options]

``ok``: started, five progress events, a validation, a best checkpoint, finished (exit 0).
``slow``: a progress event every 20 ms until ``stop`` arrives on stdin, then stopped (exit 0);
``--resume`` continues the step count from the ``FAKE_STEP`` file it leaves in the run folder.
``crash``: started, two progress events, a traceback on stderr, exit 1 with no error event
(a trainer that died hard). ``hang``: started, then ignores ``stop`` on stdin (the app must
escalate to SIGTERM). Options it does not know are ignored, so it takes the app's command line.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time
from pathlib import Path


def emit(event: str, /, **fields: object) -> None:
    sys.stdout.write(json.dumps({"v": 1, "event": event, "time": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="ok", choices=("ok", "crash", "hang", "slow"))
    p.add_argument("command")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    args, _ = p.parse_known_args()
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    total = 5 if args.mode != "slow" else 100000
    step0 = int((run_dir / "FAKE_STEP").read_text()) if args.resume and (run_dir / "FAKE_STEP").exists() else 0
    emit("started", run_dir=str(run_dir), preset="fake", model="fake_ae", device="cpu", seed=0, step=step0,
         epoch=0, total_steps=total, n_train=10, n_val=2, n_test=2, resumed=args.resume)
    print("INFO fake: training", file=sys.stderr, flush=True)
    if args.mode == "hang":
        for _ in sys.stdin:  # reads 'stop' and ignores it
            pass
        time.sleep(60)
        return 0
    if args.mode == "slow":
        return slow(run_dir, step0, total)
    for step in range(1, total + 1):
        emit("progress", epoch=0, step=step, total_steps=total, losses={"loss": 1.0 / step, "recon": 0.9 / step},
             lr=0.001, steps_per_sec=100.0, eta_s=(total - step) / 100.0)
        if args.mode == "crash" and step == 2:
            print("Traceback (most recent call last):\n  File \"fake.py\", line 1\n"
                  "RuntimeError: CUDA out of memory (fake)", file=sys.stderr, flush=True)
            return 1
    emit("validation", epoch=1, step=total, losses={"loss": 0.25, "recon": 0.2}, best=True)
    best = run_dir / "best.safetensors"
    emit("checkpoint", path=str(best), kind="best", epoch=1, step=total, metrics={"val_loss": 0.25})
    emit("finished", epoch=1, step=total, reason="completed", best_val_loss=0.25, duration_s=0.1)
    return 0


def slow(run_dir: Path, step: int, total: int) -> int:
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.02)
        if ready and sys.stdin.readline().strip() == "stop":
            (run_dir / "FAKE_STEP").write_text(str(step))
            emit("stopped", epoch=0, step=step, reason="stdin", checkpoint=str(run_dir / "last.safetensors"))
            return 0
        step += 1
        emit("progress", epoch=0, step=step, total_steps=total, losses={"loss": 1.0 / step}, lr=0.001)


if __name__ == "__main__":
    sys.exit(main())
