"""Open an nn~ model (a RAVE export, any ``nn_tilde.Module``) and use it like one of ours (no Qt).

An nn~ model is a TorchScript module whose methods take and return ``(batch, channels, time)``
tensors; for each method ``m`` a buffer ``m_params = [in_channels, in_ratio, out_channels,
out_ratio]`` tells the host how many channels go in and out and how many audio samples one
step of each stands for (``nn_tilde.Module.register_method``). RAVE registers

* ``encode``: audio ``(1, n_channels, n)`` -> latents ``(1, latent_size, n / ratio)``
* ``decode``: latents ``(1, latent_size, t)`` -> audio ``(1, n_channels, t * ratio)``
* ``forward``: audio -> audio (``decode(encode(x))``)

and keeps its rate in ``sr`` (``get_sample_rate()`` in newer nn~ modules, a ``sampling_rate``
buffer in older RAVE exports).

The app meets such a model with two small pieces, so that encoding, the map, clicks, morphs and
exports go through the app's one encode and decode path unchanged:

* :class:`~models.representations.nn_frames.NNFrames`, a representation that cuts audio at the model's rate into hops of
  ``ratio`` samples: features ``(n_frames, ratio)``, time first, like STFT frames. A clip of
  ``n`` samples becomes ``ceil(n / ratio)`` items, and so ``n / ratio`` codes over time, its
  trajectory, as for our frame models.
* :class:`NNTildeModel`, a :class:`LatentModel` whose ``encode`` lays a batch of hops end to end
  and calls the module's ``encode`` once, and whose ``decode`` does the same with ``decode``:
  the module sees a continuous signal with its context, not isolated hops. It sets
  ``decodes_in_time`` so that a held code is repeated over the clip *before* decoding
  (:func:`models.inference.decode.decode_features`) instead of one decoded hop being looped.

Why an adapter rather than a branch in the decode path: the decode path already turns a
trajectory of frame codes into a clip and a clip's length into a number of frames; an nn~
model is exactly a frame model whose frames are audio, so nothing downstream needs to know.

Nothing here opens a file the user did not trust (:mod:`models.nntilde.trust`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from models.errors import CheckpointError
from models.nets.base import LatentCode, LatentModel
from models.nntilde.trust import TrustStore, UntrustedModelError, default_store
from models.representations.nn_frames import MAX_FRAME, NNFrames

__all__ = ["EMBEDDED_KEY", "NNFrames", "NNModel", "NNModelError", "NNTildeModel", "REQUIRED_METHODS",
           "TS_SUFFIXES", "load_nn_model", "open_nn_model"]

#: suffixes of TorchScript files nn~ loads
TS_SUFFIXES = (".ts",)
#: methods the app calls; ``forward`` is read when present
REQUIRED_METHODS = ("encode", "decode")
#: name of our metadata JSON inside archives we export (as in models.checkpoints.export)
EMBEDDED_KEY = "latent_explorer.json"
_MAX_RATIO = MAX_FRAME
_MAX_LATENT = 4096
_PROBE_STEPS = 4


class NNModelError(CheckpointError):
    """A file is not an nn~ model the app can use; the message names what is missing."""


# --- the model adapter ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class NNTildeConfig:
    """input_shape : ``(ratio,)``; latent_dim : the ``encode`` method's output channels."""

    input_shape: tuple[int, ...] = (2048,)
    latent_dim: int = 8
    in_channels: int = 1
    out_channels: int = 1


