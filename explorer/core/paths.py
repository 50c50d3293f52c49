"""Where the app finds its bundled demo: the one place these paths are spelled.

``resources/demo/`` (built by ``scripts/build_demo.py``, described in docs/demo.md) holds two
demos, each a dataset folder beside the checkpoints trained on it. The app opens the notes demo;
the spoken digits (8 kHz) are another kind of sound, so they live apart and are opened by hand
(``latent-explorer resources/demo/digits/dataset``). No waveform checkpoint is bundled
yet (docs/demo.md says why); ``scripts/build_demo.py --only lionello`` writes one there.
"""

from __future__ import annotations

import json
from pathlib import Path

#: resources/ sits beside the packages in a checkout
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMO_DIR = RESOURCES / "demo"
#: the demo the app opens: FluidR3 GM notes (NSynth layout) and its checkpoints
#: (``*.safetensors``; the best-sounding one by ``quality.json`` is selected)
DEMO_DATASET = DEMO_DIR / "notes" / "dataset"
DEMO_CHECKPOINTS = DEMO_DIR / "notes" / "checkpoints"
#: espeak-ng spoken digits (FSDD layout, 8 kHz), and where a waveform VAE trained on them goes
DEMO_DIGITS_DATASET = DEMO_DIR / "digits" / "dataset"
DEMO_DIGITS_CHECKPOINTS = DEMO_DIR / "digits" / "checkpoints"
#: what scripts/build_demo.py measured of each shipped checkpoint (docs/demo.md)
DEMO_QUALITY = DEMO_DIR / "quality.json"
CHECKPOINT_SUFFIXES = (".safetensors",)
SESSION_SUFFIX = ".json"


def demo_available() -> bool:
    return DEMO_DATASET.is_dir() and any(DEMO_CHECKPOINTS.glob("*.safetensors"))


def demo_checkpoints() -> list[Path]:
    return sorted(DEMO_CHECKPOINTS.glob("*.safetensors"))


def best_sounding_demo_checkpoint() -> Path | None:
    """The demo checkpoint whose decodings (estimated phase, what the app plays) are nearest their
    originals by spectral convergence in ``quality.json``; the first by name when that file is
    missing or unreadable (a demo being rebuilt)."""
    ckpts = demo_checkpoints()
    if not ckpts:
        return None
    try:
        quality = json.loads(DEMO_QUALITY.read_text(encoding="utf-8"))
        scores = {p: float(quality[p.stem]["trained"]["spectral_convergence"]) for p in ckpts if p.stem in quality}
    except (OSError, ValueError, KeyError, TypeError):
        return ckpts[0]
    return min(scores, key=scores.get) if scores else ckpts[0]
