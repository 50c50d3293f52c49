"""Checkpoints: round trips, refusal of pickles, tamper detection, migrations, atomic writes."""

from __future__ import annotations

import json
import os
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

import models
import models.checkpoints.checkpoint as ckpt_mod
from models.checkpoints.checkpoint import (
    LabelInfo,
    TrainingSummary,
    load_checkpoint,
    load_training_state,
    read_checkpoint_info,
    save_checkpoint,
    save_training_state,
)
from models.checkpoints.format import METADATA_KEY, SCHEMA_VERSION, STATS_PREFIX, migrate
from models.errors import CheckpointError
from models.checkpoints.latent_stats import latent_statistics
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import PRESETS, build_model, register_model


# --- a tiny model, registered under a test-only name ---------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TinyConfig:
    input_shape: tuple[int, ...] = (12,)
    latent_dim: int = 3


@register_model
class TinyAE(LatentModel):
    name = "_test_checkpoint_tiny_ae"
    config_class = TinyConfig
    consumes = "stft_frames"

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.enc = nn.Linear(config.input_shape[0], config.latent_dim)
        self.dec = nn.Sequential(nn.Linear(config.latent_dim, config.input_shape[0]), nn.Sigmoid())
        self.register_buffer("scale", torch.tensor(2.0))

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        return LatentCode(mean=torch.tanh(self.enc(x)) * self.scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)


REP = {"kind": "stft_frames", "sample_rate": 16000, "n_fft": 22, "hop_length": 8}


def _tiny(seed: int = 0) -> TinyAE:
    torch.manual_seed(seed)
    return TinyAE(TinyConfig())


def _x() -> torch.Tensor:
    return torch.rand(5, 12, generator=torch.Generator().manual_seed(1))


def _outputs(model: LatentModel) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        z = model.latent(_x())
        return z, model.decode(z)


def _save(path: Path, model: nn.Module | None = None, **kwargs) -> Path:
    model = model if model is not None else _tiny()
    if "latent_stats" not in kwargs:
        with torch.no_grad():
            codes = model.latent(torch.rand(20, 12, generator=torch.Generator().manual_seed(2))).numpy()
        kwargs["latent_stats"] = latent_statistics(codes)
    return save_checkpoint(path, model, representation=REP, **kwargs)