class NNTildeModel(LatentModel):
    """An nn~ module as a frame model of :class:`NNFrames` items (see the module docstring).

    RAVE's variational ``encode`` samples and its ``decode`` fills unused latent dimensions with
    noise; both run under a fixed seed, so a click, a morph step and an export of the same codes
    are the same samples.
    """

    name = "nn_tilde"
    config_class = NNTildeConfig
    consumes = "nn_frames"
    decodes_in_time: ClassVar[bool] = True
    trainable = False

    def __init__(self, config: NNTildeConfig, module: torch.nn.Module) -> None:
        super().__init__(config)
        self.module = module

    @property
    def ratio(self) -> int:
        return int(self.config.input_shape[0])

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (int(self.config.latent_dim),)

    def encode(self, x: torch.Tensor) -> LatentCode:
        """x [shape=(n, ratio)] consecutive hops -> codes [shape=(n, latent_dim)]."""
        n = x.shape[0]
        audio = x.reshape(1, 1, -1).float().expand(1, self.config.in_channels, n * self.ratio).contiguous()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            z = self.module.encode(audio)
        z = _fit_time(z[0], n)  # (latent, n)
        return LatentCode(mean=z.T.contiguous())

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [shape=(n, latent_dim)] consecutive codes -> hops [shape=(n, ratio)]."""
        n = z.shape[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            y = self.module.decode(z.float().T.reshape(1, -1, n).contiguous())
        y = _fit_time(y[0].mean(dim=0, keepdim=True), n * self.ratio)
        return y.reshape(n, self.ratio)


def _fit_time(a: torch.Tensor, n: int) -> torch.Tensor:
    """[shape=(c, t)] cut or zero-padded to t = n."""
    if a.shape[-1] >= n:
        return a[..., :n]
    return torch.nn.functional.pad(a, (0, n - a.shape[-1]))


# --- opening a file ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class NNModel:
    """What an opened nn~ file holds.

    methods : the methods nn~ would list (``get_methods()``, else those with a ``_params`` buffer).
    params : method -> ``(in_channels, in_ratio, out_channels, out_ratio)``.
    metadata : our embedded JSON when this app exported the file, else None.
    """

    path: Path
    sha256: str
    module: Any
    methods: tuple[str, ...]
    params: dict[str, tuple[int, int, int, int]]
    sample_rate: int
    latent_size: int
    ratio: int
    full_latent_size: int | None = None
    metadata: dict[str, Any] | None = None
    trusted_by: str = "user"
    labels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        """Written by this app's nn~ exporter (the embedded metadata says so)."""
        return bool(self.metadata) and self.metadata.get("format") == "latent-explorer-nn-tilde"

    def representation(self) -> NNFrames:
        return NNFrames(sample_rate=self.sample_rate, frame=self.ratio)

    def latent_model(self) -> NNTildeModel:
        enc, dec = self.params["encode"], self.params["decode"]
        cfg = NNTildeConfig(input_shape=(self.ratio,), latent_dim=self.latent_size, in_channels=enc[0],
                            out_channels=dec[2])
        return NNTildeModel(cfg, self.module).eval()


def open_nn_model(path: str | os.PathLike, *, trust: bool = False, store: TrustStore | None = None) -> NNModel:
    """Open an nn~ TorchScript file after the trust check, and read its interface.

    Parameters
    ----------
    trust : the user has just agreed to run this file (its hash is then remembered); otherwise
        the file must already be in the trust store (trusted before, or exported by this app).
    store : the trust store; the user's (:func:`models.nntilde.trust.default_store`) when None.

    Raises
    ------
    UntrustedModelError
        Neither ``trust`` nor a trusted hash: nothing of the file was run.
    NNModelError
        Not a TorchScript archive, or not an nn~ model (the message names what is missing).
    """
    path = Path(path)
    store = store or default_store()
    if not path.is_file():
        raise NNModelError(f"{path} does not exist")
    # read once: the bytes hashed and judged are the bytes torch runs (no swap in between)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    source = store.source_of(digest)
    if source is None and not trust:
        raise UntrustedModelError(
            f"{path.name} is a TorchScript file: a program that runs when opened. Open it only if you trust "
            "where it comes from; the app asks once and remembers the file by its SHA-256."
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise NNModelError(f"{path.name} is not a TorchScript archive (nn~ models are saved by torch.jit.save)")
    if source is None:
        store.trust(path, source="user", sha256=digest)
        source = "user"
    extra = {EMBEDDED_KEY: ""}
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; nn~ models are nothing else
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
            module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError) as exc:
        raise NNModelError(f"{path.name} is not a TorchScript module torch can load: {exc}") from None
    module.eval()
    meta = _embedded(extra[EMBEDDED_KEY])
    return _inspect(module, path=path, sha256=digest, metadata=meta, trusted_by=source)


def load_nn_model(path: str | os.PathLike, *, trust: bool = False,
                  store: TrustStore | None = None) -> tuple[NNModel, NNTildeModel, NNFrames]:
    """:func:`open_nn_model`, plus the model and representation the app encodes and decodes with."""
    nm = open_nn_model(path, trust=trust, store=store)
    return nm, nm.latent_model(), nm.representation()


def _embedded(text: str | bytes) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _int_attr(module: Any, name: str) -> int | None:
    v = getattr(module, name, None)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return int(v.item())
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    return None


