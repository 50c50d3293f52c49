"""Hostile checkpoint metadata: sizes, nesting and types are refused before anything is built.

Each case here ended in a multi-gigabyte allocation, a RecursionError or an AttributeError."""

from __future__ import annotations

import json

import pytest
import torch
from test_checkpoint import METADATA_KEY, REP, _edit_meta, _join, _save, _split

import models.checkpoints.checkpoint as ck
from models.checkpoints.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from models.errors import CheckpointError
from trainer.cli import EXIT_INPUT, main


def _never(*args, **kwargs):
    raise AssertionError("the model was built from metadata that should have been refused")


@pytest.fixture
def deep_ae(tmp_path):
    """A real (tiny) deep AE checkpoint; the model is built for real only when it fits the file."""
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset("roche-deep-ae")
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    return save_checkpoint(tmp_path / "deep.safetensors", model, preset=p.name, representation=rep.to_dict())


def test_huge_hidden_layers_are_refused_before_the_model_is_built(deep_ae, monkeypatch):
    _edit_meta(deep_ae, lambda m: {**m, "model_config": {**m["model_config"], "hidden": [60000, 60000]}})
    monkeypatch.setattr(ck, "build_model", _never)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(deep_ae)


def test_a_huge_fft_is_refused_when_the_header_is_read(deep_ae):
    _edit_meta(deep_ae, lambda m: {**m, "representation": {**m["representation"], "n_fft": 2**31}})
    with pytest.raises(CheckpointError, match=r"n_fft = 2147483648 is out of range"):
        read_checkpoint_info(deep_ae)
    _edit_meta(deep_ae, lambda m: {**m, "representation": {**m["representation"], "n_fft": 512, "hop_length": 4096}})
    with pytest.raises(CheckpointError, match="hop_length = 4096 exceeds n_fft"):
        read_checkpoint_info(deep_ae)


def test_huge_integers_anywhere_in_the_model_config_are_refused(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    _edit_meta(path, lambda m: {**m, "model_config": {**m["model_config"], "latent_dim": 10**12}})
    with pytest.raises(CheckpointError, match="latent_dim = 1000000000000 is larger"):
        read_checkpoint_info(path)
    _edit_meta(path, lambda m: {**m, "model_config": {**m["model_config"], "latent_dim": 3, "input_shape": [10**5, 10**5]}})
    with pytest.raises(CheckpointError, match="input_shape"):
        read_checkpoint_info(path)


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def test_metadata_nested_deeply_is_a_checkpoint_error(tmp_path):
    path = _save(tmp_path / "m.safetensors")
    header, data = _split(path)
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    text = json.dumps({**meta, "training": None}).replace('"training": null', '"training": ' + _deep(100_000))
    header["__metadata__"][METADATA_KEY] = text
    _join(path, header, data)
    for read in (read_checkpoint_info, load_checkpoint):
        with pytest.raises(CheckpointError, match="nests 100001 levels deep"):
            read(path)


def test_a_header_nested_deeply_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "deep.safetensors"
    text = ('{"x": ' + _deep(100_000) + "}").encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with pytest.raises(CheckpointError, match="levels deep"):
        read_checkpoint_info(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: {**m, "weights": "abc"}, "weights must be dict"),
    (lambda m: {**m, "weights": {"sha256": 5}}, "weights.sha256"),
    (lambda m: {**m, "latent_stats": "abc"}, "latent_stats must be dict"),
    (lambda m: {**m, "latent_stats": {"latent_shape": "x", "n_codes": 3}}, "latent_stats.latent_shape"),
    (lambda m: {**m, "latent_stats": {"latent_shape": [3], "n_codes": -1}}, "n_codes = -1 is out of range"),
    (lambda m: {**m, "latent_stats": {"latent_shape": [7], "n_codes": 20}}, "bad latent statistics"),
    (lambda m: {**m, "labels": {"field": "x", "names": {"a": 1}}}, "names"),
    (lambda m: {**m, "labels": ["x"]}, "labels must be dict"),
    (lambda m: {**m, "preset": 3}, "preset must be str"),
    (lambda m: {**m, "dataset_fingerprint": []}, "dataset_fingerprint must be str"),
    (lambda m: {**m, "created": None}, "created must be a string"),
    (lambda m: {**m, "package_version": 1}, "package_version must be a string"),
    (lambda m: {**m, "latent_shape": [0]}, "latent_shape"),
    (lambda m: {**m, "representation": {"n_fft": 8}}, "representation must be an object with a 'kind'"),
    (lambda m: {**m, "training": {"epochs": "many"}}, "epochs"),
])
def test_every_field_is_type_checked(tmp_path, edit, message):
    path = _save(tmp_path / "m.safetensors")
    _edit_meta(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_the_cli_refuses_a_hostile_checkpoint_in_one_line(tmp_path, capsys):
    path = _save(tmp_path / "m.safetensors")
    _edit_meta(path, lambda m: {**m, "weights": "abc"})
    assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "out")]) == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weights must be dict" in err[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_honest_checkpoint_still_loads_and_decodes(deep_ae):
    ckpt = load_checkpoint(deep_ae)
    z = torch.zeros(2, *ckpt.model.latent_shape)
    assert torch.isfinite(ckpt.model.decode(z)).all()
    assert REP["kind"] == "stft_frames"  # the shared tiny test representation is what it was
