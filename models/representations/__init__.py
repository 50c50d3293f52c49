"""Audio representations (features a network consumes) and their inverses (back to sound).

``get_representation_preset("colonel")``, ``representation_from_dict(d)``; each representation
has ``analyze(y) -> Analysis`` and ``synthesize(features, side=..., phase=...)``. Phase methods
live in :mod:`models.representations.phase`.
"""

from models.representations.base import (
    REPRESENTATIONS,
    Analysis,
    Representation,
    register_representation,
    representation_from_dict,
)
from models.representations.logmel import LogMel, LogMelConfig
from models.representations.nn_frames import NNFrames, NNFramesConfig
from models.representations.phase import DEFAULT_METHOD, PHASE_METHODS, PhaseConfig, reconstruct
from models.representations.presets import REPRESENTATION_PRESETS, get_representation_preset
from models.representations.stft import StftParams, spectral_convergence
from models.representations.stft_frames import StftFrames, StftFramesConfig
from models.representations.waveform import Waveform, WaveformConfig, trim_leading_silence

__all__ = [
    "DEFAULT_METHOD",
    "PHASE_METHODS",
    "REPRESENTATIONS",
    "REPRESENTATION_PRESETS",
    "Analysis",
    "LogMel",
    "LogMelConfig",
    "NNFrames",
    "NNFramesConfig",
    "PhaseConfig",
    "Representation",
    "StftFrames",
    "StftFramesConfig",
    "StftParams",
    "Waveform",
    "WaveformConfig",
    "get_representation_preset",
    "reconstruct",
    "register_representation",
    "representation_from_dict",
    "spectral_convergence",
    "trim_leading_silence",
]
