"""nn~ models (RAVE and other TorchScript exports) in the explorer: the trust question and loading (no Qt).

The window asks :func:`untrusted` which of the files the user is opening need a yes first, shows
:func:`trust_question` for each, calls :func:`trust_file` on a yes, and then loads them like
checkpoints (:func:`load_nn_loaded_model`, through :func:`explorer.core.records.load_model`). A
file the user said no to is never loaded; a file the app exported itself is already trusted.
"""

from __future__ import annotations

from pathlib import Path

from models.nntilde.model import TS_SUFFIXES, load_nn_model
from models.nntilde.trust import TrustStore, default_store

__all__ = ["is_nn_model_path", "load_nn_loaded_model", "trust_file", "trust_question", "untrusted"]


def is_nn_model_path(path: str | Path) -> bool:
    """A TorchScript file (``.ts``), opened as an nn~ model."""
    return Path(path).suffix.lower() in TS_SUFFIXES


def untrusted(paths: list[str], *, store: TrustStore | None = None) -> list[str]:
    """The nn~ files among ``paths`` whose content the user has not trusted yet."""
    store = store or default_store()
    return [p for p in paths if is_nn_model_path(p) and Path(p).is_file() and not store.is_trusted(p)]


def trust_question(path: str | Path) -> str:
    """What the window asks before opening a TorchScript file the app did not export."""
    return (
        f"{Path(path).name} is a TorchScript model (an nn~ or RAVE export). TorchScript is a program: "
        "opening it runs code written by whoever made the file, with your permissions.\n\n"
        "Open it only if you trust where it comes from. Your answer is remembered for this exact file "
        "(by its SHA-256); a changed file asks again."
    )


def trust_file(path: str | Path, *, store: TrustStore | None = None) -> str:
    """Remember that the user trusts this file; returns its SHA-256."""
    return (store or default_store()).trust(path, source="user")


def load_nn_loaded_model(path: str | Path, *, trust: bool = False, store: TrustStore | None = None):  # noqa: ANN201
    """An nn~ file as a :class:`explorer.core.records.LoadedModel` (slow: run it on a worker).

    Raises ``UntrustedModelError`` unless ``trust`` or the file's hash is trusted.
    """
    from explorer.core.records import LoadedModel

    nm, model, rep = load_nn_model(path, trust=trust, store=store)
    who = "latent-explorer export" if nm.ours else "nn~"
    label = f"{Path(path).stem} ({who}, {nm.latent_size} latents, ratio {nm.ratio}, {nm.sample_rate} Hz)"
    return LoadedModel(key=str(Path(path).resolve()), label=label, model=model, representation=rep)
