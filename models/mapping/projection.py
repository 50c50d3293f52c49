"""From latent codes to a 2-D map and back, in openTSNE's shape.

``Projector(**params).fit(Z) -> Embedding``; ``embedding.points`` is the layout,
``embedding.transform(Z_new)`` places new codes on the existing map (a morph's decoded steps,
a newly encoded sound) and ``embedding.inverse(points)`` estimates the codes under 2-D positions,
which is what makes empty space on the map playable.

PCA is linear both ways. t-SNE has no inverse, so a position is mapped to the inverse-distance
weighted mean of the codes of its ``k`` nearest points on the map (the points the user sees
around the click); a click on a point gives that point's own code.

Stable maps (a retrained model): ``PCAProjector(align_to=old_points)`` rotates/flips the
new axes onto the old layout (orthogonal Procrustes), ``TSNEProjector(init=old_points)`` starts the
optimisation from the old layout.

A t-SNE shows something at once: its starting layout (the codes' PCA, scaled and jittered as
openTSNE's own "pca" initialisation, or the previous layout) is computed here in numpy, while
the child process already searches the neighbours, and handed to the callback as iteration 0;
openTSNE then starts from exactly that layout, on every core.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import cKDTree

from models.errors import ConfigError
from models.threads import cpu_count

#: ``callback(iteration, points)``; ``points`` is a copy of the partial layout [shape=(n, 2)]
PartialCallback = Callable[[int, np.ndarray], None]


def flatten_codes(Z: np.ndarray) -> np.ndarray:
    """Latent codes as a float64 matrix.

    Z : np.ndarray [shape=(n, *latent_shape)]
    returns : np.ndarray [shape=(n, prod(latent_shape))]
    """
    Z = np.asarray(Z)
    if Z.ndim == 1:
        Z = Z[None, :]
    return np.ascontiguousarray(Z.reshape(len(Z), -1), dtype=np.float64)


class Embedding:
    """A 2-D layout of ``n`` codes that can place new codes and invert positions.

    Attributes
    ----------
    points : np.ndarray [shape=(n, 2)]
    codes : np.ndarray [shape=(n, d)]
        The (flattened) codes that were projected, kept for ``inverse``.
    method : str
        ``"pca"`` or ``"tsne"``.
    """

    method = ""

    def __init__(self, points: np.ndarray, codes: np.ndarray) -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.codes = flatten_codes(codes)
        self._tree: cKDTree | None = None

    def __len__(self) -> int:
        return len(self.points)

    def transform(self, Z_new: np.ndarray) -> np.ndarray:
        """Place new codes on this map. Z_new [shape=(m, *latent_shape)] -> [shape=(m, 2)]."""
        raise NotImplementedError

    def inverse(self, points_2d: np.ndarray) -> np.ndarray:
        """Estimate the codes under 2-D positions. [shape=(m, 2)] -> [shape=(m, d)]."""
        raise NotImplementedError

    def nearest(self, points_2d: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Distances and indices of the ``k`` nearest map points (cKDTree, built once)."""
        if self._tree is None:
            self._tree = cKDTree(self.points)
        k = max(1, min(int(k), len(self.points)))
        d, i = self._tree.query(np.atleast_2d(points_2d), k=k)
        return np.asarray(d).reshape(-1, k), np.asarray(i).reshape(-1, k)

    def idw_inverse(self, points_2d: np.ndarray, *, k: int = 8, power: float = 2.0) -> np.ndarray:
        """Inverse-distance weighted mean of the ``k`` nearest points' codes.

        A position exactly on a point returns that point's code (no division by zero).
        """
        d, idx = self.nearest(points_2d, k=k)
        w = 1.0 / np.maximum(d, 1e-12) ** power
        exact = d[:, 0] < 1e-12
        w[exact] = 0.0
        w[exact, 0] = 1.0
        w /= w.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", w, self.codes[idx])


class PCAEmbedding(Embedding):
    """PCA layout; ``rotation`` [shape=(2, 2)] maps PCA scores onto the displayed axes."""

    method = "pca"

    def __init__(self, points, codes, *, mean, components, rotation) -> None:
        super().__init__(points, codes)
        self.mean = np.asarray(mean, dtype=np.float64)  # [shape=(d,)]
        self.components = np.asarray(components, dtype=np.float64)  # [shape=(2, d)]
        self.rotation = np.asarray(rotation, dtype=np.float64)

    def transform(self, Z_new: np.ndarray) -> np.ndarray:
        return (flatten_codes(Z_new) - self.mean) @ self.components.T @ self.rotation

    def inverse(self, points_2d: np.ndarray) -> np.ndarray:
        scores = np.atleast_2d(points_2d) @ self.rotation.T
        return scores @ self.components + self.mean


