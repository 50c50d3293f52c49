"""The resolved configuration of a run: preset + ``--set`` overrides, saved as ``config.json``.

Three namespaces can be overridden from the command line:

* ``model.<key>``: a field of the model's config dataclass (``model.latent_dim=8``);
* ``rep.<key>``: a parameter of the representation (``rep.hop_length=256``);
* ``train.<key>``: a field of :class:`TrainConfig` (``train.lr=1e-4``).

Values are JSON when they parse as JSON (``[512, 64]``, ``true``, ``1e-4``), else strings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from models.config import config_from_dict, config_to_dict, parse_override
from models.errors import ConfigError

#: ``config.json`` layout version (bump with a migration when its shape changes)
CONFIG_SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings; a preset's ``training`` dict fills these, ``--set train.k=v`` overrides.

    Adam throughout (all four papers use it). ``epochs`` bounds the run; early stopping ends it
    after ``patience`` validations without improvement (Natsiou uses 10; 0 disables it).
    """

    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 100
    patience: int = 10
    #: minimum decrease of the validation loss that counts as an improvement
    min_delta: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    #: clip the global gradient norm to this (0 disables)
    grad_clip: float = 1.0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    #: cosine schedule floor, as a fraction of ``lr``
    min_lr_ratio: float = 0.1
    #: frame models: drop all-zero frames from training (Colonel's preprocessing)
    drop_silent_frames: bool = True
    #: sequence models: hop between training windows, in frames (0: the window length)
    seq_hop: int = 0
    #: emit a progress event every this many steps (and at the end of each epoch)
    log_every: int = 10
    #: validate every this many epochs
    eval_every: int = 1
    #: mixed precision on CUDA (ignored on the CPU)
    amp: bool = True
    #: the latent statistics saved with a checkpoint use at most this many training items
    stats_max_items: int = 20000
    #: fractions of train / validation / test for the grouped split
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    #: Lionello's alternating updates: every step, one Adam (``lr``) on the VAE objective over
    #: the encoder and decoder, then a second Adam (``lr_classifier``) on the weighted
    #: classification term over the classifier and the encoder (models with a bottleneck
    #: classifier only; see docs/trainer.md)
    alternating: bool = False
    #: learning rate of the classification update when ``alternating`` (same schedule as ``lr``)
    lr_classifier: float = 1e-3
    #: the validation loss term that picks ``best`` and drives early stopping ("loss": the
    #: total minimised; Lionello's presets: "vae", i.e. reconstruction + KL without the
    #: cross-entropy, which bottoms out early and would pick an early epoch)
    select_on: str = "loss"
    #: any other keys a preset's ``training`` dict may carry for its model (kept, unused here)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = {"lr": self.lr, "lr_classifier": self.lr_classifier, "batch_size": self.batch_size,
                    "epochs": self.epochs, "log_every": self.log_every, "eval_every": self.eval_every}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"train.{name} must be positive, got {value}")
        for name in ("patience", "warmup_steps", "seq_hop", "grad_clip", "weight_decay", "min_delta"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must not be negative, got {getattr(self, name)}")
        if not self.select_on:
            raise ConfigError("train.select_on must name a validation loss term, e.g. loss")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a run needs to be rebuilt: written to ``config.json``."""

    preset: str
    model: str
    model_config: dict[str, Any]
    representation: dict[str, Any]
    train: TrainConfig
    seed: int = 0
    data: str = ""
    tiny: bool = False
    overrides: tuple[str, ...] = ()
    #: the checkpoint whose weights started this run (fine-tuning), or ""
    init_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = config_to_dict(self)
        return {"schema_version": CONFIG_SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        data = dict(data)
        version = data.pop("schema_version", None)
        if version != CONFIG_SCHEMA_VERSION:
            raise ConfigError(
                f"config.json has schema version {version!r}; this trainer reads version "
                f"{CONFIG_SCHEMA_VERSION}. Start a new run directory."
            )
        return config_from_dict(cls, data)


def train_config_from_preset(training: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from a preset's ``training`` dict; unknown keys go to ``extra``."""
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    base = {k: v for k, v in training.items() if k in known}
    extra = {k: v for k, v in training.items() if k not in known}
    return config_from_dict(TrainConfig, {**base, "extra": extra})


def resolve_config(
    preset: Any,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    seed: int = 0,
    data: str = "",
    tiny: bool = False,
    epochs: int | None = None,
) -> RunConfig:
    """Apply ``--tiny`` and ``--set`` overrides to a :class:`~models.nets.registry.Preset`.

    Model keys are checked against the model's config dataclass here; representation keys
    are checked when the representation is built (:func:`build_representation`).

    Raises
    ------
    ConfigError
        A malformed override, an unknown namespace or key, or a wrongly typed value; the
        message lists the valid keys.
    """
    from models.nets.registry import MODEL_REGISTRY, get_preset

    if isinstance(preset, str):
        preset = get_preset(preset)
    model_cfg = dict(preset.model_config)
    rep = dict(preset.representation)
    if tiny:
        model_cfg.update(preset.tiny_model)
        rep.update(preset.tiny_representation)
    train = dict(preset.training)
    if epochs is not None:
        train["epochs"] = epochs
    model_cls = MODEL_REGISTRY[preset.model]
    model_keys = {f.name for f in dataclasses.fields(model_cls.config_class)}
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    for text in overrides:
        key, value = parse_override(text)
        space, _, name = key.partition(".")
        if space == "model":
            if name not in model_keys:
                raise ConfigError(
                    f"--set {key}: {preset.model} has no key {name!r}; valid model keys: "
                    + ", ".join(f"model.{k}" for k in sorted(model_keys))
                )
            model_cfg[name] = value
        elif space == "train":
            if name not in train_keys:
                raise ConfigError(
                    f"--set {key}: no training key {name!r}; valid training keys: "
                    + ", ".join(f"train.{k}" for k in sorted(train_keys))
                )
            train[name] = value
        elif space == "rep":
            if not name or name == "kind":
                raise ConfigError(f"--set {key}: give a representation parameter, e.g. rep.hop_length=256")
            rep[name] = value
        else:
            raise ConfigError(
                f"--set {key}: keys start with model., train. or rep. (e.g. model.latent_dim=8, "
                "train.lr=1e-4, rep.hop_length=256)"
            )
    # Check model keys and types now (input_shape is filled in from the data later).
    config_from_dict(model_cls.config_class, model_cfg)
    return RunConfig(
        preset=preset.name,
        model=preset.model,
        model_config=model_cfg,
        representation=rep,
        train=train_config_from_preset(train),
        seed=seed,
        data=data,
        tiny=tiny,
        overrides=tuple(overrides),
    )


def build_representation(rep: dict[str, Any]) -> Any:
    """The representation object of a run; unknown parameters raise ConfigError listing valid ones."""
    from models.representations import representation_from_dict

    try:
        return representation_from_dict(dict(rep))
    except ConfigError as exc:
        raise ConfigError(f"representation ({rep.get('kind')}): {exc}") from None
