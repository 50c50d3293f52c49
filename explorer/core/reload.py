"""Hot reload: swap in a retrained model without the map jumping. No Qt here.

When a run writes a new ``best`` checkpoint, :func:`reload_task` (run on a worker) loads it,
re-encodes the dataset and re-projects the codes starting from the layout the user is looking
at: t-SNE initialised from the current points, PCA rotated onto the old axes (Procrustes). The
GUI thread then commits everything at once with :func:`commit_reload`, so a failure anywhere
leaves the previous model, encoding and map exactly as they were; the selection (an index into
the map's points, which follow the dataset's clips) survives, and plays with the new model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.controller import Controller, LoadedModel, check_fit
from models.inference.engine import Encoding
from models.errors import DatasetError
from models.events import CheckpointWritten, Event
from models.mapping.projection import Embedding, PCAProjector, TSNEProjector


@dataclass
class Reloaded:
    """What a reload produced, to be committed on the GUI thread."""

    model: LoadedModel
    encoding: Encoding
    embedding: Embedding
    old_points: np.ndarray
    #: mean on-screen displacement of the points (see :func:`map_displacement`), or None
    displacement: float | None
    #: the dataset it was encoded on: a reload that finishes after another dataset was opened is dropped
    dataset: Any = None


def is_best_checkpoint(ev: Event) -> bool:
    """A hot reload is offered for every new ``best`` checkpoint."""
    return isinstance(ev, CheckpointWritten) and ev.kind == "best"


def run_model_key(checkpoint_path: str | Path) -> str:
    """The key of a run's model in the app: its ``best`` checkpoint path, so reloads replace it."""
    return str(Path(checkpoint_path).resolve())


def map_codes_of(enc: Encoding, point_mode: str) -> np.ndarray:
    """The codes the map shows for ``enc`` (mirrors :meth:`Controller.map_codes`) [shape=(n, d)]."""
    if point_mode == "frame" and enc.has_time:
        return enc.frame_codes
    return enc.clip_codes[np.flatnonzero(enc.ok)]


def map_displacement(old: np.ndarray, new: np.ndarray) -> float:
    """Mean distance a point moves on screen, as a fraction of the map's size.

    Each layout is centred on its bounding box and divided by the box's diagonal first,
    because the map view fits its range to the points: that is what the user sees move.

    Parameters
    ----------
    old, new : np.ndarray [shape=(n, 2)]
    """
    old, new = np.asarray(old, float), np.asarray(new, float)
    if old.shape != new.shape or len(old) == 0:
        raise DatasetError(f"layouts differ in shape: {old.shape} and {new.shape}")

    def norm(p: np.ndarray) -> np.ndarray:
        lo, hi = p.min(0), p.max(0)
        return (p - (lo + hi) / 2) / max(float(np.linalg.norm(hi - lo)), 1e-12)

    return float(np.linalg.norm(norm(new) - norm(old), axis=1).mean())


def stable_projection(codes: np.ndarray, method: str, old_points: np.ndarray | None, *,
                      tsne_params: dict[str, Any] | None = None,
                      should_stop: Callable[[], bool] | None = None) -> Embedding:
    """Project ``codes`` [shape=(n, d)] so that the result stays close to ``old_points`` [shape=(n, 2)].

    A layout of another length (a clip that failed to encode) cannot guide the new one; the
    projectors then start afresh.
    """
    init = old_points if old_points is not None and len(old_points) == len(codes) else None
    if method == "tsne":
        return TSNEProjector(init=init, **(tsne_params or {})).fit(codes, should_stop=should_stop)
    return PCAProjector(align_to=init).fit(codes)


def reload_task(controller: Controller, path: str, *, loader: Callable[[str], LoadedModel],
                key: str, label: str | None = None) -> Callable[[Any], Reloaded | None]:
    """A worker task: load ``path``, encode the dataset, project stably. Commits nothing.

    ``key`` names the model in the app (:func:`run_model_key`); the current map layout,
    method and point mode are captured now, on the GUI thread.
    """
    c = controller
    if c.dataset is None:
        raise DatasetError("open a dataset first: a new model is shown on its map")
    old_points = np.array(c.points, dtype=np.float64) if len(c.points) else None
    method, point_mode, tsne_params = c.method, c.point_mode, dict(c.tsne_params)
    dataset = c.dataset

    def task(state: Any) -> Reloaded | None:
        state.report(0.0, f"loading {Path(path).name}")
        loaded = loader(path)
        lm = replace(loaded, key=key, label=label or loaded.label)
        check_fit(lm, dataset)
        enc = c.encode_task(lm, dataset=dataset)(state)
        if enc is None or state.should_stop():
            return None
        codes = map_codes_of(enc, point_mode)
        if len(codes) == 0:
            raise DatasetError("the new model encoded no sound of this dataset")
        state.report(0.9, "projecting")
        emb = stable_projection(codes, method, old_points, tsne_params=tsne_params, should_stop=state.should_stop)
        moved = map_displacement(old_points, emb.points) if old_points is not None and len(old_points) == len(emb.points) else None
        return Reloaded(model=lm, encoding=enc, embedding=emb, old_points=old_points, displacement=moved,
                        dataset=dataset)

    return task


def commit_reload(controller: Controller, r: Reloaded) -> bool:
    """Put a finished reload into the controller (GUI thread); returns whether the selection was kept.

    The model replaces the one with the same key (or is added) and becomes current; the map's
    points correspond one to one when their count did not change, so the selection stays
    (:meth:`Controller.replace_model`, which announces all of it).
    """
    if r.dataset is not None and r.dataset is not controller.dataset:
        raise DatasetError("the retrained model was encoded on the dataset open before; reload it again")
    return controller.replace_model(r.model, r.encoding, r.embedding)
