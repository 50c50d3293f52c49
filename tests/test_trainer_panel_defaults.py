"""The trainer panel's defaults and what it shows: rate, device, typed values, names, epochs, ETA."""

from __future__ import annotations

import pytest

from explorer.core.training_runs import RunRecord, StepTimer, checkpoint_label, run_model_label, train_args
from models.checkpoints.checkpoint import TrainingSummary
from models.events import CheckpointWritten, Finished, Progress, Started

STARTED = dict(run_dir="r", preset="p", model="m", device="cpu", seed=0, step=0, epoch=0, total_steps=1000,
               n_train=10, n_val=2, n_test=2)


# --- Qt-free ------------------------------------------------------------------------------------------
def test_epochs_count_from_one() -> None:
    rec = RunRecord(run_dir="/runs/a")
    rec.apply(Started(**STARTED))
    rec.apply(Progress(epoch=0, step=5, total_steps=1000, losses={"loss": 1.0}, lr=1e-3))
    assert rec.epoch_text() == "epoch 1"
    rec.apply(Progress(epoch=2, step=25, total_steps=1000, losses={"loss": 1.0}, lr=1e-3))
    assert rec.epoch_text() == "epoch 3"  # two epochs done, the third under way
    rec.apply(Finished(epoch=2, step=30, reason="max_steps", duration_s=1.0))
    assert rec.epoch_text() == "2 epochs"


def test_eta_is_smoothed_over_recent_steps() -> None:
    rec = RunRecord(run_dir="/runs/a")
    rec.apply(Started(**STARTED))
    etas = []
    for k in range(1, 31):
        sps = 1.0 if k == 15 else 10.0  # one window ten times slower: a validation in it
        rec.apply(Progress(epoch=0, step=10 * k, total_steps=1000, losses={"loss": 1.0}, lr=1e-3, steps_per_sec=sps,
                           eta_s=(1000 - 10 * k) / sps))
        etas.append(rec.eta_s)
    assert etas[0] == pytest.approx(99.0)  # the first report sets the pace: 990 steps at 0.1 s
    # the raw estimate jumps tenfold at the slow window; the smoothed one by a few per cent
    assert etas[14] / etas[13] < 1.2
    assert all(later <= earlier * 1.2 for earlier, later in zip(etas, etas[1:]))
    assert etas[-1] == pytest.approx(70.0, rel=0.15)


def test_step_timer_converges_to_a_new_pace() -> None:
    t = StepTimer(half_life=100)
    t.update(10, 10.0)
    for step in range(20, 2000, 10):
        t.update(step, 2.0)  # the machine got slower for good
    assert t.seconds_per_step == pytest.approx(0.5, rel=0.01)
    assert t.eta(100) == pytest.approx(50.0, rel=0.01)


def test_runs_and_models_are_named_distinctly() -> None:
    a, b = RunRecord(run_dir="/runs/colonel-20261201-1638"), RunRecord(run_dir="/runs/colonel-20261201-1702")
    for rec, loss in ((a, 0.0123), (b, 0.0456)):
        rec.apply(CheckpointWritten(path=f"{rec.run_dir}/best.safetensors", kind="best", epoch=3, step=1200,
                                    metrics={"val_loss": loss}))
    assert a.model_label() == "colonel-20261201-1638 best · step 1200 · val 0.0123"
    assert a.model_label() != b.model_label()
    training = TrainingSummary(steps=1200, best_val_loss=0.0123)
    assert checkpoint_label("/runs/colonel-20261201-1638/best.safetensors", model_name="deep_ae",
                            rep_kind="stft_frames", training=training) == \
        "colonel-20261201-1638 best · step 1200 · val 0.0123 (deep_ae, stft_frames)"
    assert checkpoint_label("/models/piano.safetensors") == "piano"
    assert run_model_label("x", None, float("nan")) == "x"


# --- the form (offscreen) -----------------------------------------------------------------------------------
@pytest.fixture
def form(qtbot, monkeypatch):
    monkeypatch.setattr("explorer.training.trainer_form._cuda_available", lambda: False)
    from explorer.training.trainer_form import TrainerForm

    f = TrainerForm()
    qtbot.addWidget(f)
    return f


@pytest.mark.gui
def test_device_is_auto_and_never_cuda_without_a_gpu(form) -> None:
    assert form.device.currentData() == "auto"
    assert [form.device.itemData(i) for i in range(form.device.count())] == ["auto", "cpu"]
    form.set_preset("colonel-hybrid")
    form.data.setText("/data/notes")
    args = train_args(form.spec("/runs/x"))
    assert args[args.index("--device") + 1] == "auto"


@pytest.mark.gui
def test_sample_rate_defaults_to_the_datasets(form) -> None:
    form.set_preset("colonel-hybrid")  # a 22.05 kHz preset
    assert form.chosen_rate() == 22050 and form.overrides() == ()
    form.set_dataset_rate(16000)
    assert form.chosen_rate() == 16000 and form.overrides() == ("rep.sample_rate=16000",)
    form.set_preset("roche-deep-ae")  # a 16 kHz preset on a 16 kHz dataset: nothing to override
    assert form.chosen_rate() == 16000 and form.overrides() == ()
    form.sample_rate.setEditText("44100")  # the user's own choice stays through preset changes
    form.set_preset("colonel-hybrid")
    form.set_dataset_rate(8000)
    assert form.chosen_rate() == 44100 and "rep.sample_rate=44100" in form.overrides()


@pytest.mark.gui
def test_typed_values_stay(form, qtbot) -> None:
    form.set_preset("roche-deep-ae")
    form.lr.lineEdit().selectAll()
    qtbot.keyClicks(form.lr.lineEdit(), "5e-7")
    form.lr.interpretText()
    assert form.lr.value() == pytest.approx(5e-7) and form.lr.text() == "5e-07"
    form.batch_size.setValue(17)
    # the app offers fine-tuning (an entry inserted above the current one) and reloads models
    form.set_fine_tune_source("/runs/a/best.safetensors", "roche-deep-ae", {"lr": 1e-3})
    form.set_fine_tune_source("/runs/b/best.safetensors", "roche-deep-ae", {"lr": 1e-4})
    assert form.source.currentData() == "roche-deep-ae"
    assert form.lr.value() == pytest.approx(5e-7) and form.batch_size.value() == 17
    form.set_preset("colonel-hybrid")  # another preset refills only what the user did not type
    assert form.lr.value() == pytest.approx(5e-7) and form.batch_size.value() == 17
    assert "train.lr=5e-07" in form.overrides() and "train.batch_size=17" in form.overrides()


@pytest.mark.gui
def test_fine_tune_lr_does_not_change_by_itself(form) -> None:
    form.set_fine_tune_source("/runs/a/best.safetensors", "colonel-hybrid", {"lr": 1e-3})
    form.source.setCurrentIndex(form.source.findData("<fine-tune>"))
    assert form.lr.value() == pytest.approx(1e-4) and form.lr.text() == "0.0001"
    # a hot reload brings the fine-tuning run's own best model (trained at 1e-4): the field stays
    form.set_fine_tune_source("/runs/ft/best.safetensors", "colonel-hybrid", {"lr": 1e-4})
    assert form.lr.value() == pytest.approx(1e-4)
    assert form.spec("/runs/y").init_from == "/runs/ft/best.safetensors"
    assert "train.lr=0.0001" in form.overrides()
    assert not form.sample_rate.isEnabled()  # the loaded model's rate is kept when fine-tuning