class TSNEEmbedding(Embedding):
    """t-SNE layout backed by an ``openTSNE.TSNEEmbedding`` (for ``transform``).

    A layout computed in a child process arrives as ``state`` (the child's pickled openTSNE
    embedding) and is unpickled on the first ``transform``, so a map that is only looked at
    never imports openTSNE in this process.
    """

    method = "tsne"

    def __init__(self, points, codes, *, tsne_embedding: Any = None, k: int = 8, state: bytes | None = None) -> None:
        super().__init__(points, codes)
        if tsne_embedding is None and state is None:
            raise ConfigError("a t-SNE embedding needs its openTSNE embedding or its state")
        self._tsne_obj = tsne_embedding
        self._state = state
        self.k = k

    @property
    def _tsne(self) -> Any:
        if self._tsne_obj is None:
            from models.mapping.tsne_job import loads_embedding

            self._tsne_obj = loads_embedding(self._state)  # type: ignore[arg-type]
            self._state = None
        return self._tsne_obj

    def transform(self, Z_new: np.ndarray) -> np.ndarray:
        return np.asarray(self._tsne.transform(flatten_codes(Z_new)), dtype=np.float64)

    def inverse(self, points_2d: np.ndarray) -> np.ndarray:
        return self.idw_inverse(points_2d, k=self.k)


class PCAProjector:
    """Two principal components of the codes.

    Parameters
    ----------
    align_to : np.ndarray | None [shape=(n, 2)]
        A previous layout of the same ``n`` items: the new axes are rotated/flipped onto it
        so a retrained model's map does not jump.
    """

    method = "pca"

    def __init__(self, *, align_to: np.ndarray | None = None) -> None:
        self.align_to = align_to

    def fit(self, Z: np.ndarray, **_: Any) -> PCAEmbedding:
        X = flatten_codes(Z)
        if len(X) < 1:
            raise ConfigError("PCA needs at least one code")
        mean = X.mean(axis=0)
        Xc = X - mean
        n, d = Xc.shape
        if n >= 10 * d and d <= 1000:
            # Many more codes than dimensions (a map's usual case): the d x d covariance's
            # eigenvectors, as sklearn's "covariance_eigh" solver does; ten times faster than
            # the n x d SVD at 10,000 codes, and what openTSNE's PCA initialisation computes.
            _, vecs = np.linalg.eigh(Xc.T @ Xc)
            vt = vecs[:, ::-1].T
        else:
            # components padded to two below when d or n is 1
            _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        comps = np.zeros((2, X.shape[1]))
        comps[: min(2, len(vt))] = vt[:2]
        # Sign convention (as sklearn's svd_flip): the largest loading of each axis is positive,
        # so the same data gives the same picture every time.
        for c in comps:
            if c.any() and c[np.argmax(np.abs(c))] < 0:
                c *= -1
        scores = Xc @ comps.T
        rotation = np.eye(2)
        if self.align_to is not None and len(self.align_to) == len(X):
            old = np.asarray(self.align_to, dtype=np.float64)
            rotation, _ = orthogonal_procrustes(scores - scores.mean(0), old - old.mean(0))
        return PCAEmbedding(scores @ rotation, X, mean=mean, components=comps, rotation=rotation)


def tsne_start(X: np.ndarray, *, init: np.ndarray | None = None, random_state: int = 0) -> np.ndarray:
    """The layout a t-SNE of X starts from [shape=(n, 2)], as openTSNE would make it.

    ``init`` (a previous layout of the same points) rescaled, or else the first two principal
    components, rescaled to a standard deviation of 1e-4 and jittered by 1% of it with
    ``RandomState(random_state)``: openTSNE's ``initialization.pca`` step for step, without
    importing openTSNE, so the caller can draw it before the work starts.

    X : np.ndarray [shape=(n, d)]
    """
    if init is not None:
        return _rescaled(np.array(init, dtype=np.float64))
    start = _rescaled(PCAProjector().fit(X).points)
    scale = float(np.std(start[:, 0])) * 0.01
    start += np.random.RandomState(random_state).normal(0.0, scale, start.shape)
    return np.ascontiguousarray(start)


def _rescaled(points: np.ndarray, target_std: float = 1e-4) -> np.ndarray:
    # openTSNE's initialization.rescale: a tiny start, so early exaggeration can reorganise it
    std = float(np.std(points[:, 0]))
    return points / (std / target_std) if std > 0 else points


