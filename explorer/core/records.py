"""What the controller holds about a model, a pick and a sound: plain records (no Qt).

:class:`explorer.core.controller.Controller` keeps them and announces their changes; they carry
no behaviour of their own beyond :func:`load_model`, which makes a :class:`LoadedModel` from a
checkpoint file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.core import nn_models
from explorer.core.training_runs import checkpoint_label
from models.checkpoints.checkpoint import load_checkpoint
from models.inference.engine import Sound
from models.representations import representation_from_dict

if TYPE_CHECKING:  # type names only
    from models.checkpoints.checkpoint import Checkpoint
    from models.morphing.trajectory import Trajectory
    from models.nets.base import LatentModel
    from models.representations.base import Representation


@dataclass
class LoadedModel:
    """A model ready to encode and decode, with the representation it was trained on."""

    key: str
    label: str
    model: LatentModel
    representation: Representation
    checkpoint: Checkpoint | None = None


@dataclass
class Selection:
    """What the user last picked: a map point (index into the map's points) or a position."""

    kind: str  # "point" | "position"
    index: int | None = None
    xy: tuple[float, float] | None = None


@dataclass
class Decoded:
    """The sound panel's sounds: a decoding, the original it came from (if any), their scores.

    ``morph_step`` is the trajectory of a morph step picked in the path panel, so an export of
    "the selected sound" writes that step (None for a decoding of the selection).
    """

    original: Sound | None
    decoded: Sound
    metrics: dict[str, float | str] = field(default_factory=dict)
    morph_step: Trajectory | None = None


def load_model(path: str | Path, *, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint and build its representation (slow: run it on a worker).

    A ``.ts`` file is an nn~ model: it opens only once trusted (``explorer.core.nn_models``).
    """
    if nn_models.is_nn_model_path(path):
        return nn_models.load_nn_loaded_model(path)
    ckpt = load_checkpoint(path, device=device)
    rep = representation_from_dict(dict(ckpt.representation))
    label = checkpoint_label(path, model_name=ckpt.info.model_name, rep_kind=rep.kind, training=ckpt.training)
    return LoadedModel(key=str(Path(path).resolve()), label=label, model=ckpt.model, representation=rep, checkpoint=ckpt)
