"""Lionello & Purwins' DC-VAE and CC-VAE: every preset at tiny size, the tables, the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from models.config import config_from_dict
from models.errors import ConfigError
from models.nets.lionello import CCVAE, DCVAE, CCVAEConfig, DCVAEConfig
from models.nets.lionello_blocks import DilationBlock, dilation_schedule, receptive_field
from models.nets.registry import PRESETS, build_model, get_preset

get_preset("lionello-dcvae-digits")  # loads the catalogue
LIONELLO = sorted(n for n in PRESETS if n.startswith("lionello-"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny nets: two OpenMP threads on a busy 2-core machine make each step 100x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name: str, **extra):
    p = get_preset(name)
    return build_model(p.model, {**p.model_config, **p.tiny_model, **extra})


def full_on_meta(name: str):
    p = get_preset(name)
    with torch.device("meta"):
        return build_model(p.model, p.model_config)


def waves(n: int = 6, length: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Decaying sinusoids of a few pitches, peak 0.8; label = pitch index."""
    t = torch.arange(length).float()
    labels = torch.arange(n) % 3
    x = torch.stack([0.8 * torch.sin(2 * math.pi * (4 + 6 * int(k)) * t / length) * torch.exp(-t / 150)
                     for k in labels])
    return x, labels


def test_presets_cover_both_nets_and_datasets():
    expected = {f"lionello-{a}-{d}{s}" for a in ("dcvae", "ccvae") for d in ("digits", "drums") for s in ("", "-small")}
    assert expected | {"lionello-dcvae-digits-noclass"} == set(LIONELLO)
    for name in LIONELLO:
        p = get_preset(name)
        rep = p.representation
        assert rep["kind"] == "waveform"
        assert (rep["sample_rate"], rep["n_samples"]) == ((8000, 4096) if "digits" in name else (22050, 16384))
        assert p.model_config["input_shape"] == [rep["n_samples"]]
        assert p.training["lr"] == (2e-3 if name.endswith("-small") else 5e-4)
        assert p.training["lr_classifier"] == 1e-3
        # the tables' one-channel bottleneck at full size; wider at CPU size (see presets_conv)
        assert p.model_config.get("bottleneck_channels", 1) == (16 if name.startswith("lionello-ccvae")
                                                                and name.endswith("-small") else 1)


@pytest.mark.parametrize("name", LIONELLO)
def test_tiny_preset_shapes_and_learning(name):
    torch.manual_seed(0)
    model = tiny(name)
    x, labels = waves()
    out = model(x, labels)
    assert out.recon.shape == x.shape
    latent = 30 if "drums" in name else 20
    assert model.latent_shape == (latent,)
    assert out.code.mean.shape == out.code.logvar.shape == out.z.shape == (6, latent)
    n_classes = model.config.n_classes
    assert n_classes == (0 if "noclass" in name else 5 if "drums" in name else 10)
    if n_classes:
        assert out.extras["logits"].shape == (6, n_classes)
    else:
        assert "logits" not in out.extras
    model.eval()
    recon0 = float(model.loss(x, model(x))["recon"].detach())
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        terms = model.loss(x, model(x, labels), labels)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"].detach()))
    model.eval()
    recon1 = float(model.loss(x, model(x))["recon"].detach())
    assert losses[-1] < 0.75 * losses[0], losses[::8]
    assert recon1 < 0.85 * recon0, (recon0, recon1)


@pytest.mark.parametrize("name", LIONELLO)
def test_safetensors_round_trip_is_bit_identical(name, tmp_path):
    torch.manual_seed(1)
    model = tiny(name).eval()
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    torch.manual_seed(2)
    other = tiny(name).eval()
    other.load_state_dict(load_file(tmp_path / "w.safetensors"))
    x, _ = waves()
    with torch.no_grad():
        a, b = model(x), other(x)
    assert torch.equal(a.recon, b.recon) and torch.equal(a.code.mean, b.code.mean)
    if "logits" in a.extras:
        assert torch.equal(a.extras["logits"], b.extras["logits"])


def test_dilation_schedule_is_the_papers():
    m10 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] * 5
    m5 = [1, 2, 4, 8, 16] * 10
    assert dilation_schedule(50, 10) == m10
    assert dilation_schedule(50, 5) == m5
    assert [2 ** ((i - 1) % 10) for i in range(1, 51)] == m10
    # the paper's formula N / m * (2 ** m - 1) + 1 (it prints 5119 and 319, arithmetic slips)
    assert receptive_field(m10) == 50 // 10 * (2**10 - 1) + 1 == 5116
    assert receptive_field(m5) == 50 // 5 * (2**5 - 1) + 1 == 311
    # both blocks of the full-size net use it, one pair of dilations per residual layer
    for block in full_on_meta("lionello-dcvae-digits").dilation_blocks:
        assert block.dilations == list(zip(m10, m5))
        assert len(block.sub1) == 50
        assert all(s.conv.kernel_size == (2,) and s.conv.out_channels == 32 for s in [*block.sub1, *block.sub2])


