"""Leave-one-out 1-nearest-neighbour accuracy of labels in latent space (Lionello, section 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from models.errors import ConfigError
from models.metrics._arrays import as_float_array

__all__ = ["KNN1Result", "knn1", "knn1_accuracy"]


@dataclass(frozen=True)
class KNN1Result:
    """Per-item results of leave-one-out 1-NN classification."""

    accuracy: float
    neighbour: np.ndarray  # [shape=(n,)] index of each item's nearest other item
    predicted: np.ndarray  # [shape=(n,)] that neighbour's label
    correct: np.ndarray  # [shape=(n,)] bool
    per_class: dict  # label -> accuracy over the items of that label


def knn1(z, labels, *, metric: str = "euclidean") -> KNN1Result:
    """Leave-one-out 1-NN: each item is labelled as its nearest *other* item.

    Parameters
    ----------
    z : array-like [shape=(n, latent_dim)]
        Latent codes (the encoder's mean for a VAE).
    labels : array-like [shape=(n,)]
        Any hashable labels.
    metric : str
        scikit-learn metric name.

    Returns
    -------
    KNN1Result
        Uses ``sklearn.neighbors.NearestNeighbors.kneighbors()`` without a query, which excludes
        each point from its own neighbours (also when it has exact duplicates, which do count as
        neighbours). Which of several equidistant neighbours wins is scikit-learn's choice.
    """
    Z = as_float_array(z, name="z")
    y = np.asarray(labels)
    if Z.ndim != 2:
        raise ConfigError(f"z must have shape (n, latent_dim), got {Z.shape}")
    if y.shape != (Z.shape[0],):
        raise ConfigError(f"labels must have shape ({Z.shape[0]},), got {y.shape}")
    if Z.shape[0] < 2:
        raise ConfigError("1-NN needs at least two items")
    nn = NearestNeighbors(n_neighbors=1, metric=metric).fit(Z)
    idx = nn.kneighbors(return_distance=False)[:, 0]
    predicted = y[idx]
    correct = predicted == y
    per_class = {
        (lab.item() if hasattr(lab, "item") else lab): float(correct[y == lab].mean())
        for lab in np.unique(y)
    }
    return KNN1Result(float(correct.mean()), idx, predicted, correct, per_class)


def knn1_accuracy(z, labels, *, metric: str = "euclidean") -> float:
    """Leave-one-out 1-NN accuracy (see ``knn1``), in [0, 1]."""
    return knn1(z, labels, metric=metric).accuracy
