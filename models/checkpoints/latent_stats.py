"""Statistics of a model's latent codes over its training set, kept inside the checkpoint.

The explorer needs them without re-encoding a dataset: the mean and spread to draw sliders
and sample sensible codes, and a PCA basis of the codes to place a new code on a 2-D map (and
to go back from the map to a code) as RAVE keeps its latent PCA beside the weights.

Numpy only (no torch): the checkpoint module turns the arrays into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import ConfigError

#: names of the arrays a LatentStats is stored as (inside the checkpoint, prefixed)
ARRAY_FIELDS = ("mean", "std", "components", "explained_variance", "explained_variance_ratio")


@dataclass(frozen=True, kw_only=True, eq=False)
class LatentStats:
    """Mean, spread and principal axes of latent codes, flattened to ``D = prod(latent_shape)``.

    Attributes
    ----------
    latent_shape : tuple[int, ...]
        Shape of one code as the model gives it (``D`` is its product).
    n_codes : int
        How many codes the statistics were computed from.
    mean : np.ndarray [shape=(D,), dtype=float32]
    std : np.ndarray [shape=(D,), dtype=float32]
        Per-unit standard deviation (population, ``ddof=0``).
    components : np.ndarray [shape=(K, D), dtype=float32]
        Principal axes as rows, by decreasing variance; ``K = min(n_codes, D, max_components)``.
    explained_variance : np.ndarray [shape=(K,), dtype=float32]
        Variance of the codes along each axis (``ddof=1``, as scikit-learn).
    explained_variance_ratio : np.ndarray [shape=(K,), dtype=float32]
        The same as a fraction of the total variance (sums to 1 when all axes are kept).
    """

    latent_shape: tuple[int, ...]
    n_codes: int
    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray

    def __post_init__(self) -> None:
        dim = int(np.prod(self.latent_shape))
        k = self.components.shape[0] if self.components.ndim == 2 else -1
        expected = {
            "mean": (dim,),
            "std": (dim,),
            "components": (k, dim),
            "explained_variance": (k,),
            "explained_variance_ratio": (k,),
        }
        for name, shape in expected.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != shape or k < 1:
                got = getattr(arr, "shape", type(arr).__name__)
                raise ConfigError(f"LatentStats.{name}: expected shape {shape}, got {got}")

    @property
    def dim(self) -> int:
        """``D``, the number of latent units."""
        return int(np.prod(self.latent_shape))

    def transform(self, codes: np.ndarray, *, n_components: int = 2) -> np.ndarray:
        """Project codes onto the first principal axes.

        codes : np.ndarray [shape=(N, *latent_shape) or (N, D)]
        returns : np.ndarray [shape=(N, n_components), dtype=float32]
        """
        flat = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        basis = self.components[:n_components].astype(np.float64)
        return ((flat - self.mean) @ basis.T).astype(np.float32)

    def inverse_transform(self, coords: np.ndarray) -> np.ndarray:
        """Back from PCA coordinates to codes (the mean plus the weighted axes).

        coords : np.ndarray [shape=(N, k)], k <= K
        returns : np.ndarray [shape=(N, *latent_shape), dtype=float32]
        """
        coords = np.asarray(coords, dtype=np.float64)
        basis = self.components[: coords.shape[1]].astype(np.float64)
        flat = self.mean + coords @ basis
        return flat.reshape(len(coords), *self.latent_shape).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The array fields, float32 and contiguous (what the checkpoint stores)."""
        return {name: np.ascontiguousarray(getattr(self, name), dtype=np.float32) for name in ARRAY_FIELDS}

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], *, latent_shape: tuple[int, ...], n_codes: int
    ) -> LatentStats:
        """Inverse of :meth:`to_arrays`; raises ConfigError on missing arrays or wrong shapes."""
        missing = [name for name in ARRAY_FIELDS if name not in arrays]
        if missing:
            raise ConfigError(f"latent statistics lack {', '.join(missing)}")
        return cls(
            latent_shape=tuple(int(s) for s in latent_shape),
            n_codes=int(n_codes),
            **{name: np.asarray(arrays[name], dtype=np.float32) for name in ARRAY_FIELDS},
        )


#: principal axes kept by default: plenty for a 2-D map and an XY pad, and it bounds the size of
#: a checkpoint (a full basis of Natsiou's 8192-unit latent would add 268 MB to every save)
MAX_COMPONENTS = 64


def latent_statistics(codes: np.ndarray, *, max_components: int | None = MAX_COMPONENTS) -> LatentStats:
    """Mean, std and PCA of latent codes (e.g. the means of the training set's codes).

    Parameters
    ----------
    codes : np.ndarray [shape=(N, *latent_shape)], N >= 2
        One code per item; computed in float64, stored in float32.
    max_components : int or None
        Most principal axes kept; None keeps all ``min(N, D)``. When fewer than all are kept the
        axes come from scikit-learn's randomized SVD (seeded: deterministic), which costs
        ``O(N D K)`` instead of a full SVD's ``O(N D min(N, D))``; the explained-variance ratios
        stay fractions of the total variance of all axes.

    Returns
    -------
    LatentStats
        ``K = min(N, D, max_components)`` principal axes, signs made deterministic by scikit-learn.

    Raises
    ------
    ConfigError
        Fewer than two codes, or non-finite values.
    """
    codes = np.asarray(codes)
    if codes.ndim < 2 or codes.shape[0] < 2:
        raise ConfigError(f"latent_statistics needs at least 2 codes of shape (N, ...), got {codes.shape}")
    flat = codes.reshape(codes.shape[0], -1).astype(np.float64)
    if not np.isfinite(flat).all():
        raise ConfigError("latent_statistics: codes contain NaN or infinite values")
    if max_components is not None and max_components < 1:
        raise ConfigError(f"latent_statistics: max_components must be >= 1, got {max_components}")
    full = min(flat.shape)
    k = full if max_components is None else min(full, max_components)
    # scikit-learn rather than a bare SVD: it fixes the sign of each axis, so the same codes give
    # the same map on every machine.
    from sklearn.decomposition import PCA  # here, not at import: loading a checkpoint needs no sklearn

    solver = {"svd_solver": "full"} if k == full else {"svd_solver": "randomized", "random_state": 0}
    pca = PCA(n_components=k, **solver).fit(flat)
    ratio = pca.explained_variance_ratio_
    if not np.isfinite(ratio).all():  # all codes identical: no direction explains anything
        ratio = np.zeros_like(ratio)
    return LatentStats(
        latent_shape=tuple(int(s) for s in codes.shape[1:]),
        n_codes=int(codes.shape[0]),
        mean=flat.mean(axis=0).astype(np.float32),
        std=flat.std(axis=0).astype(np.float32),
        components=pca.components_.astype(np.float32),
        explained_variance=pca.explained_variance_.astype(np.float32),
        explained_variance_ratio=ratio.astype(np.float32),
    )
