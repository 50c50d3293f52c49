"""Export one of our checkpoints as an nn~ model: latents in, audio out (no Qt).

The file is a scripted module laid out as ``nn_tilde.Module`` and RAVE's export write theirs,
so nn~ (Max, Pd) and this app's own loader (:mod:`models.nntilde.model`) open it:

* ``encode(x [shape=(batch, 1, n)]) -> z [shape=(batch, latent, n // ratio)]``
* ``decode(z [shape=(batch, latent, t)]) -> y [shape=(batch, 1, t * ratio)]``
* ``forward(x) = decode(encode(x))``
* buffers ``encode_params``, ``decode_params``, ``forward_params`` (``[in_channels, in_ratio,
  out_channels, out_ratio]``), ``get_methods()``, ``get_sample_rate()``, attributes ``sr``,
  ``latent_size``, ``full_latent_size`` and ``<method>_input_labels`` / ``_output_labels``.

What ``decode`` does depends on the representation:

* ``stft_frames`` (Colonel, Roche's frame models): one latent step is one STFT frame (``ratio =
  hop_length``); the decoded frames are scaled to ``default_level`` (a decoded frame has no
  level of its own), given a phase by ``gla_iters`` fast Griffin-Lim iterations (momentum 0.99,
  as the app's ``"gla"``) from a fixed pseudo-random start, and inverse-STFT'd, all in torch.
  ``encode`` takes the magnitude STFT and scales each frame as the trainer did.
* ``waveform`` (Lionello's models): one latent step is one clip of ``n_samples`` samples
  (``ratio = n_samples``), decoded as it is.

Other representations (log-mel patches) and sequence models are refused with the reason. Each
block nn~ hands to ``decode`` is reconstructed on its own (Griffin-Lim has no state across
blocks): use a buffer of several frames.

The metadata JSON is written beside the file and embedded in it (extra file
``latent_explorer.json``); the exported file's hash goes into the user's trust store, so the app
opens its own exports without asking.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List

import librosa
import numpy as np
import torch
from torch import nn

import models
from models.atomic import atomic_write_bytes, atomic_write_json
from models.checkpoints.checkpoint import Checkpoint, load_checkpoint
from models.checkpoints.export import DecoderModule, ExportError, _quiet_export_warnings
from models.checkpoints.format import file_sha256
from models.inference import layout as item_layout
from models.nntilde.model import EMBEDDED_KEY
from models.nntilde.trust import TrustStore, default_store
from models.representations import StftFrames, Waveform, representation_from_dict

__all__ = ["NN_SUFFIX", "NNExportResult", "export_nn_tilde", "spectral_convergence"]

NN_SUFFIX = ".nn.ts"
NN_EXPORT_SCHEMA_VERSION = 1
#: Griffin-Lim iterations inside the exported graph (the app's "gla" default)
DEFAULT_GLA_ITERS = 32
_CHECK_STEPS = 48


class _Latent(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.latent(x)


class _NNBase(nn.Module):
    """What nn~ reads of every exported module; subclasses define encode and decode."""

    def __init__(self, *, encoder: nn.Module, decoder: nn.Module, sr: int, latent: int, ratio: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.sr = int(sr)
        self.latent_size = int(latent)
        self.full_latent_size = int(latent)
        self.ratio = int(ratio)
        self.methods = ["encode", "decode", "forward"]
        self.register_buffer("encode_params", torch.tensor([1, 1, latent, ratio]))
        self.register_buffer("decode_params", torch.tensor([latent, ratio, 1, 1]))
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.encode_input_labels = ["(signal) audio in"]
        self.encode_output_labels = [f"(signal) latent {i}" for i in range(latent)]
        self.decode_input_labels = [f"(signal) latent {i}" for i in range(latent)]
        self.decode_output_labels = ["(signal) audio out"]
        self.forward_input_labels = ["(signal) audio in"]
        self.forward_output_labels = ["(signal) audio out"]

    @torch.jit.export
    def get_methods(self) -> List[str]:  # noqa: UP006
        return self.methods

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return self.sr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class _FramesExport(_NNBase):
    """stft_frames: latent steps are STFT frames; decode = model.decode + Griffin-Lim + inverse STFT."""

    def __init__(self, *, window: np.ndarray, n_fft: int, hop: int, log: bool, top_db: float, per_frame: bool,
                 frame_max: float, gla_iters: int, momentum: float = 0.99, **kw: Any) -> None:
        super().__init__(ratio=hop, **kw)
        self.register_buffer("window", torch.as_tensor(window, dtype=torch.float32))
        self.n_fft, self.hop = int(n_fft), int(hop)
        self.n_bins = int(n_fft) // 2 + 1
        self.log, self.top_db, self.per_frame = bool(log), float(top_db), bool(per_frame)
        self.frame_max, self.gla_iters, self.beta = float(frame_max), int(gla_iters), float(momentum / (1 + momentum))

    def _stft(self, y: torch.Tensor) -> torch.Tensor:
        return torch.stft(y, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)

    def _istft(self, S: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(S, self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window, center=True,
                           length=length)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1] // self.hop
        mag = self._stft(x.mean(dim=1)).abs()[:, :, :t]  # (b, bins, t)
        if self.per_frame:
            peak = mag.amax(dim=1, keepdim=True)
        else:
            peak = mag.amax(dim=(1, 2), keepdim=True).expand(b, 1, t)
        rel = torch.where(peak > 1e-10, mag / peak.clamp_min(1e-10), torch.zeros_like(mag))
        if self.log:
            rel = (1.0 + 20.0 * torch.log10(rel.clamp_min(1e-12)) / self.top_db).clamp(0.0, 1.0)
        z = self.encoder(rel.permute(0, 2, 1).reshape(b * t, self.n_bins))
        return z.reshape(b, t, -1).permute(0, 2, 1)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[0], z.shape[-1]
        f = self.decoder(z.permute(0, 2, 1).reshape(b * t, z.shape[1])).reshape(b, t, self.n_bins).clamp_min(0.0)
        if self.log:
            f = torch.where(f > 0, torch.pow(10.0, (f.clamp_max(1.0) - 1.0) * self.top_db / 20.0), torch.zeros_like(f))
        mag = (f * self.frame_max).permute(0, 2, 1)
        mag = torch.cat([mag, mag[:, :, -1:]], dim=2)  # t + 1 centred frames span exactly t * hop samples
        n = t * self.hop
        # a fixed, pseudo-random start (no generator state in the graph): same input, same samples
        k = torch.arange(mag.shape[1] * mag.shape[2], dtype=torch.float32).reshape(1, mag.shape[1], mag.shape[2])
        start = torch.frac(torch.sin(k * 12.9898 + 78.233) * 43758.5453) * 6.283185307179586
        c = torch.polar(mag, start.expand(b, -1, -1))
        prev = torch.zeros_like(c)
        for i in range(self.gla_iters):
            rebuilt = self._stft(self._istft(c, n))
            est = rebuilt if i == 0 else rebuilt - self.beta * prev
            prev = rebuilt
            c = est * (mag / est.abs().clamp_min(1e-12))
        return self._istft(c, n).unsqueeze(1)


class _WaveformExport(_NNBase):
    """waveform: a latent step is one clip of ``ratio`` samples, decoded as it is."""

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1] // self.ratio
        z = self.encoder(x.mean(dim=1)[:, : t * self.ratio].reshape(b * t, self.ratio))
        return z.reshape(b, t, -1).permute(0, 2, 1)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[0], z.shape[-1]
        y = self.decoder(z.permute(0, 2, 1).reshape(b * t, z.shape[1]))
        return y.reshape(b, 1, t * self.ratio)


@dataclass(frozen=True, kw_only=True)
class NNExportResult:
    """path : the ``.nn.ts``; max_abs_error : file vs the eager module (decode, encode);
    spectral_convergence : the file's decode vs the app's own decode of the same codes ("gla")."""

    path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    max_abs_error: dict[str, float]
    spectral_convergence: float


def spectral_convergence(y: np.ndarray, ref: np.ndarray, *, n_fft: int = 1024, hop_length: int = 256) -> float:
    """|| |STFT y| - |STFT ref| ||_F / || |STFT ref| ||_F (0: same magnitudes, phase aside)."""
    n = min(len(y), len(ref))
    a = np.abs(librosa.stft(np.asarray(y[:n], np.float32), n_fft=n_fft, hop_length=hop_length))
    b = np.abs(librosa.stft(np.asarray(ref[:n], np.float32), n_fft=n_fft, hop_length=hop_length))
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def export_nn_tilde(checkpoint_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                    gla_iters: int = DEFAULT_GLA_ITERS, atol: float = 1e-4,
                    store: TrustStore | None = None) -> NNExportResult:
    """Write ``<stem>.nn.ts`` (audio-out nn~ model) and ``<stem>.nn.json`` into ``out_dir``.

    Raises
    ------
    ExportError
        The representation or model has no audio-out export, scripting failed, or the written
        file does not reproduce the module it was scripted from (the file is removed).
    """
    checkpoint_path = Path(checkpoint_path)
    ck = load_checkpoint(checkpoint_path, device="cpu")
    rep = representation_from_dict(dict(ck.representation))
    module = _build(ck, rep, gla_iters)
    out_dir = Path(out_dir)
    stem = checkpoint_path.name.removesuffix(".safetensors")
    path, meta_path = out_dir / f"{stem}{NN_SUFFIX}", out_dir / f"{stem}.nn.json"
    meta = _metadata(ck, rep, checkpoint_path, module, gla_iters)

    z = _check_codes(ck, module.latent_size)
    x = torch.from_numpy(_check_audio(rep.sample_rate, module.ratio))
    with torch.no_grad():
        want_y, want_z = module.decode(z), module.encode(x)
    with _quiet_export_warnings():
        try:
            scripted = torch.jit.script(module)
            buf = io.BytesIO()
            torch.jit.save(scripted, buf, _extra_files={EMBEDDED_KEY: json.dumps(meta)})
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ExportError(f"scripting the nn~ module failed: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    with _quiet_export_warnings():
        loaded = torch.jit.load(str(path), map_location="cpu")  # our own file, just written
    with torch.no_grad():
        got_y, got_z = loaded.decode(z), loaded.encode(x)
    errors = {"decode": _err(got_y, want_y), "encode": _err(got_z, want_z)}
    if not max(errors.values()) <= atol:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"the nn~ export of {stem} does not reproduce its module (max |error| {errors}, atol {atol:g})"
        )
    sc = _versus_app(ck, rep, module, z, got_y[0, 0].numpy())
    meta["files"] = {"nn_tilde": {"file": path.name, "sha256": file_sha256(path), "max_abs_error": errors}}
    meta["spectral_convergence_vs_app"] = sc
    atomic_write_json(meta_path, meta)
    (store or default_store()).trust(path, source="export")
    return NNExportResult(path=path, metadata_path=meta_path, metadata=meta, max_abs_error=errors,
                          spectral_convergence=sc)


def _err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.shape == b.shape else float("inf")


def _build(ck: Checkpoint, rep: Any, gla_iters: int) -> _NNBase:
    model, kind = ck.model.eval(), rep.kind
    latent_shape = tuple(model.latent_shape)
    layout = item_layout.layout_for(model, rep)
    # the graph inverts exactly these two representations (STFT frames, raw waveform)
    frames = isinstance(rep, StftFrames) and layout == item_layout.FRAMES
    if not (frames or (isinstance(rep, Waveform) and layout == item_layout.CLIPS)):
        raise ExportError(
            "an audio-out nn~ export exists for frame models of stft_frames and for waveform models; this is a "
            f"{kind} model taking {layout} (`latent-trainer export --formats torchscript` exports its decoder)"
        )
    if len(latent_shape) != 1:
        raise ExportError(f"nn~ export needs a flat latent (latent_dim,), this model's is {latent_shape}")
    d, shape = latent_shape[0], tuple(model.input_shape)
    with _quiet_export_warnings(), torch.no_grad():
        try:
            enc = torch.jit.trace(_Latent(model), (torch.rand(2, *shape),), check_trace=False)
            dec = torch.jit.trace(DecoderModule(model), (torch.randn(2, d),), check_trace=False)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ExportError(f"tracing the model for nn~ failed: {exc}") from exc
    common = {"encoder": enc, "decoder": dec, "sr": rep.sample_rate, "latent": d}
    if frames:
        p, c = rep.stft_params, rep.config
        return _FramesExport(window=p.window_array(), n_fft=p.n_fft, hop=p.hop_length, log=c.magnitude == "log",
                             top_db=float(c.top_db), per_frame=c.normalize == "frame",
                             frame_max=rep.default_frame_max(), gla_iters=int(gla_iters), **common)
    return _WaveformExport(ratio=int(shape[-1]), **common)


def _check_codes(ck: Checkpoint, d: int) -> torch.Tensor:
    """(1, d, _CHECK_STEPS) codes where the training codes lie, varying slowly in time."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
    stats = ck.latent_stats
    mean = torch.zeros(d) if stats is None else torch.from_numpy(stats.mean.reshape(-1)).float()
    std = torch.ones(d) if stats is None else torch.from_numpy(stats.std.reshape(-1)).float()
    u = torch.linspace(0, 1, _CHECK_STEPS)
    codes = mean[:, None] + std[:, None] * ((1 - u) * a[:, None] + u * b[:, None])
    return codes[None]


