"""Everything a run needs before its first step: config, dataset, split, items, model, device.

Checks that can fail on user input (a bad ``--set`` key, a missing dataset, a run folder that
already holds another run) raise ConfigError / DatasetError here, before anything is written,
so the CLI exits 2 with a clear message and no half-made run folder.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.atomic import atomic_write_json
from models.config import config_from_dict, parse_override
from models.errors import ConfigError, DatasetError
from models.safe_json import load_json_file
from models.datasets.splits import Split, split_dataset
from trainer.config import RunConfig, TrainConfig, build_representation, resolve_config
from trainer.distributed import per_rank_batch
from trainer.data import (
    Items,
    build_items,
    class_names,
    clip_classes,
    clip_features,
    input_shape_for,
    item_mode,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
STATE_FILE = "training_state.pt"


@dataclass
class TrainOptions:
    """The ``train`` sub-command's arguments."""

    run_dir: Path
    preset: str | None = None
    data: str | None = None
    overrides: tuple[str, ...] = ()
    resume: bool = False
    events: bool = False
    device: str = "auto"
    seed: int | None = None
    max_steps: int | None = None
    epochs: int | None = None
    tiny: bool = False
    stdin_commands: bool = False
    cache_dir: str | None = None
    progress_bar: bool = False
    #: fine-tune: a checkpoint whose weights start a new run (``--init-from``)
    init_from: str | None = None
    #: with ``resume``: train again from step 0 when there is no state to resume from
    start_over: bool = False
    #: tracebacks of unexpected failures on stderr (``--debug``)
    debug: bool = False


@dataclass
class Prepared:
    """A run ready to train."""

    config: RunConfig
    dataset: Any
    representation: Any
    split: Split
    classes: list[str]
    mode: str
    train: Items
    val: Items
    model_config: dict[str, Any]
    resuming: bool


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else the CPU; asking for CUDA without one is an error."""
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but CUDA is not available; use --device cpu")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def load_or_resolve_config(opts: TrainOptions) -> tuple[RunConfig, bool]:
    """The run's config and whether it resumes an existing run folder."""
    path = opts.run_dir / CONFIG_FILE
    if path.exists():
        if not opts.resume and not opts.start_over:
            raise ConfigError(
                f"{opts.run_dir} already holds a run; pass --resume to continue it, "
                "or choose another --run-dir"
            )
        if not (opts.run_dir / STATE_FILE).exists() and not opts.start_over:
            raise ConfigError(
                f"{opts.run_dir} holds no training state ({STATE_FILE}) to resume from; pass "
                "--start-over to train this run again from step 0 (its checkpoints will be "
                "replaced), or choose another --run-dir"
            )
        saved = RunConfig.from_dict(load_json_file(path, what="run config", error=ConfigError))
        if opts.preset and opts.preset != saved.preset:
            raise ConfigError(f"{opts.run_dir} trains preset {saved.preset!r}, not {opts.preset!r}")
        return _apply_resume_overrides(saved, opts), True
    if opts.resume and not opts.start_over:
        raise ConfigError(f"{opts.run_dir} holds no run to resume; pass --start-over (with --preset "
                          "and --data) to start a new one there")
    if opts.init_from:
        return _config_from_checkpoint(opts), False
    if not opts.preset:
        raise ConfigError("--preset is required to start a run")
    if not opts.data:
        raise ConfigError("--data is required to start a run")
    cfg = resolve_config(opts.preset, list(opts.overrides), seed=opts.seed or 0,
                         data=str(Path(opts.data).resolve()), tiny=opts.tiny, epochs=opts.epochs)
    return cfg, False


def _config_from_checkpoint(opts: TrainOptions) -> RunConfig:
    # Fine-tuning keeps the checkpoint's model config and representation (whatever --tiny or
    # --set made them), so its weights load; only training keys may be set.
    from models.checkpoints.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(opts.init_from)
    preset = opts.preset or info.preset
    if not preset:
        raise ConfigError(f"{opts.init_from} names no preset; pass --preset")
    if not opts.data:
        raise ConfigError("--data is required to start a run")
    for text in opts.overrides:
        if not parse_override(text)[0].startswith("train."):
            raise ConfigError(f"--set {text}: with --init-from only train.* keys may change "
                              "(the model and representation come from the checkpoint)")
    cfg = resolve_config(preset, list(opts.overrides), seed=opts.seed or 0,
                         data=str(Path(opts.data).resolve()), epochs=opts.epochs)
    if cfg.model != info.model_name:
        raise ConfigError(f"{opts.init_from} holds a {info.model_name} model, preset {preset!r} "
                          f"trains {cfg.model}")
    return dataclasses.replace(cfg, model_config=dict(info.model_config),
                               representation=dict(info.representation),
                               init_from=str(Path(opts.init_from).resolve()))


