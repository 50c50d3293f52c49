"""Domain code of latent-explorer: audio, representations, networks, datasets, metrics.

Nothing in this package imports Qt; the explorer and the trainer both build on it.
"""

__version__ = "0.1.0"