def _check_audio(sr: int, ratio: int) -> np.ndarray:
    t = np.arange(_CHECK_STEPS * ratio) / sr
    return (0.3 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)[None, None]


def _versus_app(ck: Checkpoint, rep: Any, module: _NNBase, z: torch.Tensor, y: np.ndarray) -> float:
    """The export's decode against the app's decode of the same codes (features, then ``"gla"``).

    The app's :func:`~models.inference.decode.decode_to_sound` also scales a sound that peaks over
    full scale down for the speakers; that gain depends on the phase found, so it is left out here.
    """
    from models.inference.decode import decode_features

    codes = z[0].T.numpy().astype(np.float64)  # (t, d)
    latent_shape = tuple(ck.model.latent_shape)
    if rep.kind == "waveform":
        shape = tuple(rep.feature_shape(module.ratio))
        ref = np.concatenate([rep.synthesize(decode_features(ck.model, rep, c[None], latent_shape=latent_shape,
                                                             feature_shape=shape), n_samples=module.ratio)
                              for c in codes])
        return spectral_convergence(y, ref, n_fft=256, hop_length=64)
    n = len(y)
    codes = np.concatenate([codes, codes[-1:]])  # the frame the export repeats to span t * hop samples
    feats = decode_features(ck.model, rep, codes, latent_shape=latent_shape, feature_shape=tuple(rep.feature_shape(n)))
    ref = rep.synthesize(feats, phase="gla", n_samples=n)
    if not np.isfinite(ref).all():
        return float("inf")
    return spectral_convergence(y, ref, n_fft=rep.stft_params.n_fft, hop_length=rep.stft_params.hop_length)


