"""Size limits for numbers read from files: checked before anything is allocated from them.

A checkpoint, render spec or session is data from anywhere. The sizes it carries (an FFT
length, a clip length, a layer width) decide how much memory building a representation or a
model takes, so each is checked here against a limit far above any real use and far below what
would exhaust a machine: ``n_fft = 2**31`` is refused as a message, not met as a 16 GiB window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import ConfigError, LatentExplorerError

__all__ = ["MAX_SAMPLES", "check_count", "check_representation", "check_shape", "check_sizes"]

#: ten minutes at 384 kHz: the longest sound anything here decodes or renders
MAX_SAMPLES = 384_000 * 600
#: largest integer of a model config (layer widths, channels, kernel sizes, steps)
MAX_CONFIG_INT = 1 << 20
#: longest list in a model config (layers, channels per layer)
MAX_CONFIG_LIST = 4096
#: most elements of one latent code or one model input
MAX_ELEMENTS = 1 << 26

#: representation parameter -> (lowest, highest) accepted value
REPRESENTATION_LIMITS: dict[str, tuple[int, int]] = {
    "sample_rate": (1000, 384_000),
    "n_fft": (16, 1 << 16),
    "hop_length": (1, 1 << 16),
    "win_length": (1, 1 << 16),
    "n_mels": (1, 2048),
    "n_frames": (1, 1 << 20),
    "frame_multiple": (1, 1 << 12),
    "n_samples": (1, MAX_SAMPLES),
    "silence_block": (1, 1 << 20),
}


def check_count(value: Any, name: str, *, lo: int = 0, hi: int, where: str = "",
                error: type[LatentExplorerError] = ConfigError) -> int:
    """``value`` as an int in ``[lo, hi]``, else ``error`` naming ``name`` and the bounds."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and lo <= value <= hi:
            return int(value)
        raise error(f"{prefix}{name} must be an integer, got {value!r:.60}")
    if not lo <= value <= hi:
        raise error(f"{prefix}{name} = {value} is out of range (from {lo} to {hi})")
    return value


def check_shape(shape: Any, name: str, *, where: str = "", max_elements: int = MAX_ELEMENTS,
                error: type[LatentExplorerError] = ConfigError) -> tuple[int, ...]:
    """A list of positive ints whose product is at most ``max_elements``."""
    prefix = f"{where}: " if where else ""
    if not isinstance(shape, Sequence) or isinstance(shape, str) or not 1 <= len(shape) <= 8:
        raise error(f"{prefix}{name} must be a list of 1 to 8 sizes, got {shape!r:.60}")
    dims = tuple(check_count(s, f"{name}[{i}]", lo=1, hi=max_elements, where=where, error=error)
                 for i, s in enumerate(shape))
    if math.prod(dims) > max_elements:
        raise error(f"{prefix}{name} {list(dims)} holds {math.prod(dims)} elements; at most {max_elements}")
    return dims


def check_representation(d: Any, *, where: str = "", error: type[LatentExplorerError] = ConfigError) -> None:
    """Every size of a representation dict (``{"kind": ..., **params}``) within its limit.

    Only the sizes are checked here; the representation's own config checks the rest when it
    is built. The FFT window is also bounded by ``n_fft`` (``win_length``, ``hop_length``).
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(d, Mapping) or not isinstance(d.get("kind"), str):
        raise error(f"{prefix}representation must be an object with a 'kind'")
    for key, (lo, hi) in REPRESENTATION_LIMITS.items():
        if d.get(key) is not None:
            check_count(d[key], f"representation.{key}", lo=lo, hi=hi, where=where, error=error)
    n_fft = d.get("n_fft")
    for key in ("win_length", "hop_length"):
        if isinstance(n_fft, int) and isinstance(d.get(key), int) and d[key] > n_fft:
            raise error(f"{prefix}representation.{key} = {d[key]} exceeds n_fft = {n_fft}")


def check_sizes(obj: Any, name: str, *, where: str = "", max_int: int = MAX_CONFIG_INT,
                max_len: int = MAX_CONFIG_LIST, error: type[LatentExplorerError] = ConfigError) -> None:
    """Every integer in a (JSON) tree at most ``max_int`` in size, every list at most ``max_len`` long."""
    prefix = f"{where}: " if where else ""
    stack: list[tuple[str, Any]] = [(name, obj)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
            continue
        if isinstance(value, int):
            if abs(value) > max_int:
                raise error(f"{prefix}{key} = {value} is larger than {max_int}")
        elif isinstance(value, Mapping):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            if len(value) > max_len:
                raise error(f"{prefix}{key} holds {len(value)} items; at most {max_len}")
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