def _split(path: Path) -> tuple[dict, bytes]:
    """(header dict, data section) of a safetensors file, read by hand for tampering."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _join(path: Path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def _edit_meta(path: Path, edit) -> None:
    header, data = _split(path)
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    header["__metadata__"][METADATA_KEY] = json.dumps(edit(meta))
    _join(path, header, data)


# --- round trip ---------------------------------------------------------------------------------
def test_round_trip_is_bit_identical_and_self_describing(tmp_path):
    model = _tiny().eval()
    training = {"epochs": 3, "steps": 30, "best_val_loss": 0.125, "metrics": {"rmse": 0.5}, "date": "2024-05-01"}
    path = _save(
        tmp_path / "tiny",
        model,
        preset="tiny-preset",
        dataset_fingerprint="abc123",
        labels={"field": "digit", "names": ["zero", "one"]},
        training=training,
    )
    assert path == tmp_path / "tiny.safetensors"
    ck = load_checkpoint(path)
    assert type(ck.model) is TinyAE and not ck.model.training
    for a, b in zip(_outputs(model), _outputs(ck.model)):
        assert torch.equal(a, b)
    assert ck.representation == REP
    assert ck.labels == LabelInfo(field="digit", names=("zero", "one"))
    assert ck.training == TrainingSummary(**training)
    assert ck.preset == "tiny-preset" and ck.info.dataset_fingerprint == "abc123"
    assert ck.meta["schema_version"] == SCHEMA_VERSION and ck.info.package_version == models.__version__
    assert ck.info.model_config == {"input_shape": [12], "latent_dim": 3}
    assert ck.info.latent_shape == (3,) and ck.meta["variational"] is False
    assert ck.info.n_parameters == sum(t.numel() for t in model.state_dict().values())
    stats = ck.latent_stats
    assert stats is not None and stats.latent_shape == (3,) and stats.n_codes == 20
    with torch.no_grad():
        codes = model.latent(torch.rand(20, 12, generator=torch.Generator().manual_seed(2))).numpy()
    np.testing.assert_allclose(stats.mean, codes.mean(0), rtol=1e-5, atol=1e-6)


def test_read_info_does_not_build_the_model(tmp_path, monkeypatch):
    path = _save(tmp_path / "m.safetensors", training=TrainingSummary(epochs=2, best_val_loss=float("nan")))
    monkeypatch.setattr(ckpt_mod, "build_model", _fail)
    info = read_checkpoint_info(path)
    assert info.model_name == TinyAE.name and info.has_latent_stats
    assert info.training.epochs == 2 and info.training.best_val_loss is None  # NaN stored as null
    assert info.file_size == path.stat().st_size
    header, _ = _split(path)
    assert set(header["__metadata__"]) == {"format", METADATA_KEY}


def _fail(*args, **kwargs):
    raise AssertionError("must not be called")


@pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")  # torch.compile's own imports
def test_wrapped_models_are_saved_unwrapped(tmp_path):
    model = _tiny().eval()
    model.dec = torch.compile(model.dec)  # a compiled submodule leaves "_orig_mod" mid-key
    wrapped = nn.DataParallel(torch.compile(model))
    assert any("_orig_mod" in k for k in wrapped.state_dict())
    path = _save(tmp_path / "w.safetensors", wrapped, latent_stats=None)
    header, _ = _split(path)
    names = {n for n in header if n != "__metadata__" and not n.startswith(STATS_PREFIX)}
    assert names == {"enc.weight", "enc.bias", "dec.0.weight", "dec.0.bias", "scale"}
    loaded = load_checkpoint(path).model
    assert torch.equal(loaded.enc.weight, model.enc.weight)


def test_loads_without_cuda_and_refuses_missing_cuda(tmp_path, monkeypatch):
    path = _save(tmp_path / "m.safetensors")
    header, _ = _split(path)
    # nothing in the file names a device: only dtype, shape and byte offsets per tensor
    assert all(set(e) == {"dtype", "shape", "data_offsets"} for n, e in header.items() if n != "__metadata__")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "_lazy_init", _fail)
    assert next(load_checkpoint(path).model.parameters()).device.type == "cpu"
    assert next(load_checkpoint(path, device="auto").model.parameters()).device.type == "cpu"
    with pytest.raises(CheckpointError, match="CUDA is not available"):
        load_checkpoint(path, device="cuda")


def test_save_rejects_unregistered_models_and_bad_arguments(tmp_path):
    with pytest.raises(CheckpointError, match="not a registered LatentModel"):
        save_checkpoint(tmp_path / "a.safetensors", nn.Linear(2, 2), representation=REP)
    with pytest.raises(CheckpointError, match="kind"):
        save_checkpoint(tmp_path / "a.safetensors", _tiny(), representation={"n_fft": 4})
    with pytest.raises(CheckpointError, match="not .pt"):
        save_checkpoint(tmp_path / "a.pt", _tiny(), representation=REP)
    with pytest.raises(CheckpointError, match="unknown key"):
        save_checkpoint(tmp_path / "a.safetensors", _tiny(), representation=REP, training={"epoch": 1})
    wrong = latent_statistics(np.random.default_rng(0).normal(size=(4, 5)))
    with pytest.raises(CheckpointError, match="shape"):
        save_checkpoint(tmp_path / "a.safetensors", _tiny(), representation=REP, latent_stats=wrong)
    assert not list(tmp_path.iterdir())


# --- never unpickle -----------------------------------------------------------------------------
class _CreatesFile:
    """Unpickling this calls open(target, "w"): the file appearing means code ran."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_the_malicious_payload_really_runs_when_unpickled(tmp_path):
    # Guards the tests below: the payload is live, so "file not created" means "never unpickled".
    canary = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesFile(canary))).close()
    assert canary.exists()


@pytest.mark.parametrize("name", ["model.pt", "model.ckpt", "disguised.safetensors", "torch_zip.bin"])
def test_pickles_are_refused_without_unpickling(tmp_path, name):
    canary = tmp_path / "pwned"
    path = tmp_path / name
    if name == "torch_zip.bin":
        torch.save({"state": _CreatesFile(canary)}, path)  # zip archive holding the pickle
    else:
        path.write_bytes(pickle.dumps({"state": _CreatesFile(canary)}, protocol=4))
    with pytest.raises(CheckpointError, match="never opens pickle files") as err:
        load_checkpoint(path)
    assert "docs/checkpoints.md" in str(err.value)
    with pytest.raises(CheckpointError, match="never opens pickle files"):
        read_checkpoint_info(path)
    assert not canary.exists()