def test_dilation_block_is_gated_residual_with_mean_skip():
    torch.manual_seed(0)
    block = DilationBlock(3, 4, 3, cycles=(2, 1))
    x = torch.randn(2, 3, 20)
    h = block.lift(x)
    skips = []
    for s1, s2 in zip(block.sub1, block.sub2):
        d1, d2 = s1.dilation, s2.dilation
        a = F.conv1d(F.pad(h, (d1, 0)), s1.conv.weight, s1.conv.bias, dilation=d1)
        b = F.conv1d(F.pad(h, (d2, 0)), s2.conv.weight, s2.conv.bias, dilation=d2)
        p = torch.tanh(a) * torch.sigmoid(b)
        skips.append(p)
        h = h + p
    assert block.dilations == [(1, 1), (2, 1), (1, 1)]
    assert torch.allclose(block(x), torch.stack(skips).mean(0), atol=1e-6)
    # causal: the first samples do not see later ones
    y = block(x)
    x2 = x.clone()
    x2[..., 10:] += 1.0
    assert torch.equal(block(x2)[..., :10], y[..., :10])


def test_dcvae_follows_table_1():
    m = full_on_meta("lionello-dcvae-digits")
    front = m.enc_body[0].conv
    assert (front.out_channels, front.kernel_size, front.stride) == (16, (32,), (1,))
    down = [c for c in m.enc_body if isinstance(c, nn.Conv1d) and c.stride == (2,)]
    assert [(c.out_channels, c.kernel_size) for c in down] == [(1, (2,))] * 5
    up = [c for c in m.dec_body if isinstance(c, nn.ConvTranspose1d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in up] == [(1, (2,), (2,))] * 5
    assert m.n_bottleneck == 4096 // 32
    assert (m.enc_mean.out_features, m.enc_logvar.out_features) == (20, 20)
    assert m.dec_body[-1].out_channels == 1


def test_ccvae_follows_table_2():
    m = full_on_meta("lionello-ccvae-digits")
    down = [c for c in m.enc_body if isinstance(c, nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in down] == [
        (128, 5, 2), (128, 4, 2), (256, 4, 2), (512, 4, 2), (1024, 4, 2), (1, 1, 1)]
    up = [c for c in m.dec_body if isinstance(c, (nn.Conv1d, nn.ConvTranspose1d))]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in up] == [
        (1, 1, 1), (1024, 4, 2), (512, 4, 2), (256, 4, 2), (128, 4, 2), (128, 5, 2), (1, 1, 1)]
    assert isinstance(m, CCVAE) and m.n_bottleneck == 128


@pytest.mark.parametrize(("name", "widths"), [
    ("lionello-dcvae-digits", [(20, 10), (10, 10), (10, 10), (10, 10)]),
    ("lionello-ccvae-digits", [(20, 10), (10, 10), (10, 10), (10, 10)]),
    ("lionello-dcvae-drums", [(30, 5), (5, 5)]),
    ("lionello-ccvae-drums-small", [(30, 5), (5, 5)]),
])
def test_bottleneck_classifier_sizes(name, widths):
    m = full_on_meta(name)
    lin = [l for l in m.classifier if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == widths
    assert full_on_meta("lionello-dcvae-digits-noclass").classifier is None


def test_loss_weights_and_terms_are_the_papers():
    for cfg in (DCVAEConfig(), CCVAEConfig()):
        assert (cfg.recon_weight, cfg.kl_weight, cfg.class_weight) == (1.0, 1e-4, 1.01)
    torch.manual_seed(0)
    m = tiny("lionello-dcvae-digits")
    x, labels = waves()
    out = m(x, labels)
    terms = m.loss(x, out, labels)
    recon = torch.mean((out.recon - x) ** 2)
    kl = (-0.5 * (1 + out.code.logvar - out.code.mean ** 2 - out.code.logvar.exp())).sum(1).mean()
    ce = F.cross_entropy(out.extras["logits"], labels)
    assert torch.allclose(terms["recon"], recon) and torch.allclose(terms["kl"], kl)
    assert torch.allclose(terms["classification"], ce)
    assert torch.allclose(terms["vae"], recon + 1e-4 * kl)
    assert torch.allclose(terms["loss"], recon + 1e-4 * kl + 1.01 * ce)
    # classification term iff labels are given (and the net has a classifier)
    unlabelled = m.loss(x, out)
    assert "classification" not in unlabelled
    assert torch.allclose(unlabelled["loss"], recon + 1e-4 * kl)
    noclass = tiny("lionello-dcvae-digits-noclass")
    assert "classification" not in noclass.loss(x, noclass(x, labels), labels)
    # labels < 0 are ignored
    partial = labels.clone()
    partial[:3] = -1
    ce_part = F.cross_entropy(out.extras["logits"][3:], labels[3:])
    assert torch.allclose(m.loss(x, out, partial)["classification"], ce_part)


def test_kl_is_against_standard_normal_and_eval_uses_the_mean():
    m = tiny("lionello-ccvae-digits")
    x, labels = waves()
    m.eval()
    out = m(x)
    assert torch.equal(out.z, out.code.mean) and torch.equal(out.z, m.latent(x))
    m.train()
    torch.manual_seed(0)
    assert not torch.equal(m(x).z, m(x).code.mean)
    zero = torch.zeros(2, 20)
    fake = type(out)(recon=x[:2], code=type(out.code)(mean=zero, logvar=zero), z=zero)
    assert float(m.loss(x[:2], fake)["kl"]) == 0.0


@pytest.mark.parametrize("cls", [DCVAEConfig, CCVAEConfig])
def test_lengths_that_do_not_fit_the_strides_raise(cls):
    with pytest.raises(ConfigError, match="multiple of 32"):
        cls(input_shape=(4100,))
    with pytest.raises(ConfigError, match="multiple of 32"):
        config_from_dict(cls, {"input_shape": [16]})
    with pytest.raises(ConfigError, match="unknown activation"):
        cls(activation="swish")
    m = build_model("dc_vae" if cls is DCVAEConfig else "cc_vae",
                    {"input_shape": [64], **({"n_layers": 2, "residual_channels": 2} if cls is DCVAEConfig
                                             else {"channels": [2, 2, 2, 2, 2]})})
    with pytest.raises(ConfigError, match="expected items of shape"):
        m.encode(torch.zeros(1, 128))


def test_small_variants_are_smaller_and_configurable():
    def count(name):
        return sum(p.numel() for p in full_on_meta(name).parameters())

    assert count("lionello-dcvae-digits-small") < count("lionello-dcvae-digits") / 5
    assert count("lionello-ccvae-digits-small") < count("lionello-ccvae-digits") / 20
    m = DCVAE(DCVAEConfig(input_shape=(64,), n_layers=7, residual_channels=3, dilation_cycles=(3, 2)))
    enc, dec = m.dilation_blocks
    assert enc.dilations == dec.dilations == list(zip(dilation_schedule(7, 3), dilation_schedule(7, 2)))
    assert enc.sub1[0].conv.in_channels == 3


@pytest.mark.parametrize("name", ["lionello-dcvae-digits", "lionello-ccvae-drums"])
def test_preset_representation_gives_the_model_input(name):
    from models.representations import representation_from_dict

    p = get_preset(name)
    full = representation_from_dict(p.representation)
    assert full.feature_shape(3 * full.sample_rate) == tuple(p.model_config["input_shape"])
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    t = np.arange(rep.sample_rate // 2) / rep.sample_rate
    feats = rep.analyze((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)).features
    model = tiny(name).eval()
    assert feats.shape == model.input_shape
    with torch.no_grad():
        assert model(torch.from_numpy(feats)[None]).recon.shape == (1, *feats.shape)


def tones_and_bursts(n: int = 8, length: int = 1024) -> torch.Tensor:
    """Decaying sinusoids and decaying noise bursts, mean removed, peak 1 (the Waveform preprocessing)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length).float()
    items = []
    for k in range(n):
        env = torch.exp(-t / (60 + 40 * k))
        y = torch.sin(2 * math.pi * (0.01 + 0.013 * k) * t) if k % 2 == 0 else torch.randn(length, generator=g)
        y = y * env
        y = y - y.mean()
        items.append(y / y.abs().max())
    return torch.stack(items)


def test_small_ccvae_overfits_a_fixed_batch_of_waveforms():
    # Regression: with the tables' one-channel bottleneck a CPU-size CC-VAE stayed at the MSE of
    # silence (0.61 x the variance after these 500 steps); a 16-channel bottleneck learns.
    torch.manual_seed(0)
    x = tones_and_bursts()
    m = CCVAE(CCVAEConfig(input_shape=(1024,), channels=(8, 8, 16, 16, 32), bottleneck_channels=16, n_classes=0))
    assert m.enc_body[-1].out_channels == 16 and m.dec_dense.out_features == 16 * 1024 // 32
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    for _ in range(500):
        terms = m.loss(x, m(x))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        recon = m(x).recon
    assert float(torch.mean((recon - x) ** 2)) < 0.25 * float(x.var())
    assert float(recon.std()) > 0.5 * float(x.std())  # not silence


@pytest.mark.parametrize("cls", [DCVAEConfig, CCVAEConfig])
def test_bottleneck_channels_shape_the_code_path(cls):
    extra = {"n_layers": 2, "residual_channels": 2, "down_channels": 3} if cls is DCVAEConfig else {
        "channels": [2, 2, 2, 2, 2]}
    m = build_model("dc_vae" if cls is DCVAEConfig else "cc_vae",
                    {"input_shape": [128], "bottleneck_channels": 5, **extra})
    assert m.enc_mean.in_features == m.dec_dense.out_features == 5 * 4
    x, _ = waves(3, 128)
    out = m(x)
    assert out.recon.shape == x.shape and out.code.mean.shape == (3, 20)
    with pytest.raises(ConfigError, match="bottleneck_channels"):
        cls(bottleneck_channels=0)
