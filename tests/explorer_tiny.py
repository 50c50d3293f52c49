"""A tiny dataset, representation and model for the explorer's tests.

The representation cuts a waveform into 64-sample frames (a frame model's layout, like
stft_frames) and puts them back; the model is a linear autoencoder whose decoder is its
encoder's transpose, so decodings of sines are sines (not silence).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.audio import save_wav
from models.inference.encode import NullState
from models.nets.base import LatentCode, LatentModel
from models.representations.base import Representation

SR = 8000
FRAME = 64
N_SAMPLES = 2000  # 0.25 s: 32 frames, the last one padded
CLASSES = {"low": 220.0, "mid": 660.0, "high": 1500.0, "noise": 0.0}


def make_dataset_folder(root: Path, *, per_class: int = 25) -> Path:
    """``root/<class>/<class>_<k>.wav``: sines per class (and a noise class), 8 kHz."""
    rng = np.random.default_rng(0)
    t = np.arange(N_SAMPLES) / SR
    for name, f in CLASSES.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            if f:
                y = 0.5 * np.sin(2 * np.pi * f * (1 + 0.01 * k) * t)
            else:
                y = 0.3 * rng.standard_normal(N_SAMPLES)
            y *= np.linspace(1.0, 0.3, N_SAMPLES)  # an envelope, so clips differ
            save_wav(root / name / f"{name}_{k:02d}.wav", y.astype(np.float32), sr=SR)
    return root


@dataclass(frozen=True, kw_only=True)
class FrameRepConfig:
    sample_rate: int = SR
    frame: int = FRAME


@dataclass
class Analysis:
    features: np.ndarray
    side: dict
    n_samples: int


class FrameRep:
    """Non-overlapping frames of the waveform: features [shape=(n_frames, FRAME)]."""

    kind = "stft_frames"
    time_first = True
    side_keys = frozenset({"frame_max"})
    envelope_keys = frozenset({"frame_max"})
    check_side = Representation.check_side

    def __init__(self) -> None:
        self.config = FrameRepConfig()
        self.sample_rate = SR

    def feature_shape(self, n_samples: int) -> tuple[int, int]:
        return (-(-n_samples // FRAME), FRAME)

    def analyze(self, y: np.ndarray) -> Analysis:
        n = len(y)
        f = np.zeros(self.feature_shape(n), np.float32)
        f.reshape(-1)[:n] = y
        return Analysis(features=f, side={"frame_max": np.abs(f).max(axis=1)}, n_samples=n)

    def synthesize(self, features, *, side=None, phase="default", n_samples=None, phase_config=None) -> np.ndarray:
        y = np.asarray(features, np.float32).reshape(-1)
        return y[:n_samples] if n_samples else y

    def to_dict(self) -> dict:
        return {"kind": self.kind, "sample_rate": SR, "frame": FRAME}


@dataclass(frozen=True, kw_only=True)
class TinyAEConfig:
    input_shape: tuple[int, ...] = (FRAME,)
    latent_dim: int = 12


class TinyAE(LatentModel):
    name = "tiny_test_ae"
    config_class = TinyAEConfig
    consumes = "stft_frames"

    def __init__(self, config: TinyAEConfig) -> None:
        super().__init__(config)
        # PCA-like basis of low-frequency sines and cosines: sines decode to themselves
        n = np.arange(FRAME)
        basis = []
        for k in range(1, config.latent_dim // 2 + 1):
            for fn in (np.sin, np.cos):
                v = fn(2 * np.pi * k * 2 * n / FRAME)
                basis.append(v / np.linalg.norm(v))
        self.W = torch.nn.Parameter(torch.tensor(np.array(basis).T, dtype=torch.float32))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        return LatentCode(mean=x @ self.W)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W.T


def tiny_loaded_model(key: str = "tiny-model"):
    from explorer.core.controller import LoadedModel

    return LoadedModel(key=key, label=f"{key} (tiny_test_ae, stft_frames)", model=TinyAE(TinyAEConfig()),
                       representation=FrameRep())


class FakeState(NullState):
    """Records reports and partial results; can be told to stop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.reports: list[tuple[float, str]] = []
        self.partials: list = []
        self.stop_after = stop_after

    def report(self, progress, message=""):
        self.reports.append((progress, message))

    def partial(self, result):
        self.partials.append(result)

    def should_stop(self):
        return self.stop_after is not None and len(self.partials) >= self.stop_after