def test_training_state_refuses_code_and_round_trips(tmp_path):
    canary = tmp_path / "pwned"
    evil = tmp_path / "evil_state.pt"
    torch.save({"step": 1, "payload": _CreatesFile(canary)}, evil)
    with pytest.raises(CheckpointError, match="cannot read safely|can read safely"):
        load_training_state(evil)
    assert not canary.exists()

    model = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.loss(_x(), model(_x()))["loss"].backward()
    opt.step()
    state = {
        "step": 7,
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.default_rng(3).bit_generator.state,
    }
    path = save_training_state(tmp_path / "state.pt", state)
    back = load_training_state(path)
    assert back["step"] == 7 and back["python_rng"] == random.getstate()
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert back["numpy_rng"] == state["numpy_rng"]
    exp_avg = back["optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(exp_avg, opt.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(CheckpointError, match="no training state"):
        load_training_state(tmp_path / "missing.pt")


# --- corrupt and tampered files -------------------------------------------------------------------
def test_flipped_data_byte_is_detected(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    header, data = _split(path)
    begin, _ = header["enc.weight"]["data_offsets"]
    flipped = bytearray(data)
    flipped[begin + 1] ^= 0xFF
    _join(path, header, bytes(flipped))
    with pytest.raises(CheckpointError, match="tampered"):
        load_checkpoint(path)


def test_header_length_that_looks_like_a_pickle_still_loads(tmp_path):
    # A header of 0x010480 bytes starts the file with 0x80 0x04, a pickle's protocol-4 opcode.
    model = _tiny().eval()
    path = _save(tmp_path / "m.safetensors", model)
    header, data = _split(path)
    text = json.dumps(header).encode()
    text += b" " * (0x010480 - len(text))
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    assert path.read_bytes()[:2] == b"\x80\x04"
    assert torch.equal(_outputs(load_checkpoint(path).model)[1], _outputs(model)[1])


def test_header_length_past_end_and_truncation(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    path.write_bytes((len(raw) * 2).to_bytes(8, "little") + raw[8:])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    path.write_bytes(raw[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint_info(path)
    path.write_bytes(raw[:5])
    with pytest.raises(CheckpointError, match="too short"):
        load_checkpoint(path)
    path.write_bytes(raw + b"extra")
    with pytest.raises(CheckpointError, match="altered or appended"):
        load_checkpoint(path)


def test_edited_shape_in_header_is_detected(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    header, data = _split(path)
    header["enc.weight"]["shape"] = header["enc.weight"]["shape"][::-1]  # same byte count
    _join(path, header, data)
    with pytest.raises(CheckpointError, match="tampered"):
        load_checkpoint(path)


def test_edited_model_config_no_longer_fits_the_weights(tmp_path):
    path = _save(tmp_path / "m.safetensors", latent_stats=None)
    _edit_meta(path, lambda m: {**m, "model_config": {**m["model_config"], "latent_dim": 4}})
    with pytest.raises(CheckpointError, match="weights do not fit") as err:
        load_checkpoint(path)
    assert "size mismatch" in str(err.value)
    _edit_meta(path, lambda m: {**m, "model_config": {**m["model_config"], "depth": 4}})
    with pytest.raises(CheckpointError, match="unknown key"):
        load_checkpoint(path)
    _edit_meta(path, lambda m: {**m, "model_name": "no_such_model"})
    with pytest.raises(CheckpointError, match="unknown model"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "header_text, message",
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"t": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', "needs 8 bytes"),
        (b'{"t": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 4]}}', "unknown dtype"),
        (b'{"__metadata__": {"format": "pt"}}', "not a latent-explorer checkpoint"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_header_is_checked_as_plain_json(tmp_path, header_text, message):
    path = tmp_path / "m.safetensors"
    data = b"" if b"format" in header_text else b"\0" * 4  # the data section its tensors cover
    path.write_bytes(len(header_text).to_bytes(8, "little") + header_text + data)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_foreign_safetensors_and_missing_paths(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a latent-explorer checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match="is a folder.*foreign.safetensors"):
        load_checkpoint(tmp_path)


# --- schema versions ------------------------------------------------------------------------------
def _as_v1(meta: dict) -> dict:
    """The layout of schema 1 (see migrate_1_to_2), made by hand from a current one."""
    return {
        "schema_version": 1,
        "model": meta["model_name"],
        "config": meta["model_config"],
        "preset": meta["preset"],
        "representation": meta["representation"],
        "dataset": {"fingerprint": "fp1", "label_field": "pitch", "classes": ["60", "61"]},
        "training": {"epochs": 1, "steps": 2},
        "version": "0.0.9",
        "created": "2023-01-01T00:00:00+00:00",
    }


def test_schema_1_is_migrated(tmp_path):
    model = _tiny().eval()
    path = _save(tmp_path / "m.safetensors", model, latent_stats=None)
    _edit_meta(path, _as_v1)
    ck = load_checkpoint(path)
    assert ck.info.stored_schema_version == 1 and ck.meta["schema_version"] == SCHEMA_VERSION
    assert ck.info.model_name == TinyAE.name and ck.info.package_version == "0.0.9"
    assert ck.labels == LabelInfo(field="pitch", names=("60", "61"))
    assert ck.info.dataset_fingerprint == "fp1" and ck.latent_stats is None
    for a, b in zip(_outputs(model), _outputs(ck.model)):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "version, message",
    [(SCHEMA_VERSION + 1, "upgrade latent-explorer"), (0, "older than any"), ("2", "no integer schema_version")],
)
def test_unknown_schema_versions_say_what_to_do(tmp_path, version, message):
    path = _save(tmp_path / "m.safetensors")
    _edit_meta(path, lambda m: {**m, "schema_version": version})
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_broken_v1_metadata_fails_clearly():
    with pytest.raises(CheckpointError, match="cannot migrate schema 1"):
        migrate({"schema_version": 1, "config": {}}, where="x")


# --- atomic writes ------------------------------------------------------------------------------
def _old_checkpoint(tmp_path: Path) -> tuple[Path, tuple[torch.Tensor, torch.Tensor]]:
    model = _tiny(seed=0).eval()
    return _save(tmp_path / "m.safetensors", model), _outputs(model)


def test_failed_fsync_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, before = _old_checkpoint(tmp_path)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CheckpointError, match="previous file is unchanged"):
        _save(path, _tiny(seed=1))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    for a, b in zip(before, _outputs(load_checkpoint(path).model)):
        assert torch.equal(a, b)


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, before = _old_checkpoint(tmp_path)

    def half_then_crash(f, blob):
        f.write(blob[: len(blob) // 2])
        raise KeyboardInterrupt  # the user pressed Ctrl-C halfway

    monkeypatch.setattr(ckpt_mod, "_write_chunks", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _save(path, _tiny(seed=1))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    for a, b in zip(before, _outputs(load_checkpoint(path).model)):
        assert torch.equal(a, b)


# --- every preset at tiny size ------------------------------------------------------------------
def _preset_names() -> list[str]:
    import models.nets.catalog  # noqa: F401  (registers every model and preset)

    return sorted(PRESETS)


def build_tiny_preset(name: str) -> tuple[LatentModel, dict]:
    """The preset's model at tiny size, fitted if it is fitted in closed form, in eval mode."""
    preset = PRESETS[name]
    model = build_model(preset.model, {**preset.model_config, **preset.tiny_model})
    torch.manual_seed(0)
    if not model.trainable and hasattr(model, "fit"):
        model.fit(torch.rand(16, *model.input_shape))
    return model.eval(), {**preset.representation, **preset.tiny_representation}


@pytest.mark.parametrize("name", _preset_names())
def test_every_preset_round_trips_bit_identically(tmp_path, name):
    model, rep = build_tiny_preset(name)
    x = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.latent(x)
        y = model.decode(z)
    path = save_checkpoint(tmp_path / f"{name}.safetensors", model, preset=name, representation=rep)
    ck = load_checkpoint(path)
    assert ck.preset == name and ck.info.model_name == PRESETS[name].model
    with torch.no_grad():
        z2 = ck.model.latent(x)
        y2 = ck.model.decode(z2)
    assert torch.equal(z, z2) and torch.equal(y, y2)


def test_a_checkpoint_replaced_while_it_loads_gives_the_version_that_was_opened(tmp_path, monkeypatch):
    """The trainer replaces best.safetensors by an atomic rename while the app may be reading it:
    the header and the tensors come from one open file, so the load gets one whole version (it
    used to pair the first version's hash with the second's tensors: "tampered with")."""
    path = _save(tmp_path / "best.safetensors", _tiny(0))
    newer = _save(tmp_path / "newer.safetensors", _tiny(1))
    real_fits = ckpt_mod.check_model_fits

    def replaced_meanwhile(*args, **kwargs):
        real_fits(*args, **kwargs)
        os.replace(newer, path)  # between reading the header and reading the tensors

    monkeypatch.setattr(ckpt_mod, "check_model_fits", replaced_meanwhile)
    loaded = load_checkpoint(path)
    for got, want in zip(_outputs(loaded.model), _outputs(_tiny(0))):
        assert torch.equal(got, want)
    monkeypatch.undo()
    for got, want in zip(_outputs(load_checkpoint(path).model), _outputs(_tiny(1))):  # the new one now
        assert torch.equal(got, want)