def _sample_rate(module: Any) -> int | None:
    if hasattr(module, "get_sample_rate"):
        try:
            sr = int(module.get_sample_rate())
        except RuntimeError:
            sr = -1
        if sr > 0:
            return sr
    for name in ("sr", "sampling_rate"):
        sr = _int_attr(module, name)
        if sr is not None and sr > 0:
            return sr
    return None


def _inspect(module: Any, *, path: Path, sha256: str, metadata: dict[str, Any] | None, trusted_by: str) -> NNModel:
    missing = [f"no `{m}` method" for m in REQUIRED_METHODS if not hasattr(module, m)]
    missing += [f"no `{m}_params` buffer" for m in REQUIRED_METHODS
                if hasattr(module, m) and not isinstance(getattr(module, f"{m}_params", None), torch.Tensor)]
    sr = _sample_rate(module)
    if sr is None:
        missing.append("no sample rate (`sr`, `sampling_rate` or `get_sample_rate()`)")
    if missing:
        raise NNModelError(f"{path.name} is not an nn~ model the app can use: {'; '.join(missing)}")
    if hasattr(module, "get_methods"):
        methods = tuple(str(m) for m in module.get_methods())
    else:
        methods = tuple(m for m in ("encode", "decode", "forward") if hasattr(module, f"{m}_params"))
    params: dict[str, tuple[int, int, int, int]] = {}
    for m in dict.fromkeys((*REQUIRED_METHODS, *methods)):
        buf = getattr(module, f"{m}_params", None)
        if isinstance(buf, torch.Tensor):
            if buf.numel() != 4 or min(int(v) for v in buf.reshape(-1)) < 1:
                raise NNModelError(f"{path.name}: `{m}_params` must be 4 positive integers "
                                   f"[in_channels, in_ratio, out_channels, out_ratio], got {buf.tolist()}")
            params[m] = tuple(int(v) for v in buf.reshape(-1))  # type: ignore[assignment]
    enc, dec = params["encode"], params["decode"]
    ratio, latent = enc[3] // enc[1], enc[2]
    problems = []
    if dec[0] != latent:
        problems.append(f"`encode` gives {latent} latent channels but `decode` takes {dec[0]}")
    if dec[1] // dec[3] != ratio:
        problems.append(f"`encode` has ratio {ratio} but `decode` {dec[1] // dec[3]}")
    if not 1 <= ratio <= _MAX_RATIO or not 1 <= latent <= _MAX_LATENT:
        problems.append(f"ratio {ratio} or latent size {latent} out of range")
    if problems:
        raise NNModelError(f"{path.name} is not an nn~ model the app can use: {'; '.join(problems)}")
    _probe(module, path, enc, dec, ratio)
    labels = {m: [str(s) for s in getattr(module, f"{m}_output_labels", [])] for m in params
              if isinstance(getattr(module, f"{m}_output_labels", None), (list, tuple))}
    return NNModel(path=path, sha256=sha256, module=module, methods=methods, params=params, sample_rate=sr,
                   latent_size=latent, ratio=ratio, full_latent_size=_int_attr(module, "full_latent_size"),
                   metadata=metadata, trusted_by=trusted_by, labels=labels)


def _probe(module: Any, path: Path, enc: tuple[int, ...], dec: tuple[int, ...], ratio: int) -> None:
    """Call encode and decode once on silence, as nn~'s register_method tests them."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            z = module.encode(torch.zeros(1, enc[0], _PROBE_STEPS * ratio))
            y = module.decode(torch.zeros(1, dec[0], _PROBE_STEPS))
        except RuntimeError as exc:
            raise NNModelError(f"{path.name}: calling `encode`/`decode` on silence failed: {exc}") from None
    want_z, want_y = (1, enc[2], _PROBE_STEPS), (1, dec[2], _PROBE_STEPS * ratio)
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != want_z:
        raise NNModelError(f"{path.name}: `encode` of {tuple((1, enc[0], _PROBE_STEPS * ratio))} gave "
                           f"{tuple(getattr(z, 'shape', ()))}, expected {want_z}")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != want_y:
        raise NNModelError(f"{path.name}: `decode` of {(1, dec[0], _PROBE_STEPS)} gave "
                           f"{tuple(getattr(y, 'shape', ()))}, expected {want_y}")
