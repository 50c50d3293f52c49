"""Where the app finds its bundled demo: the one place these paths are spelled."""

from __future__ import annotations

from pathlib import Path

#: resources/ sits beside the packages in a checkout
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_DIR = RESOURCES / "demo"
#: the demo's dataset folder and its checkpoints (``*.safetensors``, first one selected)
DEMO_DATASET = DEMO_DIR / "dataset"
DEMO_CHECKPOINTS = DEMO_DIR / "checkpoints"
CHECKPOINT_SUFFIXES = (".safetensors",)
SESSION_SUFFIX = ".json"


def demo_available() -> bool:
    return DEMO_DATASET.is_dir() and any(DEMO_CHECKPOINTS.glob("*.safetensors"))


def demo_checkpoints() -> list[Path]:
    return sorted(DEMO_CHECKPOINTS.glob("*.safetensors"))
