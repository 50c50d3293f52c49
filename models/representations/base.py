"""The interface every representation follows, and the kind -> class registry.

A representation turns a mono clip (float32, at ``config.sample_rate``) into the array a
network consumes, plus the side information that the network does not see but that
resynthesis of that very clip needs (frame maxima, reference level, original phase); and it
turns such an array, decoded or not, back into sound.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from models.arrays import fit_length
from models.config import config_from_dict, config_to_dict
from models.errors import ConfigError
from models.representations.phase import PhaseConfig

REPRESENTATIONS: dict[str, type["Representation"]] = {}


@dataclass(frozen=True)
class Analysis:
    """A clip in a representation.

    Attributes
    ----------
    features : np.ndarray, float32
        What the network consumes (layout per representation, see ``feature_shape``).
    side : dict of str to np.ndarray
        What resynthesis of this clip needs beyond the features; empty for the waveform.
    n_samples : int
        Length of the analysed clip, so resynthesis can give it back at that length.
    """

    features: np.ndarray
    side: dict[str, np.ndarray] = field(default_factory=dict)
    n_samples: int = 0


def register_representation(cls: type["Representation"]) -> type["Representation"]:
    """Class decorator: make ``cls`` buildable from ``{"kind": cls.kind, ...}``."""
    if cls.kind in REPRESENTATIONS and REPRESENTATIONS[cls.kind] is not cls:
        raise ValueError(f"representation kind {cls.kind!r} registered twice")
    REPRESENTATIONS[cls.kind] = cls
    return cls


class Representation(ABC):
    """Base of the representations; see the module docstring.

    Parameters
    ----------
    config : dataclass or None
        An instance of ``config_class``; its defaults when None.
    **overrides
        Fields of ``config_class`` to change (checked as in ``config_from_dict``).
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type]
    #: Features are ``(n_frames, ...)`` with time on the first axis, so a model may take one frame
    #: (or a window of frames) as an item; otherwise the clip is one array with time on its last
    #: axis. ``models.inference.layout`` decides item layouts from this, never from a kind string.
    time_first: ClassVar[bool] = False
    #: The keys of ``Analysis.side`` that :meth:`synthesize` reads; :meth:`check_side` refuses others.
    side_keys: ClassVar[frozenset[str]] = frozenset()
    #: The side keys that describe a clip's level over time (an envelope) rather than the clip
    #: itself, so a code decoded at that clip's length may borrow them (Colonel's held frame).
    envelope_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any | None = None, **overrides: Any) -> None:
        if config is None:
            config = config_from_dict(self.config_class, overrides)
        elif not isinstance(config, self.config_class):
            raise ConfigError(f"{self.kind}: expected a {self.config_class.__name__}, got {type(config).__name__}")
        elif overrides:
            config = config_from_dict(self.config_class, {**config_to_dict(config), **overrides})
        self._config = config

    @property
    def config(self) -> Any:
        return self._config

    @property
    def sample_rate(self) -> int:
        return int(self._config.sample_rate)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in config_to_dict(self._config).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config == self.config  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, self._config))

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., **parameters}``, JSON-ready; :func:`representation_from_dict` inverts it."""
        return {"kind": self.kind, **config_to_dict(self._config)}

    @abstractmethod
    def analyze(self, y: np.ndarray, *, keep_phase: bool = True) -> Analysis:
        """Features and side information of one clip.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)]
            Mono audio at ``self.sample_rate``.
        keep_phase : bool
            Keep the STFT phase in ``side["phase"]`` (spectral kinds; doubles the side data,
            so a feature cache of a large dataset may leave it out).
        """

    def analyze_batch(self, ys: Sequence[np.ndarray], *, keep_phase: bool = True) -> list[Analysis]:
        """:meth:`analyze` for each clip."""
        return [self.analyze(y, keep_phase=keep_phase) for y in ys]

    @abstractmethod
    def synthesize(
        self,
        features: np.ndarray,
        *,
        side: dict[str, np.ndarray] | None = None,
        phase: str = "default",
        n_samples: int | None = None,
        phase_config: PhaseConfig | None = None,
    ) -> np.ndarray:
        """Waveform [shape=(n_samples,)] float32 from features (analysed or decoded).

        Parameters
        ----------
        features : np.ndarray
            In this representation's layout.
        side : dict or None
            The clip's side information when the features come from a known clip; level
            defaults (``default_level``) and an estimated phase stand in for what is missing.
        phase : str
            A method of :mod:`models.representations.phase` ("default", "original", "gla",
            "pghi", "pghi+gla", "librosa").
        n_samples : int or None
            Output length; the analysed clip's length when known, else what the frames span.
        phase_config : PhaseConfig or None
        """

    def synthesize_batch(
        self,
        features: np.ndarray,
        *,
        sides: Sequence[dict[str, np.ndarray] | None] | None = None,
        phase: str = "default",
        n_samples: int | None = None,
        phase_config: PhaseConfig | None = None,
    ) -> np.ndarray:
        """:meth:`synthesize` of a batch [shape=(batch, *feature_shape)] -> [shape=(batch, n)].

        Every output has the same length: ``n_samples``, or the longest of the items.
        """
        sides = list(sides) if sides is not None else [None] * len(features)
        if len(sides) != len(features):
            raise ConfigError(f"{len(features)} feature arrays but {len(sides)} sides")
        outs = [
            self.synthesize(f, side=s, phase=phase, n_samples=n_samples, phase_config=phase_config)
            for f, s in zip(features, sides)
        ]
        return _stack_padded(outs, n_samples)

    def check_side(self, side: dict[str, np.ndarray] | None) -> None:
        """Refuse side information this representation does not read (instead of ignoring it).

        Raises
        ------
        ConfigError
            ``side`` holds a key outside :attr:`side_keys`.
        """
        extra = sorted(set(side or {}) - self.side_keys)
        if extra:
            takes = ", ".join(sorted(self.side_keys)) or "none"
            raise ConfigError(
                f"the {self.kind} representation takes no side information {', '.join(extra)} (it reads: {takes})"
            )

    def feature_levels(self) -> dict[str, Any] | None:
        """How feature values stand for levels, for metrics that read levels (harmonic peaks).

        ``{"kind": "db", "db_per_unit": top_db}`` for dB mapped linearly onto [0, 1],
        ``{"kind": "amplitude"}`` for linear magnitudes, None when the features are not levels
        (a waveform). The keywords are those of ``models.metrics``' harmonic measure.
        """
        return None

    @abstractmethod
    def feature_shape(self, n_samples: int) -> tuple[int, ...]:
        """Shape of ``analyze(y).features`` for a clip of ``n_samples`` samples."""

    def replace(self, **changes: Any) -> "Representation":
        """A copy with some parameters changed (checked)."""
        return type(self)(self._config, **changes)


def _stack_padded(outs: list[np.ndarray], n_samples: int | None) -> np.ndarray:
    n = n_samples if n_samples is not None else max((len(o) for o in outs), default=0)
    batch = np.zeros((len(outs), n), dtype=np.float32)
    for i, o in enumerate(outs):
        batch[i] = fit_length(o, n)
    return batch


def representation_from_dict(d: dict[str, Any]) -> Representation:
    """Build a representation from ``{"kind": ..., **parameters}`` (as ``to_dict`` writes it)."""
    if not isinstance(d, dict) or "kind" not in d:
        _ensure_loaded()
        raise ConfigError(f"a representation needs a 'kind' (one of {', '.join(sorted(REPRESENTATIONS))})")
    params = dict(d)
    cls = representation_class(params.pop("kind"))
    return cls(config_from_dict(cls.config_class, params))


def representation_class(kind: str) -> type[Representation]:
    """The class registered for ``kind`` (its class-level facts, e.g. ``time_first``, without building one).

    Raises
    ------
    ConfigError
        No representation of that kind.
    """
    _ensure_loaded()
    try:
        return REPRESENTATIONS[kind]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown representation kind {kind!r}; known: {', '.join(sorted(REPRESENTATIONS))}"
        ) from None


def validate_config_fields(cfg: Any) -> None:
    """Shared range checks for configs that carry an STFT geometry and a sample rate."""
    if cfg.sample_rate <= 0:
        raise ConfigError(f"sample_rate must be > 0, got {cfg.sample_rate}")
    for f in dataclasses.fields(cfg):
        if f.name in ("top_db", "default_level") and getattr(cfg, f.name) <= 0:
            raise ConfigError(f"{f.name} must be > 0, got {getattr(cfg, f.name)}")


def _ensure_loaded() -> None:
    # The concrete representations register themselves on import.
    import models.representations  # noqa: F401
