"""The real ``latent-trainer train`` CLI, run as a subprocess for a few steps on tiny data."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from models.events import CheckpointWritten, Finished, Progress, Started, Stopped, Validation, parse_event
from trainer_helpers import events_of, make_tones, popen_cli, run_cli, train_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones") / "data")


def _load(path):
    from models.checkpoints.checkpoint import load_checkpoint

    return load_checkpoint(path, device="cpu")


def _weights(path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in _load(path).model.state_dict().items()}


def _read_until(proc, wanted) -> list:
    """Events from a running trainer up to (and including) the first one ``wanted`` accepts."""
    seen = []
    for line in proc.stdout:
        ev = parse_event(line)
        seen.append(ev)
        if wanted(ev):
            return seen
    raise AssertionError(f"trainer ended before the awaited event; stderr:\n{proc.stderr.read()}")


def test_train_emits_valid_events_and_a_loadable_checkpoint(tones, tmp_path):
    run = tmp_path / "run"
    res = run_cli(*train_args(tones, run, "--events", "--max-steps", "5", "--set", "train.batch_size=64"))
    assert res.returncode == 0, res.stderr
    events = events_of(res.stdout)
    assert isinstance(events[0], Started) and events[0].step == 0 and not events[0].resumed
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.step for e in progress] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(e.losses["loss"]) and e.losses["loss"] > 0 for e in progress)
    assert isinstance(events[-1], Finished) and events[-1].reason == "max_steps" and events[-1].step == 5
    assert any(isinstance(e, CheckpointWritten) and e.kind == "last" for e in events)
    # the same stream is in the run folder
    logged = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [d["event"] for d in logged] == [e.type for e in events]
    for name in ("config.json", "split.json", "train.log", "training_state.pt", "last.safetensors"):
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == list(range(8))
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["input_shape"] == [33] and config["train"]["log_every"] == 1
    ckpt = _load(run / "last.safetensors")
    assert ckpt.training.steps == 5 and ckpt.latent_stats is not None
    assert ckpt.labels.names == ("high", "low")
    frames = torch.rand(3, 33)
    recon = ckpt.model.decode(ckpt.model.latent(frames))
    assert recon.shape == (3, 33) and torch.isfinite(recon).all()
    # the run folder now holds a run: starting again there without --resume is refused
    again = run_cli(*train_args(tones, run, "--max-steps", "1"))
    assert again.returncode == 2 and "--resume" in again.stderr


def test_stop_file_mid_epoch_leaves_a_resumable_checkpoint(tones, tmp_path):
    run = tmp_path / "run"
    proc = popen_cli(*train_args(tones, run, "--events", "--epochs", "1000", "--set", "train.batch_size=16"))
    try:
        _read_until(proc, lambda e: isinstance(e, Progress))
        (run / "STOP").write_text("")
        rest = _read_until(proc, lambda e: isinstance(e, Stopped))
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    stopped = rest[-1]
    assert stopped.reason == "stop_file" and stopped.epoch == 0  # mid-epoch: ~40 steps per epoch
    assert not (run / "STOP").exists()
    assert _load(stopped.checkpoint).training.steps == stopped.step
    # resuming continues the step count
    res = run_cli(*train_args(tones, run, "--resume", "--events", "--max-steps", str(stopped.step + 2)))
    assert res.returncode == 0, res.stderr
    events = events_of(res.stdout)
    assert events[0].resumed and events[0].step == stopped.step
    assert [e.step for e in events if isinstance(e, Progress)] == [stopped.step + 1, stopped.step + 2]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tones, tmp_path):
    # A VAE (random sampling in every step) across epoch boundaries (3 steps per epoch) with
    # validation and early-stopping bookkeeping in between.
    common = ("--set", "train.batch_size=256", "--seed", "3")
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli(*train_args(tones, a, "--max-steps", "4", *common, preset="roche-vae")).returncode == 0
    res = run_cli(*train_args(tones, a, "--resume", "--max-steps", "8", "--events", preset="roche-vae"))
    assert res.returncode == 0, res.stderr
    assert events_of(res.stdout)[0].step == 4
    res = run_cli(*train_args(tones, b, "--max-steps", "8", *common, preset="roche-vae"))
    assert res.returncode == 0, res.stderr
    wa, wb = _weights(a / "last.safetensors"), _weights(b / "last.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # and the weights did move from their initial values
    assert _load(a / "last.safetensors").training.steps == 8


def test_sigkill_leaves_the_previous_checkpoint_loadable(tones, tmp_path):
    from models.checkpoints.checkpoint import load_training_state

    run = tmp_path / "run"
    proc = popen_cli(*train_args(tones, run, "--events", "--epochs", "1000", "--set", "train.batch_size=64"))
    try:
        _read_until(proc, lambda e: isinstance(e, CheckpointWritten) and e.kind == "last")
        _read_until(proc, lambda e: isinstance(e, Validation))  # the next epoch is being saved
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    ckpt = _load(run / "last.safetensors")
    assert ckpt.training.steps > 0
    assert load_training_state(run / "training_state.pt")["step"] >= ckpt.training.steps - 20


def test_sigterm_stops_cleanly(tones, tmp_path):
    run = tmp_path / "run"
    proc = popen_cli(*train_args(tones, run, "--events", "--epochs", "1000"))
    try:
        _read_until(proc, lambda e: isinstance(e, Progress))
        proc.send_signal(signal.SIGTERM)
        rest = _read_until(proc, lambda e: isinstance(e, Stopped))
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert rest[-1].reason == "signal"
    assert _load(run / "last.safetensors").training.steps == rest[-1].step


def test_pca_is_fitted_in_one_step(tones, tmp_path):
    run = tmp_path / "run"
    res = run_cli(*train_args(tones, run, "--events", preset="roche-pca"))
    assert res.returncode == 0, res.stderr
    events = events_of(res.stdout)
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed" and events[-1].step == 1
    val = [e for e in events if isinstance(e, Validation)]
    assert len(val) == 1 and 0 < val[0].losses["loss"] < 0.1
    assert _load(run / "best.safetensors").model.fitted
    # evaluate: the papers' measures, as JSON and Markdown, and an evaluation event
    res = run_cli("evaluate", "--run-dir", str(run), "--split", "train", "--events",
                  "--cache-dir", str(tones.parent / "cache"))
    assert res.returncode == 0, res.stderr
    (ev,) = events_of(res.stdout)
    assert ev.type == "evaluation" and ev.split == "train"
    summary = json.loads((run / "evaluation.json").read_text())["summary"]
    assert summary["rmse"]["n"] == 6 and 0 < summary["rmse"]["mean"] < 0.1
    assert summary["ssim"]["mean"] > 0.8 and 0.5 < summary["f1"]["mean"] <= 1
    assert summary["knn1_accuracy"] == 1.0  # 220 Hz and 880 Hz tones never neighbour each other
    md = (run / "evaluation.md").read_text()
    assert "| Model | RMSE | SSIM | Precision | Recall | F1 | 1-NN acc. |" in md


def test_bad_set_key_fails_with_exit_2_and_names_the_valid_keys(tones, tmp_path):
    # the other bad overrides are checked in-process in test_trainer_units.py
    run = tmp_path / "run"
    res = run_cli(*train_args(tones, run, "--events", "--set", "model.nope=1"))
    assert res.returncode == 2
    assert "valid model keys" in res.stderr and "model.latent_dim" in res.stderr
    assert events_of(res.stdout)[-1].type == "error"
    assert not (run / "config.json").exists()


def test_missing_dataset_fails_with_exit_2(tmp_path):
    res = run_cli(*train_args(tmp_path / "nowhere", tmp_path / "run"))
    assert res.returncode == 2
    assert "not found" in res.stderr and "nowhere" in res.stderr