class TSNEProjector:
    """openTSNE's t-SNE with partial layouts reported and a way to stop.

    Parameters
    ----------
    perplexity : float
        Clamped to ``(n - 1) / 3`` for small maps, which openTSNE requires.
    n_iter, early_exaggeration_iter : int
        Iterations of the two optimisation phases.
    init : np.ndarray | None [shape=(n, 2)]
        Start from a previous layout (rescaled as openTSNE recommends) instead of PCA.
    callbacks_every_iters : int
        How often ``callback`` sees the partial layout and ``should_stop`` is asked.
    n_jobs : int or None
        openTSNE's threads (neighbour search and gradients); this process's cores when None.
    isolate : bool | None
        Run openTSNE in a child process (:mod:`models.mapping.tsne_job`): its neighbour search holds
        the GIL for 100 ms at a time, which would freeze a GUI running this on a thread.
        Default: yes, unless ``LATENT_EXPLORER_TSNE_INLINE=1`` (profiling, benchmarks' baseline).
    """

    method = "tsne"

    def __init__(
        self,
        *,
        perplexity: float = 30.0,
        n_iter: int = 500,
        early_exaggeration_iter: int = 250,
        init: np.ndarray | None = None,
        callbacks_every_iters: int = 10,
        random_state: int = 0,
        n_jobs: int | None = None,
        k: int = 8,
        isolate: bool | None = None,
    ) -> None:
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.init = init
        self.callbacks_every_iters = callbacks_every_iters
        self.random_state = random_state
        self.n_jobs = cpu_count() if n_jobs is None else int(n_jobs)
        self.k = k
        self.isolate = (os.environ.get("LATENT_EXPLORER_TSNE_INLINE") != "1") if isolate is None else bool(isolate)

    def _perplexity(self, n: int) -> float:
        return float(max(1.0, min(self.perplexity, (n - 1) / 3.0)))

    def _job_params(self, X: np.ndarray) -> dict[str, Any]:
        return dict(perplexity=self._perplexity(len(X)), n_iter=self.n_iter,
                    early_exaggeration_iter=self.early_exaggeration_iter,
                    callbacks_every_iters=self.callbacks_every_iters, random_state=self.random_state,
                    n_jobs=self.n_jobs)

    def fit(
        self,
        Z: np.ndarray,
        *,
        callback: PartialCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TSNEEmbedding:
        """Optimise a layout; returns the layout reached when ``should_stop()`` said so.

        ``callback(0, start)`` comes first, before openTSNE is even started: the starting layout
        (:func:`tsne_start`), for the map to show while the neighbours are searched. With
        ``isolate`` (the default) the work runs in a child process and ``callback`` and
        ``should_stop`` are called in this thread as partial layouts arrive; a stop before the
        first iteration raises :class:`models.mapping.tsne_job.TSNEInterrupted`.
        """
        from models.mapping import tsne_job

        X = flatten_codes(Z)
        if len(X) < 4:
            raise ConfigError(f"t-SNE needs at least 4 points, got {len(X)}")
        params = self._job_params(X)
        previous = self.init if self.init is not None and len(self.init) == len(X) else None

        def start() -> np.ndarray:
            init = tsne_start(X, init=previous, random_state=self.random_state)
            if callback is not None:
                callback(0, init.copy())
            return init

        if self.isolate:
            # the child searches the neighbours while this thread makes (and shows) the start
            points, state = tsne_job.run_in_child("fit", {"X": X, **params, "init": tsne_job.FROM_PARENT},
                                                  on_partial=callback, should_stop=should_stop, start=start)
            return TSNEEmbedding(points, X, state=state, k=self.k)
        params["init"] = start()
        emb = tsne_job.tsne_fit(X, callback=callback, should_stop=should_stop, **params)
        return TSNEEmbedding(np.asarray(emb, dtype=np.float64), X, tsne_embedding=emb, k=self.k)

    def restore(self, Z: np.ndarray, points: np.ndarray) -> TSNEEmbedding:
        """Rebuild a saved layout without optimising (a session reopened as it was).

        Only the affinities are recomputed (in the child with ``isolate``), so ``transform``
        works on the restored map.
        """
        from models.mapping import tsne_job

        X = flatten_codes(Z)
        P = np.asarray(points, dtype=np.float64)
        if P.shape != (len(X), 2):
            raise ConfigError(f"saved layout has shape {P.shape}, expected ({len(X)}, 2)")
        params = dict(perplexity=self._perplexity(len(X)), random_state=self.random_state, n_jobs=self.n_jobs)
        if self.isolate:
            _, state = tsne_job.run_in_child("restore", {"X": X, "points": P, **params})
            return TSNEEmbedding(P, X, state=state, k=self.k)
        emb = tsne_job.tsne_restore(X, P, **params)
        return TSNEEmbedding(P, X, tsne_embedding=emb, k=self.k)
