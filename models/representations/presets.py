"""The papers' representation parameters, by name.

Each preset is the ``to_dict`` form of a representation, so a model preset or a checkpoint can
hold it as plain JSON. Where a paper is silent the choice is ours and documented in
docs/representations.md.
"""

from __future__ import annotations

from typing import Any

from models.errors import ConfigError
from models.representations.base import Representation, representation_from_dict

REPRESENTATION_PRESETS: dict[str, dict[str, Any]] = {
    # Roche et al. 2019 (NSynth, 16 kHz): STFT size, hop and scale are not in the abstract we
    # have; 1024/256 Hann with log magnitude over 80 dB, each clip scaled by its maximum.
    "roche": {
        "kind": "stft_frames", "sample_rate": 16000, "n_fft": 1024, "hop_length": 256,
        "window": "hann", "magnitude": "log", "top_db": 80.0, "normalize": "clip",
    },
    # Colonel et al. 2017: 22.05 kHz, 2048-point STFT (1025 bins), centred Hann, each frame
    # divided by its own maximum; hop 512 (librosa's default).
    "colonel": {
        "kind": "stft_frames", "sample_rate": 22050, "n_fft": 2048, "hop_length": 512,
        "window": "hann", "magnitude": "linear", "normalize": "frame",
    },
    # Natsiou et al.: 128 mel bands, FFT 1024, Blackman window of 690 samples, [0, 1]; hop 256
    # and 256 frames (4 s at 16 kHz is 251 frames; 256 = 4 * 64 fits three stride-2 +
    # pool-2 layers).
    "natsiou": {
        "kind": "logmel", "sample_rate": 16000, "n_fft": 1024, "hop_length": 256,
        "win_length": 690, "window": "blackman", "n_mels": 128, "htk": True, "top_db": 80.0,
        "ref": "max", "n_frames": 256,
    },
    # Lionello & Purwins: spoken digits, 4096 samples at 8 kHz; drums, 16384 at 22.05 kHz.
    "lionello-digits": {"kind": "waveform", "sample_rate": 8000, "n_samples": 4096},
    "lionello-drums": {"kind": "waveform", "sample_rate": 22050, "n_samples": 16384},
}


def get_representation_preset(name: str, **overrides: Any) -> Representation:
    """The representation of the preset ``name``, with some parameters changed if asked."""
    try:
        d = REPRESENTATION_PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown representation preset {name!r}; known: {', '.join(REPRESENTATION_PRESETS)}"
        ) from None
    return representation_from_dict({**d, **overrides})
