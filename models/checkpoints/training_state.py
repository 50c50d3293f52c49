"""Training state for resuming (optimizer, RNG, step): the one place that uses torch.save.

Kept apart from checkpoints, which never unpickle: this state is written by our own trainer
next to its run, and read back with ``torch.load(weights_only=True)`` only, whose restricted
unpickler builds tensors and plain containers and refuses everything else.
"""

from __future__ import annotations

import os
import pickle  # only for the exception type torch.load raises; nothing is unpickled here
import zipfile
from pathlib import Path
from typing import Any

import torch

from models.atomic import atomic_open
from models.errors import CheckpointError

__all__ = ["load_training_state", "save_training_state"]


def save_training_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write resume state (optimizer state dict, RNG states, step...) with torch.save.

    Keep ``state`` to tensors, numbers, strings and plain containers, so that
    :func:`load_training_state` can read it back with ``weights_only=True``: e.g.
    ``torch.get_rng_state()`` (a tensor), ``np.random.default_rng().bit_generator.state``
    (a dict of ints) and ``random.getstate()`` (a tuple of ints) all qualify.
    """
    path = Path(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"training state must be a dict, got {type(state).__name__}")
    try:
        with atomic_open(path, "wb") as f:
            torch.save(state, f)
    except OSError as exc:
        from models.atomic import WriteError

        raise WriteError.of(exc, path, kept=f"the previous {path.name}, if any, is unchanged") from exc
    return path


def load_training_state(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read what :func:`save_training_state` wrote, with ``torch.load(weights_only=True)`` only.

    The restricted unpickler of ``weights_only=True`` builds tensors and plain containers and
    refuses everything else, so a tampered file raises CheckpointError instead of running code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a training state this version can read safely ({first})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: training state is a {type(state).__name__}, expected a dict")
    return state

