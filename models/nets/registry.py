"""Name -> model class, and named presets that reproduce the papers' settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.config import config_from_dict
from models.errors import ConfigError
from models.nets.base import LatentModel

MODEL_REGISTRY: dict[str, type[LatentModel]] = {}
PRESETS: dict[str, "Preset"] = {}


def register_model(cls: type[LatentModel]) -> type[LatentModel]:
    """Class decorator: make ``cls`` buildable by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in MODEL_REGISTRY and MODEL_REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} registered twice")
    MODEL_REGISTRY[cls.name] = cls
    return cls


def build_model(name: str, config: dict[str, Any] | Any) -> LatentModel:
    """Instantiate a registered model from its name and a config dict (or dataclass)."""
    _ensure_loaded()
    try:
        cls = MODEL_REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODEL_REGISTRY))}"
        ) from None
    if isinstance(config, dict):
        config = config_from_dict(cls.config_class, config)
    return cls(config)


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named recipe: model, its config, the representation it eats, training defaults.

    ``representation`` is a dict with ``"kind"`` plus that representation's parameters;
    ``training`` holds optimiser settings (``lr``, ``batch_size``, ``epochs``, ``patience``...).
    """

    name: str
    model: str
    model_config: dict[str, Any]
    representation: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    description: str = ""
    #: overrides of ``model_config`` / ``representation`` giving a tiny version for tests
    tiny_model: dict[str, Any] = field(default_factory=dict)
    tiny_representation: dict[str, Any] = field(default_factory=dict)


def register_preset(preset: Preset) -> Preset:
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} registered twice")
    PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    _ensure_loaded()
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}"
        ) from None


def _ensure_loaded() -> None:
    # Model modules register themselves on import; importing the catalogue loads them all.
    import models.nets.catalog  # noqa: F401
