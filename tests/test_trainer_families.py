"""Every model family through the real CLI entry point (in-process, tiny size, a few steps).

train -> evaluate -> compare -> export, on the tiny tones of ``trainer_helpers``: the LSTM-AE
(windows), Natsiou's conv AE (log-mel), Lionello's VAEs (waveform, with and without the
bottleneck classifier), and a comparison of PCA and the LSTM-AE across two latent sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.cli import main
from trainer_helpers import make_tones

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones") / "data", per_label=4, seconds=0.6)


def _train(tones, run, preset, *extra):
    code = main(["train", "--preset", preset, "--tiny", "--data", str(tones), "--run-dir", str(run),
                 "--cache-dir", str(tones.parent / "cache"), "--device", "cpu", "--max-steps", "2", *extra])
    assert code == 0, (run / "train.log").read_text()
    return json.loads((run / "config.json").read_text())


def _evaluate(tones, run, split="train"):
    assert main(["evaluate", "--run-dir", str(run), "--split", split, "--cache-dir", str(tones.parent / "cache")]) == 0
    return json.loads((run / "evaluation.json").read_text())


def test_lionello_classifier_sized_from_data_and_noclass_kept(tones, tmp_path):
    # the classifier gets the data's two classes; the "non-class" preset keeps n_classes=0
    cfg = _train(tones, tmp_path / "cc", "lionello-ccvae-digits-small")
    assert cfg["model_config"]["n_classes"] == 2 and cfg["model_config"]["input_shape"] == [256]
    cfg = _train(tones, tmp_path / "nc", "lionello-dcvae-digits-noclass")
    assert cfg["model_config"]["n_classes"] == 0
    ev = _evaluate(tones, tmp_path / "cc")
    s = ev["summary"]
    assert s["rmse"]["n"] == ev["n_clips"] and s["rmse"]["mean"] > 0
    assert 0.0 <= s["knn1_accuracy"] <= 1.0
    # waveform models: the class centre is decoded to sound and compared by MFCC-DTW
    dtw = s["mfcc_dtw"]
    assert set(dtw["per_class"]) == {"high", "low"} and dtw["average"]["n"] == 2
    assert all(np.isfinite(v["mean"]) and v["mean"] >= 0 for v in dtw["per_class"].values())
    assert "MFCC-DTW deviation per class" in (tmp_path / "cc" / "evaluation.md").read_text()


def test_natsiou_logmel_train_and_evaluate(tones, tmp_path):
    cfg = _train(tones, tmp_path / "n", "natsiou-no-pool")
    assert cfg["model_config"]["input_shape"] == [64, 64] and cfg["model_config"]["pooling"] == "none"
    s = _evaluate(tones, tmp_path / "n")["summary"]
    for k in ("rmse", "ssim", "precision", "recall", "f1"):
        assert s[k]["mean"] is not None and np.isfinite(s[k]["mean"]), k
    assert 0 < s["rmse"]["mean"] < 1 and set(s["mfcc_dtw"]["per_class"]) == {"high", "low"}


def test_evaluate_leaves_out_1nn_on_a_single_class_split(tones, tmp_path):
    # the grouped split of 2 x 4 tones puts clips of one class only on the test side
    _train(tones, tmp_path / "p", "roche-pca")
    split = json.loads((tmp_path / "p" / "split.json").read_text())
    ev = _evaluate(tones, tmp_path / "p", split="test")
    labels = {row["label"] for row in ev["per_clip"]}
    assert len(split["test"]) == len(ev["per_clip"])
    assert ("knn1_accuracy" in ev["summary"]) == (len(labels) > 1)


def test_compare_two_families_two_sizes_and_rerun_resumes(tones, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(tones), "--presets", "roche-pca", "roche-lstm-ae", "--latent-dims", "2", "3",
            "--out", str(out), "--tiny", "--max-steps", "2", "--device", "cpu", "--threads", "1",
            "--cache-dir", str(tones.parent / "cache"), "--metrics", "rmse", "ssim",
            "--set", "roche-lstm-ae:model.hidden_size=6"]
    assert main(args) == 0
    table = (out / "comparison.md").read_text()
    assert "| roche-pca | " in table and "| roche-lstm-ae | " in table and "**SSIM**" in table
    data = json.loads((out / "comparison.json").read_text())
    for name in ("roche-pca", "roche-lstm-ae"):
        for d in ("2", "3"):
            assert data["results"][name][d]["rmse"]["mean"] > 0
    assert data["results"]["roche-pca"]["2"]["run"]["steps"] == 1
    assert data["results"]["roche-lstm-ae"]["3"]["run"]["steps"] == 2
    cfg = json.loads((out / "roche-lstm-ae-d3" / "config.json").read_text())["model_config"]
    assert cfg["hidden_size"] == 6 and cfg["latent_dim"] == 3
    # PCA with more components reconstructs its training frames at least as well
    assert data["results"]["roche-pca"]["3"]["rmse"]["mean"] <= data["results"]["roche-pca"]["2"]["rmse"]["mean"] + 1e-3
    # a second run finds the runs done and trains no further step
    assert main(args) == 0
    again = json.loads((out / "comparison.json").read_text())
    assert again["results"]["roche-lstm-ae"]["3"]["run"]["steps"] == 2
    # the training time is the run's own (from its events), not that of the quick second call
    first_s = data["results"]["roche-lstm-ae"]["3"]["run"]["train_s"]
    assert first_s > 0 and again["results"]["roche-lstm-ae"]["3"]["run"]["train_s"] >= first_s
    # a prefix that names no compared preset is refused before anything trains
    bad = [*args[:-2], "--set", "roche-vae:model.latent_dim=4"]
    assert main(bad) == 2
    assert "not one of --presets" in capsys.readouterr().err


def test_export_lstm_decoder(tones, tmp_path, capsys):
    _train(tones, tmp_path / "l", "roche-lstm-ae")
    assert main(["export", "--checkpoint", str(tmp_path / "l" / "last.safetensors"), "--out", str(tmp_path / "x")]) == 0
    names = {p.name for p in (tmp_path / "x").iterdir()}
    assert {"last.decoder.onnx", "last.decoder.ts", "last.decoder.json"} <= names, names
    assert "max abs error" in capsys.readouterr().out


def test_resume_set_train_epochs_wins_over_epochs(tones, tmp_path):
    # compare passes --epochs to every run and PRESET:train.epochs=N to one: N must win, on a
    # new run and on a resumed one alike
    from trainer.run_setup import TrainOptions, load_or_resolve_config

    run = tmp_path / "r"
    _train(tones, run, "roche-shallow-ae", "--epochs", "5")
    opts = TrainOptions(run_dir=run, resume=True, epochs=5, overrides=("train.epochs=1",))
    cfg, resuming = load_or_resolve_config(opts)
    assert resuming and cfg.train.epochs == 1
    opts = TrainOptions(run_dir=tmp_path / "new", preset="roche-shallow-ae", data=str(tones), epochs=5,
                        overrides=("train.epochs=1",), tiny=True)
    assert load_or_resolve_config(opts)[0].train.epochs == 1


def test_alternating_resume_is_exact_and_best_follows_select_on(tones, tmp_path):
    # Lionello's two Adam optimisers: N steps + stop + resume to 2N equals 2N uninterrupted,
    # across epoch boundaries (batches of 2: 3 steps per epoch, validation in between)
    import torch
    from safetensors.torch import load_file

    from models.checkpoints.checkpoint import load_training_state

    common = ("--set", "train.batch_size=2", "--seed", "3")
    a, b = tmp_path / "a", tmp_path / "b"
    _train(tones, a, "lionello-ccvae-digits-small", *common, "--max-steps", "4")
    state = load_training_state(a / "training_state.pt")
    assert state["step"] == 4 and state["optimizer_classifier"]["state"]  # Adam moments saved
    _train(tones, a, "lionello-ccvae-digits-small", "--resume", "--max-steps", "8")
    _train(tones, b, "lionello-ccvae-digits-small", *common, "--max-steps", "8")
    wa, wb = load_file(a / "last.safetensors"), load_file(b / "last.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = load_training_state(a / "training_state.pt"), load_training_state(b / "training_state.pt")
    for key in ("optimizer", "optimizer_classifier"):
        ma, mb = sa[key]["state"], sb[key]["state"]
        assert ma.keys() == mb.keys() and all(torch.equal(ma[i]["exp_avg"], mb[i]["exp_avg"]) for i in ma)
    # best is chosen on the validation VAE objective, not on the total with the cross-entropy
    events = [json.loads(line) for line in (b / "events.jsonl").read_text().splitlines()]
    val = [e for e in events if e["event"] == "validation"]
    assert len(val) == 2 and all("classification" in e["losses"] for e in val)
    best_vae = min(e["losses"]["vae"] for e in val)
    finished = [e for e in events if e["event"] == "finished"][-1]
    assert finished["best_val_loss"] == pytest.approx(best_vae)
    assert [e["best"] for e in val] == [True, val[1]["losses"]["vae"] < val[0]["losses"]["vae"]]


def test_select_on_an_unknown_term_fails_before_training(tones, tmp_path, capsys):
    code = main(["train", "--preset", "roche-deep-ae", "--tiny", "--data", str(tones), "--run-dir",
                 str(tmp_path / "r"), "--cache-dir", str(tones.parent / "cache"), "--device", "cpu",
                 "--set", "train.select_on=nope"])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.select_on='nope'" in err and "recon" in err
    assert not (tmp_path / "r" / "last.safetensors").exists()
