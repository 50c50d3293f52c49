"""Networks of the four papers behind one small interface (see ``base.LatentModel``).

Importing this package registers every model class and preset.
"""

from models.nets.base import LatentCode, LatentModel, ModelOutput
from models.nets.registry import (
    MODEL_REGISTRY,
    PRESETS,
    Preset,
    build_model,
    get_preset,
    register_model,
    register_preset,
)

__all__ = [
    "LatentCode",
    "LatentModel",
    "ModelOutput",
    "MODEL_REGISTRY",
    "PRESETS",
    "Preset",
    "build_model",
    "get_preset",
    "register_model",
    "register_preset",
]
