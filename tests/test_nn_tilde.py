"""nn~ models: open a RAVE-style TorchScript file (after the trust step), map, play and morph with it;
export ours as an audio-out nn~ model and open it again.

Neither ``nn-tilde`` (pins torch 2.5) nor ``acids-rave`` (pins pytorch-lightning 1.9, scipy 1.10)
installs beside our torch, so the fixture below reproduces the interface they write, from their
source: ``nn_tilde.Module.register_method`` stores ``<method>_params = [in_channels, in_ratio,
out_channels, out_ratio]`` buffers and ``<method>_input_labels`` / ``_output_labels``, exports
``get_methods()`` and ``get_sample_rate()``; RAVE's ``ScriptedRAVE`` (scripts/export.py) keeps
``sr`` and ``full_latent_size`` and registers ``encode`` (audio ``(1, 1, n)`` -> ``(1, latent,
n / ratio)``), ``decode`` (the inverse) and ``forward``. Its encoder is a fixed linear map of
each hop and its decoder a sine bank, so the expected audio is known exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from explorer_tiny import N_SAMPLES, SR, FakeState, make_dataset_folder
from torch import nn

from explorer.core import nn_models
from explorer.core.controller import Controller
from explorer.core.records import load_model
from models.checkpoints.checkpoint import save_checkpoint
from models.checkpoints.export import ExportError
from models.datasets import open_dataset
from models.errors import CheckpointError
from models.inference import decode
from models.inference.encode import encode_dataset
from models.morphing import morph
from models.nets.registry import build_model
from models.nntilde.export import export_nn_tilde, spectral_convergence
from models.nntilde.model import NNModelError, load_nn_model, open_nn_model
from models.nntilde.trust import TrustStore, UntrustedModelError, default_store
from models.representations import representation_from_dict

RATIO = 64  # samples per latent step
LATENT = 8
#: the sine bank: latent unit j is a sine of (j + 1) cycles per hop, (j + 1) * 125 Hz at 8 kHz
FREQS = [(j + 1) * SR / RATIO for j in range(LATENT)]


class SineBankNN(nn.Module):
    """An nn~ model as nn_tilde.Module and RAVE's export lay it out (see the module docstring).

    encode: each hop of RATIO samples projected on the sine bank (amplitudes); decode: the sum of
    the bank's sines weighted by the codes. Sines of whole cycles per hop decode to themselves.
    """

    def __init__(self, *, with_encode: bool = True) -> None:
        super().__init__()
        n = torch.arange(RATIO, dtype=torch.float32)
        self.register_buffer("bank", torch.stack([torch.sin(2 * torch.pi * (j + 1) * n / RATIO)
                                                  for j in range(LATENT)]))  # (latent, ratio)
        self.sr = SR
        self.ratio = RATIO
        self.full_latent_size = LATENT
        self.methods = ["encode", "decode", "forward"] if with_encode else ["decode"]
        if with_encode:
            self.register_buffer("encode_params", torch.tensor([1, 1, LATENT, RATIO]))
            self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))
        self.register_buffer("decode_params", torch.tensor([LATENT, RATIO, 1, 1]))
        self.decode_output_labels = ["(signal) audio out"]

    @torch.jit.export
    def get_methods(self) -> list[str]:
        return self.methods

    @torch.jit.export
    def get_sample_rate(self) -> int:
        return self.sr

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[-1] // self.ratio
        hops = x[:, 0, : t * self.ratio].reshape(b, t, self.ratio)
        return (hops @ self.bank.T * (2.0 / self.ratio)).permute(0, 2, 1)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[0], z.shape[-1]
        return (z.permute(0, 2, 1) @ self.bank).reshape(b, 1, t * self.ratio)


class SineBankWithEncode(SineBankNN):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class SineBankWithoutEncode(SineBankNN):
    def __init__(self) -> None:
        super().__init__(with_encode=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """Every test gets its own empty trust store (never the user's)."""
    d = tmp_path / "config"
    monkeypatch.setenv("LATENT_EXPLORER_CONFIG_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return open_dataset(make_dataset_folder(tmp_path_factory.mktemp("ds"), per_class=4))


def _save(module: nn.Module, path) -> str:
    with warnings.catch_warnings():  # torch deprecates TorchScript; nn~ loads nothing else
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        torch.jit.script(module).save(str(path))
    return str(path)


@pytest.fixture
def rave_like(tmp_path) -> str:
    return _save(SineBankWithEncode(), tmp_path / "sinebank.ts")


def _sine(freq: float, n: int, amp: float = 1.0) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


# --- trust ---------------------------------------------------------------------------------------
def test_nothing_opens_without_the_trust_step(rave_like, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("torch.jit.load ran on an untrusted file")

    with monkeypatch.context() as m:
        m.setattr(torch.jit, "load", boom)
        with pytest.raises(UntrustedModelError, match="TorchScript file: a program"):
            open_nn_model(rave_like)
        with pytest.raises(UntrustedModelError):
            load_model(rave_like)  # the explorer's loader, as File > Open model calls it
    assert nn_models.untrusted([rave_like]) == [rave_like]
    assert not default_store().path.exists()  # refusing writes nothing


def test_trust_is_remembered_by_hash_and_a_changed_file_asks_again(rave_like, tmp_path):
    nm = open_nn_model(rave_like, trust=True)
    assert nm.trusted_by == "user" and not nm.ours
    assert nn_models.untrusted([rave_like]) == []
    assert open_nn_model(rave_like).sha256 == nm.sha256  # no trust=True needed the second time
    changed = SineBankWithEncode()
    changed.sr = 16000  # same program, other content: another hash
    _save(changed, rave_like)
    with pytest.raises(UntrustedModelError):
        open_nn_model(rave_like)


def test_the_window_asks_and_a_no_keeps_the_file_closed(rave_like, monkeypatch, qapp):
    from PySide6.QtWidgets import QMessageBox

    from explorer.window import window_files

    asked: list[str] = []

    def answer(button):
        def question(parent, title, text, *a):
            asked.append(text)
            return button
        return question

    other = "other.safetensors"
    monkeypatch.setattr(window_files.QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert window_files.FilesMixin._ask_trust(None, [rave_like, other]) == [other]
    assert "TorchScript is a program" in asked[0] and nn_models.untrusted([rave_like]) == [rave_like]
    monkeypatch.setattr(window_files.QMessageBox, "question", answer(QMessageBox.StandardButton.Open))
    assert window_files.FilesMixin._ask_trust(None, [rave_like]) == [rave_like]
    assert nn_models.untrusted([rave_like]) == []
    asked.clear()
    assert window_files.FilesMixin._ask_trust(None, [rave_like]) == [rave_like] and not asked  # asked once


# --- what is not an nn~ model ---------------------------------------------------------------------
def test_a_model_without_encode_is_refused_by_name(tmp_path):
    path = _save(SineBankWithoutEncode(), tmp_path / "decoder_only.ts")
    with pytest.raises(NNModelError, match=r"no `encode` method"):
        open_nn_model(path, trust=True)


def test_a_file_that_is_not_torchscript_is_refused(tmp_path):
    path = tmp_path / "notes.ts"
    path.write_text("export const x = 1;\n")  # a TypeScript file, the other .ts
    with pytest.raises(NNModelError, match="not a TorchScript archive"):
        open_nn_model(path, trust=True)


# --- using it as one of ours ----------------------------------------------------------------------
def test_interface_is_read(rave_like):
    nm = open_nn_model(rave_like, trust=True)
    assert nm.methods == ("encode", "decode", "forward")
    assert nm.params == {"encode": (1, 1, LATENT, RATIO), "decode": (LATENT, RATIO, 1, 1), "forward": (1, 1, 1, 1)}
    assert (nm.sample_rate, nm.latent_size, nm.ratio, nm.full_latent_size) == (SR, LATENT, RATIO, LATENT)
    assert nm.labels["decode"] == ["(signal) audio out"]


def test_a_dataset_becomes_trajectories_and_clicks_play_the_models_decoding(rave_like, dataset):
    nn_models.trust_file(rave_like)
    lm = load_model(rave_like)
    c = Controller()
    c.set_dataset(dataset)
    c.add_model(lm)
    enc = c.encode_task()(FakeState())
    c.set_encoding(c.current_key, enc)
    c.set_embedding(c.project_task("pca")(FakeState()))
    n_hops = -(-N_SAMPLES // RATIO)
    assert enc.layout == "frames" and enc.latent_shape == (LATENT,)
    assert enc.frame_codes.shape == (len(dataset.clips) * n_hops, LATENT)
    assert c.points.shape == (len(dataset.clips), 2) and np.isfinite(c.points).all()

    low = next(i for i, clip in enumerate(dataset.clips) if clip.name.startswith("low"))  # 220 Hz, near the bank's 250
    c.select_point(low)
    d = c.decode_task()(FakeState())
    # what the model itself plays for this clip: decode(encode(audio)), through the app's path
    y = dataset.load(low, sr=SR)
    x = np.zeros(n_hops * RATIO, np.float32)
    x[: len(y)] = y
    module = open_nn_model(rave_like).module
    want = module.forward(torch.from_numpy(x)[None, None])[0, 0, :N_SAMPLES].numpy()
    assert d.decoded.sr == SR and len(d.decoded.y) == N_SAMPLES and d.decoded.phase == "none"
    np.testing.assert_allclose(d.decoded.y, want, atol=1e-5)
    assert np.sqrt(np.mean(want**2)) > 0.05


def test_a_held_code_plays_its_sine_and_a_morph_goes_between(rave_like, dataset):
    _, model, rep = load_nn_model(rave_like, trust=True)
    enc = encode_dataset(model, rep, dataset)
    a, b = np.zeros(LATENT), np.zeros(LATENT)
    a[1], b[3] = 0.5, 0.5  # 250 Hz and 500 Hz
    held = decode.render_code(model, rep, dataset, enc, a, template_clip=0)
    # the code is decoded at every hop: one continuous sine over the clip, not a looped hop
    np.testing.assert_allclose(held.y, _sine(FREQS[1], N_SAMPLES, 0.5), atol=1e-5)

    template = morph.template_from_clip(rep, dataset, 0, layout=enc.layout)
    steps = [morph.decode_step(model, rep, (1 - u) * a + u * b, latent_shape=enc.latent_shape, template=template)
             for u in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(steps[0], held.y, atol=1e-6)
    np.testing.assert_allclose(steps[2], _sine(FREQS[3], N_SAMPLES, 0.5), atol=1e-5)
    np.testing.assert_allclose(steps[1], 0.5 * (steps[0] + steps[2]), atol=1e-5)  # halfway: both, at half


# --- exporting ours -------------------------------------------------------------------------------
def _pca_checkpoint(tmp_path, dataset):
    """A PCA of STFT frames fitted on the tiny dataset: it decodes consistent, tonal spectra."""
    rep_d = {"kind": "stft_frames", "sample_rate": SR, "n_fft": 256, "hop_length": 64, "magnitude": "log",
             "top_db": 80.0, "normalize": "clip"}
    rep = representation_from_dict(rep_d)
    frames = np.concatenate([rep.analyze(dataset.load(i, sr=SR)).features for i in range(len(dataset.clips))])
    model = build_model("pca", {"input_shape": [129], "n_components": 8})
    model.fit(torch.from_numpy(frames))
    return save_checkpoint(tmp_path / "pca.safetensors", model.eval(), representation=rep_d), model, rep


#: the export's decode vs the app's own (both 32 fast Griffin-Lim iterations, from other starts)
SC_BOUND = 0.2


def test_our_export_opens_in_the_loader_and_sounds_like_the_apps_decode(tmp_path, dataset):
    ckpt, model, rep = _pca_checkpoint(tmp_path, dataset)
    store = default_store()
    result = export_nn_tilde(ckpt, tmp_path / "out", store=store)
    assert result.path.name == "pca.nn.ts" and result.metadata_path.is_file()
    assert max(result.max_abs_error.values()) <= 1e-4 and result.spectral_convergence < SC_BOUND

    nm, nn_model, nn_rep = load_nn_model(result.path)  # no trust=True: the app wrote it
    assert nm.ours and nm.trusted_by == "export"
    assert nm.params["encode"] == (1, 1, 8, 64) and nm.params["decode"] == (8, 64, 1, 1)
    assert (nm.sample_rate, nm.ratio) == (SR, 64) and set(nm.methods) == {"encode", "decode", "forward"}

    # one clip's codes under the app's own model, decoded by the app and by the export through the loader
    y = dataset.load(1, sr=SR)
    codes = np.asarray(model.latent(torch.from_numpy(rep.analyze(y).features)), dtype=np.float64)  # (126, 8)
    n = (len(codes) - 1) * 64
    app = decode.decode_to_sound(model, rep, codes, latent_shape=(8,), phase="gla",
                                 context=decode.DecodeContext(n_samples=n, feature_shape=rep.feature_shape(n)))
    ours = decode.decode_to_sound(nn_model, nn_rep, codes[:-1], latent_shape=(8,), phase="gla",
                                  context=decode.DecodeContext(n_samples=n, feature_shape=nn_rep.feature_shape(n)))
    assert ours.made == "model waveform" and np.sqrt(np.mean(ours.y**2)) > 0.01
    assert spectral_convergence(ours.y, app.y, n_fft=256, hop_length=64) < SC_BOUND


def _preset_checkpoint(tmp_path, name):
    import models.nets.catalog  # noqa: F401  (registers every model and preset)
    from models.nets.registry import PRESETS

    p = PRESETS[name]
    torch.manual_seed(0)
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    if not model.trainable:
        model.fit(torch.rand(16, *model.input_shape))
    rep = {**p.representation, **p.tiny_representation}
    return save_checkpoint(tmp_path / f"{name}.safetensors", model.eval(), preset=name, representation=rep), model


def test_a_waveform_model_exports_as_it_decodes(tmp_path):
    ckpt, model = _preset_checkpoint(tmp_path, "lionello-dcvae-digits-small")
    d = model.latent_shape[0]
    result = export_nn_tilde(ckpt, tmp_path / "out")
    nm = open_nn_model(result.path)  # trusted: the app wrote it
    loaded = nm.module
    z = torch.randn(1, d, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.cat([model.decode(z[:, :, k]) for k in range(3)], dim=-1)
    torch.testing.assert_close(loaded.decode(z)[0], want, atol=1e-5, rtol=1e-4)
    assert nm.params["decode"] == (d, 256, 1, 1) and nm.params["encode"] == (1, 1, d, 256)


def test_models_without_an_audio_out_export_are_refused(tmp_path):
    ckpt, _ = _preset_checkpoint(tmp_path, "natsiou-sigmoid")
    with pytest.raises(ExportError, match="logmel model"):
        export_nn_tilde(ckpt, tmp_path / "out")
    ckpt, _ = _preset_checkpoint(tmp_path, "roche-lstm-ae")
    with pytest.raises(ExportError, match="taking windows"):
        export_nn_tilde(ckpt, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_cli_exports_for_nn_tilde(tmp_path, dataset, capsys):
    from trainer.cli import main

    ckpt, _, _ = _pca_checkpoint(tmp_path, dataset)
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "cli"), "--format", "nn_tilde"]) == 0
    assert (tmp_path / "cli" / "pca.nn.ts").is_file() and (tmp_path / "cli" / "pca.nn.json").is_file()
    assert not (tmp_path / "cli" / "pca.decoder.ts").exists()  # only what was asked for
    assert "spectral convergence" in capsys.readouterr().out
    assert TrustStore(default_store().path).is_trusted(tmp_path / "cli" / "pca.nn.ts")


# --- the window -----------------------------------------------------------------------------------
@pytest.mark.gui
def test_the_window_opens_a_trusted_nn_model_and_plays_it(qtbot, tmp_path, rave_like, dataset, monkeypatch):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from explorer.sound.audio_out import RecordingSink
    from explorer.window import window_files
    from explorer.window.main_window import MainWindow

    sink = RecordingSink()
    w = MainWindow(audio=sink, audio_message="Sound off (recording sink)",
                   settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.open_dataset(dataset.root)
    qtbot.waitUntil(lambda: w.controller.dataset is not None, timeout=20000)

    monkeypatch.setattr(window_files.QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Cancel)
    w.open_paths([rave_like])  # dropped on the window: asked, refused, nothing loaded
    assert not w.runner.is_running("models") and w.controller.current is None

    monkeypatch.setattr(window_files.QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Open)
    w.open_paths([rave_like])
    qtbot.waitUntil(lambda: w.controller.embedding is not None and len(w.controller.points) == len(dataset.clips)
                    and not w.runner.is_running("project"), timeout=20000)
    assert w.controller.current.representation.kind == "nn_frames"
    w.controller.select_point(next(i for i, clip in enumerate(dataset.clips) if clip.name.startswith("low")))
    w.decode(play=True)
    qtbot.waitUntil(lambda: len(sink.played) > 0, timeout=20000)
    y, sr = sink.played[-1]
    assert sr == SR and len(y) == N_SAMPLES and np.sqrt(np.mean(y**2)) > 0.05
    w.runner.cancel_all()
    w.runner.wait(5000)


def test_an_unreadable_trust_store_opens_nothing(rave_like):
    store = default_store()
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(CheckpointError, match="trust store"):
        open_nn_model(rave_like)
    with pytest.raises(CheckpointError, match="trust store"):
        open_nn_model(rave_like, trust=True)  # a yes cannot be remembered: nothing runs either
    assert store.path.read_text() == "{not json"  # never silently rewritten
