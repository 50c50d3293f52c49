"""Early stopping waits for a VAE's KL warm-up: validations before it ends do not use up patience.

The validated objective is taken at the KL's full weight while training still weighs it by the
warm-up factor, so a VAE's validation loss can rise during the warm-up while it learns. With
``min_delta`` set out of reach no validation after the first improves, so ``patience=1`` stops a
run at its second validation, unless the warm-up is still under way then.
"""

from __future__ import annotations

import json

import pytest

from trainer.cli import main
from trainer_helpers import make_tones

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return make_tones(tmp_path_factory.mktemp("tones") / "data", per_label=4, seconds=0.25)


def _finished(tones, run, warmup: int) -> dict:
    code = main(["train", "--preset", "roche-vae", "--tiny", "--data", str(tones), "--run-dir", str(run),
                 "--cache-dir", str(tones.parent / "cache"), "--device", "cpu", "--seed", "0",
                 "--epochs", "4", "--set", "train.patience=1", "--set", "train.min_delta=1e9",
                 "--set", "train.batch_size=64", "--set", f"model.kl_warmup_steps={warmup}"])
    assert code == 0, (run / "train.log").read_text()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "finished"][-1]


def test_patience_counts_only_after_the_kl_warmup(tones, tmp_path):
    without = _finished(tones, tmp_path / "a", warmup=0)
    assert without["reason"] == "early_stopping" and without["epoch"] == 2
    # a warm-up longer than the run: every validation falls inside it, the run completes
    within = _finished(tones, tmp_path / "b", warmup=100_000)
    assert within["reason"] == "completed" and within["epoch"] == 4


def test_patience_resumes_counting_once_the_warmup_is_over(tones, tmp_path):
    per_epoch = _finished(tones, tmp_path / "c", warmup=0)["step"] // 2  # stopped after two epochs
    # the warm-up ends during the third epoch: the second validation is not counted, the third is
    late = _finished(tones, tmp_path / "d", warmup=2 * per_epoch + 1)
    assert late["reason"] == "early_stopping" and late["epoch"] == 3
