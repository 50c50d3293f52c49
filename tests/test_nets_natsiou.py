"""Natsiou's stacked convolutional AE: every preset at tiny size, the variants, the pad rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.config import config_from_dict
from models.errors import ConfigError
from models.nets.natsiou import NatsiouAE, NatsiouConfig, fit_to_multiple
from models.nets.registry import PRESETS, build_model, get_preset

get_preset("natsiou-best")  # loads the catalogue
NATSIOU = sorted(n for n in PRESETS if n.startswith("natsiou-"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny nets: thread start-up and spinning cost more than they save, and on a busy 2-core
    # machine two OpenMP threads make a 3 ms step take 400 ms.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name: str, **extra) -> NatsiouAE:
    p = get_preset(name)
    return build_model(p.model, {**p.model_config, **p.tiny_model, **extra})


def full_on_meta(name: str) -> NatsiouAE:
    """The full-size net without allocating it (shapes and layer types only)."""
    p = get_preset(name)
    with torch.device("meta"):
        return build_model(p.model, p.model_config)


def batch(n: int = 4, shape=(64, 64)) -> torch.Tensor:
    """Smooth spectrogram-like items in [0, 1]: harmonic stripes decaying over time."""
    f = torch.arange(shape[0]).float()[:, None]
    t = torch.arange(shape[1]).float()[None, :]
    items = [(0.5 + 0.5 * torch.cos(f * (k + 1) * 0.4)) * torch.exp(-t / (20 + 10 * k)) for k in range(n)]
    return torch.stack(items).clamp(0, 1)


def test_every_table_row_has_a_preset():
    expected = {"best", "baseline", "max-pool", "avg-pool", "no-pool", "dense-8192", "dense-4096",
                "dense-2048", "no-dense", "softmax", "sigmoid", "dropout-e", "dropout-d", "dropout-ed"}
    expected |= {f"{k}-{n}-{h}" for k in ("kr", "ar") for n in ("l1", "l2") for h in ("e", "d", "ed")}
    assert {f"natsiou-{s}" for s in expected} <= set(NATSIOU)
    for name in NATSIOU:
        p = get_preset(name)
        assert p.model == "natsiou_conv_ae"
        assert p.representation["kind"] == "logmel" == NatsiouAE.consumes
        assert (p.representation["n_mels"], p.representation["n_frames"]) == tuple(p.model_config["input_shape"])
        assert p.representation["win_length"] == 690 and p.representation["window"] == "blackman"


@pytest.mark.parametrize("name", NATSIOU)
def test_tiny_preset_shapes_range_and_learning(name):
    torch.manual_seed(0)
    model = tiny(name)
    x = batch()
    out = model(x)
    assert out.recon.shape == x.shape
    assert out.code.mean.shape == (4, *model.latent_shape)
    dense = model.config.dense
    assert model.latent_shape == ((dense,) if dense else (16, 1, 1))
    assert out.recon.min() >= 0 and out.recon.max() <= 1
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        terms = model.loss(x, model(x))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"].detach()))
    assert sum(losses[-5:]) / 5 < 0.7 * losses[0], losses[::8]


@pytest.mark.parametrize("name", NATSIOU)
def test_safetensors_round_trip_is_bit_identical(name, tmp_path):
    torch.manual_seed(1)
    model = tiny(name).eval()
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    torch.manual_seed(2)
    other = tiny(name).eval()
    other.load_state_dict(load_file(tmp_path / "w.safetensors"))
    x = batch()
    with torch.no_grad():
        assert torch.equal(model(x).recon, other(x).recon)
        assert torch.equal(model.encode(x).mean, other.encode(x).mean)


def test_full_size_baseline_matches_the_paper_layout():
    m = full_on_meta("natsiou-baseline")
    convs = list(m.enc_convs)
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 128, (4, 4), (2, 2)), (128, 256, (4, 4), (2, 2)), (256, 512, (4, 4), (2, 2))]
    assert isinstance(m.pool, nn.MaxPool2d)
    # 128 x 512 -> 512 x 2 x 8 = 8192 values; a square 8192-unit dense layer
    assert m.enc_dense.in_features == 8192 and m.enc_dense.out_features == 8192
    assert [c.out_channels for c in m.dec_convs] == [256, 128, 2]  # 2: softmax shape + level
    assert m.latent_shape == (8192,)
    assert full_on_meta("natsiou-best").latent_shape == (512, 2, 8)


@pytest.mark.parametrize(("name", "pool", "n_convs"), [
    ("natsiou-max-pool", nn.MaxPool2d, 3), ("natsiou-avg-pool", nn.AvgPool2d, 3), ("natsiou-no-pool", nn.Identity, 6)])
def test_pooling_variants(name, pool, n_convs):
    m = full_on_meta(name)
    assert isinstance(m.pool, pool)
    assert len(m.enc_convs) == len(m.dec_convs) == n_convs
    assert all(c.stride == (2, 2) for c in m.enc_convs)
    if n_convs == 6:  # each pooling replaced by a stride-2 conv with the same filters
        assert [c.out_channels for c in m.enc_convs] == [128, 128, 256, 256, 512, 512]
        assert isinstance(m.unpool, nn.Identity)
    else:
        assert isinstance(m.unpool, nn.Upsample)
    # same latent grid with or without pooling
    assert m.enc_dense.in_features == 8192


@pytest.mark.parametrize(("name", "units"), [
    ("natsiou-dense-8192", 8192), ("natsiou-dense-4096", 4096), ("natsiou-dense-2048", 2048), ("natsiou-no-dense", 0)])
def test_dense_variants(name, units):
    m = full_on_meta(name)
    if units:
        assert m.enc_dense.out_features == units and m.dec_dense.in_features == units
        assert m.latent_shape == (units,)
    else:
        assert m.enc_dense is None and m.dec_dense is None
        assert not any(isinstance(mod, nn.Linear) for mod in m.modules())


@pytest.mark.parametrize(("name", "enc", "dec"), [
    ("natsiou-baseline", False, False), ("natsiou-dropout-e", True, False),
    ("natsiou-dropout-d", False, True), ("natsiou-dropout-ed", True, True)])
def test_dropout_variants(name, enc, dec):
    m = tiny(name)
    for module, on in ((m.enc_dropout, enc), (m.dec_dropout, dec)):
        assert isinstance(module, nn.Dropout) == on
        if on:
            assert module.p == 0.3
    # dropout acts in training only
    x = batch()
    m.train()
    torch.manual_seed(0)
    a = m(x).recon
    b = m(x).recon
    assert torch.equal(a, b) != (enc or dec)
    m.eval()
    assert torch.equal(m(x).recon, m(x).recon)


@pytest.mark.parametrize("kind", ["l1", "l2"])
@pytest.mark.parametrize("half", ["e", "d", "ed"])
def test_kernel_regulariser_is_eq_5_and_6_on_the_right_half(kind, half):
    m = tiny(f"natsiou-kr-{kind}-{half}")
    enc = [c.weight for c in m.enc_convs] + [m.enc_dense.weight]
    dec = [m.dec_dense.weight] + [c.weight for c in m.dec_convs]
    ws = {"e": enc, "d": dec, "ed": enc + dec}[half]
    p = 1 if kind == "l1" else 2
    expected = 0.01 / (2 * sum(w.numel() for w in ws)) * sum(w.abs().pow(p).sum() for w in ws)
    assert torch.allclose(m.regularization(), expected)
    x = batch()
    terms = m.loss(x, m(x))
    assert torch.allclose(terms["loss"], terms["recon"] + expected)
    assert float(tiny("natsiou-baseline").regularization()) == 0.0


@pytest.mark.parametrize("kind", ["l1", "l2"])
@pytest.mark.parametrize("half", ["e", "d", "ed"])
def test_activity_regulariser_uses_kept_activations(kind, half):
    m = tiny(f"natsiou-ar-{kind}-{half}")
    x = batch()
    out = m(x)
    enc = [v for k, v in out.extras.items() if k.startswith("act/encoder/")]
    dec = [v for k, v in out.extras.items() if k.startswith("act/decoder/")]
    assert len(enc) == 4 and len(dec) == 4  # 3 convs + dense; dense + 2 convs + output
    assert torch.equal(dec[-1].squeeze(1), out.recon)
    assert enc[-1].shape == out.z.shape
    acts = {"e": enc, "d": dec, "ed": enc + dec}[half]
    p = 1 if kind == "l1" else 2
    expected = 0.01 / (2 * sum(a.numel() for a in acts)) * sum(a.abs().pow(p).sum() for a in acts)
    terms = m.loss(x, out)
    assert torch.allclose(terms["activity_reg"], expected)
    assert torch.allclose(terms["loss"], terms["recon"] + expected)
    assert tiny("natsiou-baseline")(x).extras == {}


def _scaled(name: str, scale: float) -> NatsiouAE:
    torch.manual_seed(3)
    m = tiny(name)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    return m.eval()


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_sigmoid_output_in_unit_range(scale):
    y = _scaled("natsiou-sigmoid", scale).decode(torch.randn(8, 64) * scale)
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_softmax_output_is_a_per_frame_softmax_scaled_by_a_level(scale):
    m = _scaled("natsiou-softmax", scale)
    z = torch.randn(8, 64) * scale
    y = m.decode(z)
    assert y.shape == (8, 64, 64)
    assert y.min() >= 0 and y.max() <= 1
    # rebuild from the last layer's two channels: softmax over mel bands per frame, / frame max,
    # times sigmoid(level averaged over bands)
    cap = {}
    m.dec_convs[-1].register_forward_hook(lambda mod, i, o: cap.setdefault("h", o))
    m.decode(z)
    h = cap["h"]
    sm = torch.softmax(h[:, 0], dim=1)
    expected = sm / sm.amax(dim=1, keepdim=True) * torch.sigmoid(h[:, 1].mean(dim=1, keepdim=True))
    assert torch.allclose(y, expected, atol=1e-6)
    # each frame's loudest band is the frame's level, in (0, 1)
    assert torch.allclose(y.amax(dim=1), torch.sigmoid(h[:, 1].mean(dim=1)), atol=1e-6)


@pytest.mark.parametrize("shape", [(128, 500), (100, 512), (32, 64)])
def test_shapes_that_do_not_fit_the_strides_raise(shape):
    with pytest.raises(ConfigError, match="multiples of 64"):
        NatsiouConfig(input_shape=shape)
    with pytest.raises(ConfigError, match="multiples of 64"):
        config_from_dict(NatsiouConfig, {"input_shape": list(shape), "pooling": "none"})


def test_fewer_stages_accept_smaller_inputs_and_pad_rule():
    assert fit_to_multiple(501, 64) == 512 and fit_to_multiple(512, 64) == 512 and fit_to_multiple(3, 64) == 64
    m = NatsiouAE(NatsiouConfig(input_shape=(16, 48), channels=(2, 4), dense=0))
    assert m(torch.rand(2, 16, 48)).recon.shape == (2, 16, 48)
    with pytest.raises(ConfigError, match="expected items of shape"):
        m.encode(torch.rand(2, 16, 32))


def test_bad_options_raise():
    for bad in ({"kernel_size": 3}, {"dense": -1}, {"dropout": 1.0}, {"pooling": "median"}, {"output": "relu"}):
        with pytest.raises(ConfigError):
            config_from_dict(NatsiouConfig, bad)


@pytest.mark.parametrize("name", ["natsiou-best", "natsiou-baseline"])
def test_preset_representation_gives_the_model_input(name):
    from models.representations import representation_from_dict

    p = get_preset(name)
    full = representation_from_dict(p.representation)
    assert full.feature_shape(4 * 16000) == tuple(p.model_config["input_shape"])  # a 4 s NSynth note
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    t = np.arange(rep.sample_rate) / rep.sample_rate
    feats = rep.analyze((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)).features
    model = tiny(name).eval()
    assert feats.shape == model.input_shape
    with torch.no_grad():
        assert model(torch.from_numpy(feats)[None]).recon.shape == (1, *feats.shape)
