"""Helpers shared by the trainer tests: a tiny dataset and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from models.events import Event, parse_event

#: the CLI exactly as users run it, with one thread (the test machine is shared)
CLI = [sys.executable, "-m", "trainer"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def make_tones(root: Path, *, per_label: int = 4, sr: int = 8000, seconds: float = 0.25) -> Path:
    """``root/{low,high}/tone_<i>.wav``: short sine tones with a decaying envelope."""
    t = np.arange(int(sr * seconds)) / sr
    for label, base in (("low", 220.0), ("high", 880.0)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            f = base * (1 + 0.05 * i)
            y = 0.5 * np.sin(2 * np.pi * f * t) * np.exp(-3 * t) + 0.2 * np.sin(4 * np.pi * f * t)
            sf.write(root / label / f"tone_{i}.wav", y.astype(np.float32), sr)
    return root


def train_args(data: Path, run_dir: Path, *extra: str, preset: str = "roche-deep-ae") -> list[str]:
    """``train`` on the tiny preset, one progress event per step; features cached beside ``data``."""
    return [
        "train", "--preset", preset, "--tiny", "--data", str(data), "--run-dir", str(run_dir),
        "--cache-dir", str(data.parent / "cache"), "--threads", "1", "--device", "cpu",
        "--set", "train.log_every=1", *extra,
    ]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=timeout)


def popen_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True, env=ENV)


def events_of(stdout: str) -> list[Event]:
    """Every stdout line parsed against the schema (a non-event line fails the test)."""
    return [parse_event(line) for line in stdout.splitlines() if line.strip()]
