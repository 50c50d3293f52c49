"""The run folder survives what users do to it: two trainers, a resume without state, a kill
mid-save, a full disk. Each case here lost training work before."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from models.events import CheckpointWritten, Error, parse_event
from trainer.cli import EXIT_BUSY, EXIT_FILES, EXIT_INPUT, main
from trainer.run_lock import LOCK_FILE, RunLock, RunLockedError
from trainer_helpers import ENV, make_tones, run_cli, train_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones") / "data")


def _weights(path) -> dict[str, torch.Tensor]:
    from models.checkpoints.checkpoint import load_checkpoint

    return {k: v.clone() for k, v in load_checkpoint(path).model.state_dict().items()}


def _events(run) -> list:
    return [parse_event(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]


def test_a_second_trainer_refuses_and_names_the_first_ones_pid(tones, tmp_path):
    run = tmp_path / "run"
    with RunLock(run):  # this test process plays the first trainer
        res = run_cli(*train_args(tones, run, "--max-steps", "1", "--events"))
        assert res.returncode == EXIT_BUSY, res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert f"PID {os.getpid()}" in line and "in use by another trainer" in line
        (event,) = [parse_event(x) for x in res.stdout.splitlines()]
        assert isinstance(event, Error) and event.kind == "busy" and f"PID {os.getpid()}" in event.message
        with pytest.raises(RunLockedError):
            RunLock(run).acquire()
    assert not (run / "config.json").exists()  # the refused trainer wrote nothing
    # the lock is gone with its holder: training now works, and leaves no lock file behind it
    res = run_cli(*train_args(tones, run, "--max-steps", "1"))
    assert res.returncode == 0, res.stderr


def test_resume_without_state_refuses_unless_told_to_start_over(tones, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(tones, run, "--max-steps", "2")) == 0
    best = (run / "best.safetensors").read_bytes() if (run / "best.safetensors").exists() else None
    (run / "training_state.pt").unlink()
    capsys.readouterr()
    assert main(train_args(tones, run, "--resume", "--max-steps", "4")) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no training state" in err[0] and "--start-over" in err[0]
    if best is not None:
        assert (run / "best.safetensors").read_bytes() == best  # nothing was overwritten
    assert main(train_args(tones, run, "--resume", "--start-over", "--max-steps", "1", "--events")) == 0
    started = [e for e in _events(run) if e.type == "started"][-1]
    assert started.step == 0 and not started.resumed
    # --resume of a folder that holds no run at all is refused the same way
    assert main(train_args(tones, tmp_path / "empty", "--resume", "--max-steps", "1")) == EXIT_INPUT
    assert not (tmp_path / "empty").exists()


def test_a_full_disk_while_saving_keeps_the_last_good_checkpoint(tones, tmp_path, capsys, monkeypatch):
    import models.checkpoints.checkpoint as ck

    run = tmp_path / "run"
    assert main(train_args(tones, run, "--max-steps", "2")) == 0
    before = _weights(run / "last.safetensors")
    capsys.readouterr()

    def full(f, blob):
        f.write(bytes(blob[:1000]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_write_chunks", full)
    code = main(train_args(tones, run, "--resume", "--max-steps", "6"))
    err = capsys.readouterr().err
    assert code == EXIT_FILES and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("latent-trainer:")]
    assert f"the disk is full (No space left on device): nothing was written to {run}/" in line
    assert ".safetensors; the previous" in line and ".tmp" not in line
    errors = [e for e in _events(run) if isinstance(e, Error)]
    assert errors and errors[-1].kind == "disk" and "the disk is full" in errors[-1].message
    after = _weights(run / "last.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not list(run.glob(".*.tmp"))


_KILLED_MID_SAVE = textwrap.dedent("""
    import sys
    import models.checkpoints.checkpoint as ck
    from trainer.cli import main

    real, saves = ck._write_chunks, []

    def half_then_hang(f, blob):
        saves.append(1)
        if len(saves) < 3:
            return real(f, blob)
        f.write(bytes(blob[: len(blob) // 2]))
        f.flush()
        print("SAVING", flush=True)
        sys.stdin.read()  # wait here, half-written, until the test kills us

    ck._write_chunks = half_then_hang
    sys.exit(main(sys.argv[1:]))
""")


def test_sigkill_during_a_save_leaves_the_last_good_checkpoint(tones, tmp_path):
    run = tmp_path / "run"
    args = train_args(tones, run, "--epochs", "1000", "--set", "train.batch_size=256", "--events")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_MID_SAVE, *args], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    written = []
    try:
        for line in proc.stdout:
            if line.strip() == "SAVING":
                break
            ev = parse_event(line)
            if isinstance(ev, CheckpointWritten):
                written.append(ev)
        else:
            raise AssertionError(proc.stderr.read())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    last = [e for e in written if e.kind == "last"][-1]
    from models.checkpoints.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.safetensors").training.steps == last.step  # the good one
    leftovers = list(run.glob(".*.tmp"))
    assert leftovers, "the kill should leave the half-written temporary behind"
    # the next trainer removes it and resumes from the state that goes with that checkpoint
    res = run_cli(*train_args(tones, run, "--resume", "--max-steps", str(last.step + 1), "--events"))
    assert res.returncode == 0, res.stderr
    assert not list(run.glob(".*.tmp"))
    assert json.loads(res.stdout.splitlines()[0])["step"] == last.step
    assert not (run / LOCK_FILE).read_text()  # released: the holder's PID is cleared
