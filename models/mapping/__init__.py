"""From codes to the 2-D map and back: PCA, t-SNE (in a child process) and their inverses."""
