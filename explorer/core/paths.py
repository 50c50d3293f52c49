"""Where the app finds its bundled demo: the one place these paths are spelled.

``resources/demo/`` (built by ``scripts/build_demo.py``, described in docs/demo.md) holds two
demos, each a dataset folder beside the checkpoints trained on it. The app opens the notes demo;
the digits are at 8 kHz, which the notes models cannot read, so they live apart and are opened
by hand (``latent-explorer resources/demo/digits/dataset``). No waveform checkpoint is bundled
yet (docs/demo.md says why); ``scripts/build_demo.py --only lionello`` writes one there.
"""

from __future__ import annotations

from pathlib import Path

#: resources/ sits beside the packages in a checkout
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMO_DIR = RESOURCES / "demo"
#: the demo the app opens: FluidR3 GM notes (NSynth layout) and its checkpoints
#: (``*.safetensors``, first in sorted order selected)
DEMO_DATASET = DEMO_DIR / "notes" / "dataset"
DEMO_CHECKPOINTS = DEMO_DIR / "notes" / "checkpoints"
#: espeak-ng spoken digits (FSDD layout, 8 kHz), and where a waveform VAE trained on them goes
DEMO_DIGITS_DATASET = DEMO_DIR / "digits" / "dataset"
DEMO_DIGITS_CHECKPOINTS = DEMO_DIR / "digits" / "checkpoints"
CHECKPOINT_SUFFIXES = (".safetensors",)
SESSION_SUFFIX = ".json"


def demo_available() -> bool:
    return DEMO_DATASET.is_dir() and any(DEMO_CHECKPOINTS.glob("*.safetensors"))


def demo_checkpoints() -> list[Path]:
    return sorted(DEMO_CHECKPOINTS.glob("*.safetensors"))
