"""Several processes for one run: ``torchrun --nproc_per_node=2`` on the CPU (gloo), tiny size.

Two processes with ``train.batch_size=B`` take the steps of one process with ``B`` (each rank
its half of every batch, gradients averaged), so the loss curves agree up to the order of
float32 sums: measured here at <= 1e-7 relative per step (9e-8 at most on the tiny deep AE over
12 steps, 6e-8 on the weights), checked at 1e-5. Rank 0 alone writes; resume continues.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.errors import ConfigError
from trainer import distributed
from trainer.cli import main
from trainer.loop import batches, epoch_order, steps_per_epoch
from trainer.run_setup import TrainOptions, prepare
from trainer_helpers import ENV, make_tones, train_args

#: relative difference allowed between the curves of 1 and 2 processes (measured: <= 1e-7)
RTOL = 1e-5
_TORCHRUN = Path(sys.executable).with_name("torchrun")
TORCHRUN = [str(_TORCHRUN)] if _TORCHRUN.exists() else [sys.executable, "-m", "torch.distributed.run"]


def test_ranks_share_each_batch_of_the_one_process_order():
    for n, batch, world in [(50, 16, 2), (49, 16, 2), (49, 6, 3), (7, 4, 2), (1, 4, 2), (0, 4, 2)]:
        order = epoch_order(n, seed=1, epoch=0)
        alone = batches(order, batch)
        shares = [batches(order, batch, rank=r, world_size=world) for r in range(world)]
        steps = steps_per_epoch(n, batch, world)
        assert all(len(s) == steps for s in shares), (n, batch, world)
        for i in range(steps):
            assert len({len(s[i]) for s in shares}) == 1  # equal shares: the gradient mean is the batch's
            together = np.concatenate([s[i] for s in shares])
            # the one-process batch, its last one cut to a multiple of the ranks
            assert np.array_equal(together, alone[i][: len(together)])
            assert len(alone[i]) - len(together) < world
        assert steps == len(alone) - (1 if alone and len(alone[-1]) < world else 0)


def test_a_batch_the_processes_cannot_share_is_a_clear_error_before_anything_is_written(tmp_path):
    assert distributed.per_rank_batch(128, 2) == 64 and distributed.per_rank_batch(5, 1) == 5
    with pytest.raises(ConfigError, match=r"batch_size=127 is not a multiple of the 2 processes.*e\.g\. 126"):
        distributed.per_rank_batch(127, 2)
    run = tmp_path / "run"
    opts = TrainOptions(run_dir=run, preset="roche-deep-ae", data=str(tmp_path), tiny=True,
                        overrides=("train.batch_size=127",))
    with pytest.raises(ConfigError, match="not a multiple of the 2 processes"):
        prepare(opts, world_size=2)
    assert not run.exists()


def test_one_process_needs_no_process_group():
    # the loop calls these unconditionally: without torchrun they change nothing
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    distributed.average_gradients([p])
    assert torch.equal(p.grad, torch.full((3,), 2.0))
    assert distributed.mean_terms({"loss": 1.5}, torch.device("cpu")) == {"loss": 1.5}
    assert distributed.all_finite(torch.tensor(1.0)) and not distributed.all_finite(torch.tensor(float("nan")))
    assert distributed.gather_to_rank0("x") == ["x"] and distributed.from_rank0(3) == 3


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [*TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "trainer", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=240)


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def _files(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and skip not in p.parents}


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_two_processes_follow_one_process_with_the_combined_batch_and_resume(tmp_path):
    from safetensors.torch import load_file

    from models.checkpoints.checkpoint import load_training_state

    tones = make_tones(tmp_path / "data")
    # 756 training items in batches of 128: 6 steps per epoch (the last of 116 items, shared
    # 58 + 58), 2 epochs, a validation after each
    common = ("--set", "train.batch_size=128", "--epochs", "2")
    ref, run = tmp_path / "one", tmp_path / "two"
    assert main(train_args(tones, ref, *common)) == 0  # one process; also fills the feature cache
    before = _files(tmp_path, skip=run)

    first = _torchrun(*train_args(tones, run, *common, "--max-steps", "4"))
    assert first.returncode == 0, first.stderr[-3000:]
    again = _torchrun("train", "--run-dir", str(run), "--resume", "--cache-dir", str(tones.parent / "cache"),
                      "--threads", "1", "--device", "cpu")
    assert again.returncode == 0, again.stderr[-3000:]

    one, two = _events(ref), _events(run)
    started = [e for e in two if e["event"] == "started"]
    assert [(e["world_size"], e["resumed"], e["step"]) for e in started] == [(2, False, 0), (2, True, 4)]
    assert [e["reason"] for e in two if e["event"] == "finished"] == ["max_steps", "completed"]
    # the same loss curve; every step logged once (rank 1 writes no events)
    curve1 = {e["step"]: e["losses"] for e in one if e["event"] == "progress"}
    curve2 = [(e["step"], e["losses"]) for e in two if e["event"] == "progress"]
    assert [s for s, _ in curve2] == list(range(1, 13)) == sorted(curve1)
    for step, losses in curve2:
        assert losses.keys() == curve1[step].keys()
        for k, v in losses.items():
            assert v == pytest.approx(curve1[step][k], rel=RTOL), (step, k)
    val1 = [e for e in one if e["event"] == "validation"]
    val2 = [e for e in two if e["event"] == "validation"]
    assert [e["best"] for e in val2] == [e["best"] for e in val1] and len(val2) == 2
    assert all(b["losses"]["loss"] == pytest.approx(a["losses"]["loss"], rel=RTOL) for a, b in zip(val1, val2))
    # the same weights, up to float sums
    w1, w2 = load_file(ref / "last.safetensors"), load_file(run / "last.safetensors")
    assert w1.keys() == w2.keys() and all(torch.allclose(w1[k], w2[k], rtol=0, atol=1e-6) for k in w1)

    # rank 0 alone wrote: the files of a one-process run, nothing elsewhere (the cache included)
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in ref.iterdir())
    assert _files(tmp_path, skip=run) == before
    log = (run / "train.log").read_text()
    assert log.count("resumed from step 4") == 1 and log.count("finished (") == 2
    # each rank's random stream is saved for the resume, and they differ
    rngs = load_training_state(run / "training_state.pt")["rng_ranks"]
    assert len(rngs) == 2 and not torch.equal(rngs[0]["torch"], rngs[1]["torch"])
