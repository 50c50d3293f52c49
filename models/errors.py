"""One family of exceptions, so callers (CLI, GUI) can show a clear message for any of ours."""


class LatentExplorerError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(LatentExplorerError, ValueError):
    """A configuration or argument is invalid (unknown key, wrong type, out of range)."""


class AudioLoadError(LatentExplorerError):
    """An audio file could not be read or is not usable (empty, truncated, NaN, ...)."""


class DatasetError(LatentExplorerError):
    """A dataset folder is missing, malformed, or holds no usable clip."""


class CheckpointError(LatentExplorerError):
    """A checkpoint is missing, corrupt, tampered with, from an unknown schema, or unsafe."""
