"""Retrain from the app: run records, the trainer process, the watcher, the panel, hot reload.

The GUI tests drive the real window; the panel runs a fake trainer (canned events, a crash, a
hang) and, once, the real ``latent-trainer`` on a tiny dataset for a few hundred steps.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from explorer_tiny import make_dataset_folder
from PySide6.QtCore import QSettings

from explorer.sound.audio_out import RecordingSink
from explorer.window.main_window import MainWindow
from explorer.core.reload import map_displacement, stable_projection
from explorer.training.run_watcher import RunWatcher
from explorer.training.trainer_form import FINE_TUNE
from explorer.training.trainer_panel import CLOSE_STOP
from explorer.training.trainer_process import LineSplitter, TrainerProcess
from explorer.core.training_runs import RunRecord, TrainSpec, format_eta, train_args
from models.events import CheckpointWritten, Error, Progress, Started, Stopped, Validation, encode_event

FAKE = Path(__file__).with_name("fake_trainer.py")
TIMEOUT = 30000
#: hot reload: the mean on-screen move of a point, as a share of the map's diagonal, stays below this
MAX_DISPLACEMENT = 0.10
#: optimizer steps per epoch of the tiny roche-deep-ae on the window's dataset (40 clips)
EPOCH_STEPS = 16


# --- Qt-free parts ------------------------------------------------------------------------------------
def started(**kw):
    base = dict(run_dir="r", preset="p", model="m", device="cpu", seed=0, step=0, epoch=0, total_steps=100,
                n_train=10, n_val=2, n_test=2)
    return Started(**{**base, **kw})


def test_run_record_folds_events():
    rec = RunRecord(run_dir="/runs/a")
    rec.apply(started())
    assert rec.status == "running" and rec.total_steps == 100
    rec.apply(Progress(epoch=0, step=10, total_steps=100, losses={"loss": 0.5, "kl": None}, lr=1e-3, eta_s=90.0))
    rec.apply(Validation(epoch=1, step=20, losses={"loss": 0.4}, best=True))
    rec.apply(CheckpointWritten(path="/runs/a/best.safetensors", kind="best", epoch=1, step=20, metrics={"val_loss": 0.4}))
    assert rec.fraction() == pytest.approx(0.1)
    assert rec.train == {"loss": [(10, 0.5)]} and rec.val == {"loss": [(20, 0.4)]}
    assert rec.best_checkpoint == "/runs/a/best.safetensors" and rec.best_step == 20
    assert "best val 0.4" in rec.status_text()
    rec.apply(Stopped(epoch=1, step=25, reason="stdin", checkpoint="/runs/a/last.safetensors"))
    assert rec.status == "stopped" and not rec.active and rec.last_checkpoint.endswith("last.safetensors")
    rec.process_ended(0, False)
    assert rec.status == "stopped" and rec.error is None


def test_run_record_crash_quotes_the_log():
    rec = RunRecord(run_dir="/runs/b")
    rec.apply(started())
    for i in range(20):
        rec.add_log(f"line {i}")
    rec.process_ended(1, False)
    assert rec.status == "failed" and "exited with code 1" in rec.error
    assert "line 19" in rec.error and "line 7" not in rec.error  # the last lines only
    rec2 = RunRecord(run_dir="/runs/c")
    rec2.apply(Error(message="ConfigError: bad key"))
    rec2.process_ended(2, False)
    assert rec2.error.startswith("ConfigError: bad key")


def test_train_args_and_eta():
    spec = TrainSpec(run_dir="/r", data="/d", preset="roche-deep-ae", overrides=("train.lr=0.0001",), tiny=True,
                     max_steps=50, threads=1)
    a = train_args(spec)
    assert a[:2] == ["train", "--run-dir"] and "--events" in a and "--stdin-commands" in a
    assert a[a.index("--preset") + 1] == "roche-deep-ae" and "--tiny" in a and a[a.index("--set") + 1] == "train.lr=0.0001"
    r = train_args(spec, resume=True)
    assert "--resume" in r and "--preset" not in r and "--data" not in r and r[r.index("--max-steps") + 1] == "50"
    ft = train_args(TrainSpec(run_dir="/r", data="/d", init_from="/m.safetensors", tiny=True))
    assert ft[ft.index("--init-from") + 1] == "/m.safetensors" and "--tiny" not in ft
    assert (format_eta(None), format_eta(12.4), format_eta(185), format_eta(3720)) == ("", "12 s", "3 min 05 s", "1 h 02 min")


def test_map_displacement_is_relative_to_the_map():
    old = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [3.0, 4.0]])  # diagonal 5
    assert map_displacement(old, old * 7 + 2) == pytest.approx(0.0)  # zoom and shift: nothing moves on screen
    shifted = old.copy()
    shifted[:, 0] = shifted[::-1, 0]  # mirror x: every point moves 3 of 5
    assert map_displacement(old, shifted) == pytest.approx(0.6)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_stable_projection_keeps_the_layout(method):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 4
    codes = np.repeat(centres, 25, axis=0) + rng.normal(size=(100, 8))
    params = {"n_iter": 150, "early_exaggeration_iter": 50}
    old = stable_projection(codes, method, None, tsne_params=params).points
    # a retrained model: codes rotated, scaled and a little perturbed
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    new_codes = 2.0 * codes @ q + 0.1 * rng.normal(size=codes.shape)
    stable = stable_projection(new_codes, method, old, tsne_params={**params, "random_state": 1}).points
    fresh = stable_projection(new_codes, method, None, tsne_params={**params, "random_state": 1}).points
    d_stable, d_fresh = map_displacement(old, stable), map_displacement(old, fresh)
    assert d_stable < MAX_DISPLACEMENT and d_stable < d_fresh


def test_line_splitter_keeps_partial_lines():
    s = LineSplitter()
    assert s.feed(b'{"a":1}\n{"b"') == ['{"a":1}']
    assert s.feed(b':2}\r\n') == ['{"b":2}']
    assert s.feed(b"tail") == [] and s.flush() == ["tail"]


# --- Qt: process and watcher -----------------------------------------------------------------------------
@pytest.mark.gui
def test_run_watcher_tails_a_growing_file(qtbot, tmp_path):
    got = []
    w = RunWatcher(tmp_path, poll_ms=50)
    w.event_received.connect(got.append)
    w.start()
    lines = [encode_event(started()), encode_event(Progress(epoch=0, step=1, losses={"loss": 1.0}, lr=1e-3))]
    path = tmp_path / "events.jsonl"
    with open(path, "w") as f:
        f.write(lines[0] + "\n" + lines[1][:20])  # a line cut in the middle
    qtbot.waitUntil(lambda: len(got) == 1, timeout=TIMEOUT)
    with open(path, "a") as f:
        f.write(lines[1][20:] + "\nnot json\n")
    qtbot.waitUntil(lambda: len(got) == 2, timeout=TIMEOUT)
    assert isinstance(got[1], Progress) and got[1].step == 1 and w.offset == path.stat().st_size
    path.write_text(lines[0] + "\n")  # truncated: read again from the start
    qtbot.waitUntil(lambda: len(got) == 3, timeout=TIMEOUT)
    assert isinstance(got[2], Started)
    w.stop()


@pytest.mark.gui
def test_stop_escalates_to_sigterm_when_ignored(qtbot, tmp_path):
    p = TrainerProcess(["train", "--run-dir", str(tmp_path)], command=[sys.executable, str(FAKE), "--mode", "hang"],
                       stop_timeout_ms=300)
    with qtbot.waitSignal(p.event_received, timeout=TIMEOUT):
        p.start()
    logs = []
    p.log_received.connect(logs.append)
    with qtbot.waitSignal(p.ended, timeout=TIMEOUT) as blocker:
        p.stop()
    assert not p.is_running() and any("SIGTERM" in line for line in logs)
    assert blocker.args[1] or blocker.args[0] != 0  # it did not end by itself


# --- the panel in the real window ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_dataset_folder(tmp_path_factory.mktemp("sounds"), per_class=10)


@pytest.fixture
def window(qtbot, tmp_path, dataset_dir):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(audio=RecordingSink(), settings=settings)
    panel = w.trainer_panel
    panel.runs_root = tmp_path / "runs"
    panel.ask_close = lambda n: CLOSE_STOP
    panel.extra_spec = {"threads": 1, "cache_dir": str(tmp_path / "cache")}
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.open_dataset(dataset_dir)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=TIMEOUT)
    panel.show()
    yield w
    w.runner.cancel_all()
    w.runner.wait(5000)


@pytest.mark.gui
def test_fake_run_reaches_progress_bar_and_curves(qtbot, window):
    w, panel = window, window.trainer_panel
    panel.trainer_command = [sys.executable, str(FAKE), "--mode", "ok"]
    assert panel.form.data.text() == w.controller.dataset_path  # the app's dataset is proposed
    panel.form.set_preset("roche-deep-ae")
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.start_btn.click()
    rec = panel.runs[panel.shown]
    assert rec.status == "finished" and panel.progress.value() == 1000
    assert "finished: step 5/5" in panel.progress.format()
    qtbot.waitUntil(lambda: len(panel.curves.values("train")) == 5, timeout=TIMEOUT)
    np.testing.assert_allclose(panel.curves.values("train")[:, 1], [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert panel.curves.values("val").tolist() == [[5.0, 0.25]]
    assert "val_loss 0.25" in panel.best_label.text()
    assert panel.offer.isVisible() and "step 5" in panel.offer_label.text()  # reload offered, not done
    assert "INFO fake: training" in panel.log_view.toPlainText()
    assert "finished" in panel.runs_list.item(0).text()


@pytest.mark.gui
def test_crashing_trainer_is_shown_and_the_app_goes_on(qtbot, window):
    w, panel = window, window.trainer_panel
    panel.trainer_command = [sys.executable, str(FAKE), "--mode", "crash"]
    models_before = dict(w.controller.models)
    spec = TrainSpec(run_dir=str(panel.runs_root / "crash"), data=w.controller.dataset_path, preset="roche-deep-ae")
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.start_run(spec)
    rec = panel.runs[spec.run_dir]
    assert rec.status == "failed"
    assert panel.error_label.isVisible() and "CUDA out of memory (fake)" in panel.error_label.text()
    assert "exited with code 1" in w.last_error and "failed" in panel.runs_list.item(0).text()
    assert w.controller.models == models_before
    assert panel.resume_btn.isEnabled() and not panel.stop_btn.isEnabled()
    # still responsive: a task on the window's runner completes
    with qtbot.waitSignal(w.runner.task_finished, timeout=TIMEOUT):
        w.runner.start("probe", lambda state: 42)


@pytest.mark.gui
@pytest.mark.slow
def test_real_run_hot_reload_stop_and_fine_tune(qtbot, window, tmp_path):
    w, panel = window, window.trainer_panel
    c = w.controller
    panel.auto_reload.setChecked(True)
    # A tiny run trains an epoch in a fraction of a second, far faster than the app reloads: the
    # checkpoints compared are chosen by step (each phase ends at an epoch, where the trainer
    # validates and writes its best), not by how fast this machine happens to be.
    spec = TrainSpec(run_dir=str(tmp_path / "runs" / "real"), data=c.dataset_path, preset="roche-deep-ae", tiny=True,
                     overrides=("train.log_every=4", "train.epochs=100000", "train.patience=0",
                                # a gentle learning rate, as in fine-tuning: consecutive best
                                # checkpoints differ by a little, which the stated bound is for
                                "train.lr=2e-5"),
                     device="cpu", threads=1, cache_dir=str(tmp_path / "cache"), max_steps=EPOCH_STEPS)
    reloads = []
    panel.model_reloaded.connect(reloads.append)

    def reloaded(n: int) -> bool:
        return len(reloads) >= n and not w.runner.is_running("reload")

    # the run's best checkpoint becomes the app's model and draws the map
    with qtbot.waitSignal(panel.run_ended, timeout=60000):
        panel.start_run(spec)
    qtbot.waitUntil(lambda: reloaded(1) and len(c.points) == 40, timeout=TIMEOUT)
    rec = panel.runs[spec.run_dir]
    key = reloads[-1]
    assert rec.end_reason == "max_steps" and rec.best_step == EPOCH_STEPS
    assert c.current_key == key and key.endswith("best.safetensors")
    assert c.current.checkpoint.info.training.steps == EPOCH_STEPS
    first_model = c.current.model
    c.select_point(7)
    w.decode(play=False)
    qtbot.waitUntil(lambda: c.decoded is not None, timeout=TIMEOUT)
    # one more epoch: its best swaps the model in place; the map stays where it was
    with qtbot.waitSignal(panel.run_ended, timeout=60000):
        panel.start_run(dataclasses.replace(spec, max_steps=2 * EPOCH_STEPS), resume=True)
    qtbot.waitUntil(lambda: reloaded(2), timeout=TIMEOUT)
    assert rec.end_reason == "max_steps" and rec.best_step == 2 * EPOCH_STEPS
    assert c.current.checkpoint.info.training.steps == 2 * EPOCH_STEPS
    assert c.current_key == key and c.current.model is not first_model and list(c.models) == [key]
    assert panel.last_reload.displacement is not None and panel.last_reload.displacement < MAX_DISPLACEMENT
    print(f"hot reload displacement: {panel.last_reload.displacement:.4f} of the map diagonal")
    assert c.selection.index == 7
    qtbot.waitUntil(lambda: c.decoded is not None and not w.runner.is_running("decode"), timeout=TIMEOUT)
    assert np.sqrt(np.mean(c.decoded.decoded.y ** 2)) > 0  # the selection, decoded by the new model
    # the bar is refreshed at most ten times a second, so it may show a slightly older step
    shown = re.search(r"step (\d+)/", panel.progress.format())
    assert rec.step == 2 * EPOCH_STEPS and shown and 0 < int(shown.group(1)) <= rec.step
    tr = panel.curves.values("train")
    assert len(tr) >= 2 and np.all(np.diff(tr[:, 0]) > 0) and len(panel.curves.values("val")) == 2
    # the reloaded model can be fine-tuned: the form offers it, the trainer starts from its weights
    panel.auto_reload.setChecked(False)  # the fine-tuned checkpoints stay offers
    form = panel.form
    assert form.source.itemData(0) == FINE_TUNE and "best" in form.source.itemText(0)
    form.source.setCurrentIndex(0)
    form.max_steps.setValue(0)  # no cap: it trains until stopped
    assert not form.tiny.isEnabled() and not form.latent_dim.isEnabled()
    panel.start_btn.click()
    ft = panel.runs[panel.shown]
    assert ft is not rec
    qtbot.waitUntil(lambda: ft.step > 0, timeout=60000)
    # stop: a clean stop with a checkpoint the trainer can resume from
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()
    assert ft.status == "stopped" and ft.end_reason == "stdin", ft.error
    stopped_at = ft.step
    from models.checkpoints.checkpoint import load_checkpoint, load_training_state

    assert load_checkpoint(ft.last_checkpoint).info.training.steps == stopped_at
    assert load_training_state(Path(ft.run_dir) / "training_state.pt")["step"] == stopped_at
    assert panel.resume_btn.isEnabled()  # resuming is tested with the fake trainer below, and in test_trainer_cli
    config = json.loads((Path(ft.run_dir) / "config.json").read_text())
    # fine-tuning proposes a tenth of the learning rate the loaded model was trained with
    lrs = [float(o.split("=", 1)[1]) for o in config["overrides"] if o.startswith("train.lr=")]
    assert config["init_from"] == key and lrs == [pytest.approx(2e-6)]


@pytest.mark.gui
def test_resume_and_close_with_a_run_going(qtbot, window, monkeypatch):
    w, panel = window, window.trainer_panel
    panel.trainer_command = [sys.executable, str(FAKE), "--mode", "slow"]
    spec = TrainSpec(run_dir=str(panel.runs_root / "slow"), data=w.controller.dataset_path, preset="roche-deep-ae")
    seen = []
    panel.run_event.connect(lambda k, ev: seen.append(ev))
    panel.start_run(spec)
    qtbot.waitUntil(lambda: panel.runs[spec.run_dir].step >= 3, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        panel.stop_btn.click()
    rec = panel.runs[spec.run_dir]
    assert rec.status == "stopped" and isinstance(seen[-1], Stopped)
    stopped_at = rec.step
    panel.resume_btn.click()
    assert "--resume" in panel.procs[spec.run_dir].args and "--preset" not in panel.procs[spec.run_dir].args
    qtbot.waitUntil(lambda: rec.step > stopped_at + 2, timeout=TIMEOUT)
    st = [e for e in seen if isinstance(e, Started)][-1]
    assert st.resumed and st.step == stopped_at and rec.train["loss"][0][0] == 1  # one curve across both
    asked, background = [], []
    panel.ask_close = lambda n: asked.append(n) or "leave"
    monkeypatch.setattr("explorer.training.trainer_panel.start_background_resume", lambda args, **kw: background.append(args))
    with qtbot.waitSignal(panel.run_ended, timeout=TIMEOUT):
        w.close()
    assert asked == [1] and rec.status == "stopped"
    # "keep training": stopped cleanly here, continued by a detached --resume
    assert background and "--resume" in background[0] and spec.run_dir in background[0]