def _metadata(ck: Checkpoint, rep: Any, path: Path, module: _NNBase, gla_iters: int) -> dict[str, Any]:
    info = ck.info
    methods = {
        m: {"params": [int(v) for v in getattr(module, f"{m}_params").tolist()],
            "input_labels": list(getattr(module, f"{m}_input_labels")),
            "output_labels": list(getattr(module, f"{m}_output_labels"))}
        for m in module.methods
    }
    stats = ck.latent_stats
    return {
        "format": "latent-explorer-nn-tilde",
        "schema_version": NN_EXPORT_SCHEMA_VERSION,
        "model_name": info.model_name,
        "preset": info.preset,
        "representation": info.representation,
        "sample_rate": int(rep.sample_rate),
        "latent_size": int(module.latent_size),
        "ratio": int(module.ratio),
        "methods": methods,
        "phase": f"{gla_iters} fast Griffin-Lim iterations in the graph" if isinstance(rep, StftFrames) else "none",
        "level": ("decoded frames play at default_level (a sinusoid of amplitude "
                  f"{rep.config.default_level})") if isinstance(rep, StftFrames) else "as decoded",
        "latent_stats": None if stats is None else {"mean": stats.mean.tolist(), "std": stats.std.tolist()},
        "source_checkpoint": {"file": path.name, "sha256": file_sha256(path)},
        "package_version": models.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
