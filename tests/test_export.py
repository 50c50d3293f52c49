"""Exported decoders (TorchScript, ONNX) reproduce model.decode and describe themselves."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

from models.checkpoints.checkpoint import save_checkpoint
from models.checkpoints.format import file_sha256
from models.checkpoints.export import EMBEDDED_KEY, ExportError, export_decoder
from models.checkpoints.latent_stats import latent_statistics
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import PRESETS, build_model, register_model

# torch.jit.load is deprecated upstream; consumers of our files still call it.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")


@dataclass(frozen=True, kw_only=True)
class TinyVAEConfig:
    input_shape: tuple[int, ...] = (6, 10)
    latent_dim: int = 4


@register_model
class TinyVAE(LatentModel):
    """A variational model whose output is 2-D per item, like a log-mel patch."""

    name = "_test_export_tiny_vae"
    config_class = TinyVAEConfig
    consumes = "logmel"
    variational = True

    def __init__(self, config: TinyVAEConfig) -> None:
        super().__init__(config)
        n = int(np.prod(config.input_shape))
        self.enc = nn.Linear(n, 2 * config.latent_dim)
        self.dec = nn.Sequential(nn.Linear(config.latent_dim, 16), nn.Tanh(), nn.Linear(16, n), nn.Sigmoid())

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        mean, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return LatentCode(mean=mean, logvar=logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z).reshape(z.shape[0], *self.config.input_shape)


@register_model
class BranchyAE(TinyVAE):
    """Decodes with Python control flow on the batch size, which tracing silently freezes."""

    name = "_test_export_branchy"
    variational = False

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = super().decode(z)
        return out if int(z.shape[0]) == 2 else 1 - out


REP = {"kind": "logmel", "sample_rate": 8000, "n_fft": 64, "hop_length": 16, "n_mels": 6, "n_frames": 10}


def _checkpoint(tmp_path, cls=TinyVAE, *, stats=True):
    torch.manual_seed(0)
    model = cls(TinyVAEConfig()).eval()
    latent_stats = None
    if stats:
        with torch.no_grad():
            latent_stats = latent_statistics(model.latent(torch.rand(16, 6, 10)).numpy())
    path = save_checkpoint(
        tmp_path / "tiny.safetensors",
        model,
        preset="tiny",
        representation=REP,
        dataset_fingerprint="fp",
        labels={"field": "digit", "names": ["0", "1"]},
        latent_stats=latent_stats,
    )
    return model, path


def test_exported_decoders_match_model_decode(tmp_path):
    model, path = _checkpoint(tmp_path)
    result = export_decoder(path, tmp_path / "export")
    assert set(result.files) == {"torchscript", "onnx"}
    assert all(err < 1e-5 for err in result.max_abs_error.values())
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(7))  # batch size never seen
    with torch.no_grad():
        expected = model.decode(z)

    extra = {EMBEDDED_KEY: ""}
    scripted = torch.jit.load(str(result.files["torchscript"]), _extra_files=extra)
    torch.testing.assert_close(scripted(z), expected, rtol=0, atol=1e-6)
    session = onnxruntime.InferenceSession(str(result.files["onnx"]), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"z": z.numpy()})
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-5)
    assert out.shape == (5, 6, 10) and out.std() > 0.01  # real output, not a constant

    meta = json.loads(result.metadata_path.read_text())
    assert meta == result.metadata
    assert meta["input"] == {"name": "z", "shape": ["batch", 4], "dtype": "float32"}
    assert meta["output"]["shape"] == ["batch", 6, 10] and meta["output"]["kind"] == "logmel"
    assert meta["representation"] == REP and meta["preset"] == "tiny" and meta["variational"] is True
    assert meta["dataset_fingerprint"] == "fp" and meta["labels"] == {"field": "digit", "names": ["0", "1"]}
    assert "mel" in meta["to_audio"]
    assert meta["source_checkpoint"]["sha256"] == file_sha256(path)
    for fmt, file in result.files.items():
        assert meta["files"][fmt]["sha256"] == file_sha256(file)
    np.testing.assert_allclose(meta["latent_stats"]["mean"], result.metadata["latent_stats"]["mean"])
    assert len(meta["latent_stats"]["principal_axes"]) == 4
    # the same description travels inside each exported file
    assert json.loads(extra[EMBEDDED_KEY])["input"] == meta["input"]
    props = {p.key: p.value for p in onnx.load(str(result.files["onnx"])).metadata_props}
    assert json.loads(props[EMBEDDED_KEY])["representation"] == REP


def test_export_one_format_and_reject_unknown(tmp_path):
    _, path = _checkpoint(tmp_path, stats=False)
    result = export_decoder(path, tmp_path / "out", formats=("torchscript",))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["tiny.decoder.json", "tiny.decoder.ts"]
    assert result.metadata["latent_stats"] is None
    with pytest.raises(ExportError, match="unknown export format"):
        export_decoder(path, tmp_path / "out", formats=("coreml",))


def test_export_that_does_not_reproduce_the_model_fails(tmp_path):
    _, path = _checkpoint(tmp_path, BranchyAE, stats=False)
    # traced with a batch of 2, checked with a batch of 3: the trace took the wrong branch
    with pytest.raises(ExportError, match="does not reproduce model.decode"):
        export_decoder(path, tmp_path / "out", formats=("torchscript",))
    assert not (tmp_path / "out" / "tiny.decoder.ts").exists()


def _distinct_tiny_presets() -> list[str]:
    """One preset per distinct tiny network.

    Variants that differ only in training (regularisers, loss weights) or in dropout, which is
    the identity in eval mode, export the same graph; testing each once keeps this file fast.
    """
    import models.nets.catalog  # noqa: F401  (registers every model and preset)

    seen: dict[tuple[str, str], str] = {}
    for name in sorted(PRESETS):
        p = PRESETS[name]
        model = build_model(p.model, {**p.model_config, **p.tiny_model}).eval()
        layers = re.sub(r"Dropout\w*\([^)]*\)", "Identity()", repr(model))
        seen.setdefault((p.model, layers), name)
    return sorted(seen.values())


@pytest.mark.parametrize("name", _distinct_tiny_presets())
def test_every_preset_exports(tmp_path, name):
    preset = PRESETS[name]
    model = build_model(preset.model, {**preset.model_config, **preset.tiny_model})
    torch.manual_seed(0)
    if not model.trainable and hasattr(model, "fit"):
        model.fit(torch.rand(16, *model.input_shape))
    model.eval()
    rep = {**preset.representation, **preset.tiny_representation}
    path = save_checkpoint(tmp_path / f"{name}.safetensors", model, preset=name, representation=rep)
    result = export_decoder(path, tmp_path / "out")
    z = torch.randn(2, *model.latent_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.decode(z)
    scripted = torch.jit.load(str(result.files["torchscript"]))
    torch.testing.assert_close(scripted(z), expected, rtol=1e-4, atol=1e-5)
    session = onnxruntime.InferenceSession(str(result.files["onnx"]), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"z": z.numpy()})
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-4)
