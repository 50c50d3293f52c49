"""Lionello's protocols in ``latent-trainer evaluate``: spectral convergence against silence, 1-NN
against the training clips, and a second dataset of unseen speakers.

Hand-made cases pin the measures; one tiny run (2 steps) checks that the CLI writes them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.cli import main
from trainer.evaluate import knn1_against, waveform_spectral_convergence
from trainer_helpers import make_tones


def _clip(seed: int = 0, n: int = 4096) -> np.ndarray:
    g = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    return (0.5 * np.sin(2 * np.pi * 440 * t + g.uniform(0, 6)) + 0.05 * g.standard_normal(n)).astype(np.float32)


def test_spectral_convergence_scores_silence_one_and_ignores_the_sign():
    x = _clip()
    assert waveform_spectral_convergence(x, x) == 0.0
    assert waveform_spectral_convergence(x, np.zeros_like(x)) == pytest.approx(1.0)
    # a sign flip is inaudible: the waveform error is twice the signal, the spectra are the same
    assert waveform_spectral_convergence(x, -x) < 1e-6
    assert waveform_spectral_convergence(x, 0.5 * x) == pytest.approx(0.5, rel=1e-5)
    # noise of the clip's level is worse than silence
    assert waveform_spectral_convergence(x, np.random.default_rng(2).standard_normal(4096)) > 1.0


def test_knn1_against_the_training_clips():
    ref = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    ref_labels = np.array(["a", "a", "b", "b"])
    q = np.array([[0.5, 0.2], [9.0, 0.5], [1.0, 0.0], [4.0, 0.0]])
    assert knn1_against(ref, ref_labels, q, np.array(["a", "b", "b", "b"])) == 0.5
    # its own takes do not count: a query that duplicates another query still looks at the references
    assert knn1_against(ref, ref_labels, np.array([[9.0, 0.0], [9.0, 0.0]]), np.array(["a", "a"])) == 0.0


@pytest.mark.usefixtures("one_torch_thread")
def test_evaluate_writes_the_lionello_protocols(tmp_path):
    data = make_tones(tmp_path / "seen", per_label=4, seconds=0.6)
    other = make_tones(tmp_path / "unseen", per_label=3, seconds=0.6)
    cache = str(tmp_path / "cache")
    run = tmp_path / "run"
    assert main(["train", "--preset", "lionello-ccvae-digits-small", "--tiny", "--data", str(data), "--run-dir",
                 str(run), "--cache-dir", cache, "--device", "cpu", "--max-steps", "2"]) == 0
    assert main(["evaluate", "--run-dir", str(run), "--split", "test", "--cache-dir", cache]) == 0
    ev = json.loads((run / "evaluation.json").read_text())
    s = ev["summary"]
    assert s["sc"]["n"] == s["rmse"]["n"] == ev["n_clips"] and s["sc"]["mean"] > 0
    assert 0 < s["rmse_silence"]["mean"] <= 1
    assert 0.0 <= s["knn1_vs_train_accuracy"] <= 1.0 and s["chance"] == 0.5
    assert "SC (silence 1)" in (run / "evaluation.md").read_text()

    assert main(["evaluate", "--run-dir", str(run), "--unseen", str(other), "--cache-dir", cache]) == 0
    un = json.loads((run / "evaluation-unseen.json").read_text())
    assert un["split"] == "unseen" and un["n_clips"] == 6
    assert {row["name"] for row in un["per_clip"]} == {f"{lab}/tone_{i}.wav" for lab in ("low", "high")
                                                       for i in range(3)}
    assert "knn1_vs_train_accuracy" in un["summary"] and "knn1_accuracy" in un["summary"]
    assert json.loads((run / "evaluation.json").read_text()) == ev  # the split's evaluation is kept
    # the event names what was evaluated
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["split"] for e in events if e["event"] == "evaluation"] == ["test", "unseen"]