def _apply_resume_overrides(saved: RunConfig, opts: TrainOptions) -> RunConfig:
    # On resume only training keys may change (e.g. more epochs); the model and its
    # representation are fixed by the weights already trained.
    train = dataclasses.asdict(saved.train)
    if opts.epochs is not None:  # before --set, so that train.epochs=N wins as on a new run
        train["epochs"] = opts.epochs
    for text in opts.overrides:
        key, value = parse_override(text)
        space, _, name = key.partition(".")
        if space != "train":
            current = saved.model_config.get(name) if space == "model" else saved.representation.get(name)
            if current != value:
                raise ConfigError(f"--set {key}: the model and representation of a run cannot change on resume")
            continue
        if name not in train or name == "extra":
            raise ConfigError(f"--set {key}: no training key {name!r}; valid: "
                              + ", ".join(f"train.{k}" for k in sorted(train) if k != "extra"))
        if name == "alternating" and value != train["alternating"]:
            raise ConfigError(f"--set {key}: alternating updates cannot be switched on resume "
                              "(the saved optimiser states would not fit)")
        train[name] = value
    if opts.seed is not None and opts.seed != saved.seed:
        raise ConfigError(f"this run was seeded with {saved.seed}; --seed cannot change on resume")
    data = str(Path(opts.data).resolve()) if opts.data else saved.data
    return dataclasses.replace(saved, train=config_from_dict(TrainConfig, train), data=data)


def open_data(path: str) -> Any:
    from models.datasets import open_dataset

    if not path or not Path(path).exists():
        raise DatasetError(f"dataset {path!r} not found: give --data an existing folder")
    dataset = open_dataset(path)
    if not dataset.clips:
        raise DatasetError(f"{path}: no usable audio clip"
                           + (f" ({len(dataset.rejected)} rejected)" if dataset.rejected else ""))
    return dataset


def prepare(opts: TrainOptions, *, rank: int = 0, world_size: int = 1) -> Prepared:
    """Resolve, check and load everything; writes config.json and split.json (rank 0).

    world_size : the processes of a ``torchrun`` launch, which share each batch
        (trainer/distributed.py): the batch size must be a multiple of it.
    """
    import models.nets.catalog  # noqa: F401  (registers every model)
    from models.nets.registry import MODEL_REGISTRY

    cfg, resuming = load_or_resolve_config(opts)
    per_rank_batch(cfg.train.batch_size, world_size)
    dataset = open_data(cfg.data)
    rep = build_representation(cfg.representation)
    model_cls = MODEL_REGISTRY[cfg.model]
    mode = item_mode(model_cls, rep.kind)

    split_path = opts.run_dir / SPLIT_FILE
    names = [c.name for c in dataset.clips]
    if resuming and split_path.exists():
        saved = load_json_file(split_path, what="run split", error=DatasetError)
        if not isinstance(saved, dict) or saved.get("clips") != names:
            raise DatasetError(f"{cfg.data} is not the dataset this run was split from "
                               f"(its clips differ from {split_path})")
        split = Split.from_dict(saved)
    else:
        split = split_dataset(dataset, fractions=cfg.train.split, seed=cfg.seed)
    if len(split.train) == 0:
        raise DatasetError(f"{cfg.data}: no clip left for training")

    log.info("computing features of %d clips (%s)", len(dataset.clips), rep.kind)
    feats = clip_features(dataset, rep, cache_dir=opts.cache_dir)
    classes = class_names(dataset)
    per_clip = clip_classes(dataset, classes)
    seq_len = int(cfg.model_config.get("input_shape", [0])[0]) if mode == "windows" else 0
    shape = input_shape_for(feats, split.train, mode=mode, seq_len=seq_len)
    model_config = {**cfg.model_config, "input_shape": list(shape)}
    fields = {f.name for f in dataclasses.fields(model_cls.config_class)}
    if "n_classes" in fields and classes and model_config.get("n_classes"):
        # the classifier is sized from the data; n_classes=0 (no classifier) is kept
        model_config["n_classes"] = len(classes)
    cfg = dataclasses.replace(cfg, model_config=model_config)

    common = dict(mode=mode, seq_len=seq_len, seq_hop=cfg.train.seq_hop,
                  clip_length=shape[-1] if mode == "clips" else None, rep_kind=rep.kind)
    train = build_items(feats, split.train, per_clip, drop_silent=cfg.train.drop_silent_frames, **common)
    val = build_items(feats, split.val, per_clip, drop_silent=False, **common)
    if len(train) == 0:
        raise DatasetError(f"{cfg.data}: the training clips hold no usable item (all silent?)")

    if rank == 0:
        opts.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(opts.run_dir / CONFIG_FILE, cfg.to_dict())
        if not split_path.exists():
            atomic_write_json(split_path, {
                **split.to_dict(),
                "seed": cfg.seed,
                "fractions": list(cfg.train.split),
                "group_key": dataset.group_key,
                "label": dataset.default_label,
                "clips": names,
                "dataset_fingerprint": dataset.fingerprint,
            })
    return Prepared(config=cfg, dataset=dataset, representation=rep, split=split, classes=classes,
                    mode=mode, train=train, val=val, model_config=model_config, resuming=resuming)


def as_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))
