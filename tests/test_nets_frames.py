"""Frame models (PCA, shallow/deep AE, LSTM-AE, frame VAE): every preset at tiny size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from models.errors import ConfigError
from models.nets.base import apply_gains
from models.nets.dense import band_gains
from models.nets.pca import PCA, NotFittedError, PCAConfig
from models.nets.presets_frames import FRAME_PRESETS
from models.nets.registry import build_model, get_preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BATCH = 24


def tiny(name: str, seed: int = 0, **changes):
    """The tiny version of preset ``name`` (seeded), with optional extra config changes."""
    preset = get_preset(name)
    torch.manual_seed(seed)
    return build_model(preset.model, {**preset.model_config, **preset.tiny_model, **changes})


def frames(shape: tuple[int, ...], n: int = BATCH, seed: int = 1) -> torch.Tensor:
    """Structured [0, 1] frames: positive mixes of 3 spectral templates, each frame max-scaled."""
    g = torch.Generator().manual_seed(seed)
    n_bins = shape[-1]
    bins = torch.arange(n_bins, dtype=torch.float32)
    templates = torch.stack([torch.exp(-0.5 * ((bins - c) / 2.0) ** 2) for c in (4.0, 12.0, 24.0)])
    lead = (n, *shape[:-1])
    mix = torch.rand(*lead, 3, generator=g)
    x = mix @ templates
    return x / x.amax(dim=-1, keepdim=True)


def ready(name: str, seed: int = 0, **changes):
    """Tiny model, fitted if it is PCA, with a batch of its input."""
    model = tiny(name, seed, **changes)
    x = frames(model.input_shape)
    if not model.trainable:
        model.fit(x.reshape(-1, model.input_shape[-1]))
    return model, x


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_shapes(name):
    model, x = ready(name)
    model.eval()
    code = model.encode(x)
    assert code.mean.shape == (BATCH, *model.latent_shape)
    assert (code.logvar is not None) == model.variational
    out = model(x)
    assert out.recon.shape == x.shape
    assert torch.isfinite(out.recon).all()
    assert model.consumes == "stft_frames"


@pytest.mark.parametrize("name", [n for n in FRAME_PRESETS if n != "roche-pca"])
def test_loss_falls(name):
    model, x = ready(name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        terms = model.loss(x, model(x))
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["recon"].detach()))
    assert losses[-1] < 0.6 * losses[0], losses


def test_deep_ae_learns_more_than_the_mean_frame():
    model, x = ready("roche-deep-ae")
    baseline = float(torch.mean((x - x.mean(dim=0)) ** 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(150):
        opt.zero_grad()
        model.loss(x, model(x))["loss"].backward()
        opt.step()
    with torch.no_grad():
        assert float(model.loss(x, model(x))["recon"]) < 0.25 * baseline


def test_pca_exact_at_full_rank():
    x = frames((33,), n=50)  # rank 3 plus the mean
    model = PCA(PCAConfig(input_shape=(33,), n_components=3)).fit(x)
    torch.testing.assert_close(model.decode(model.latent(x)), x, atol=1e-5, rtol=0)
    # two components cannot: the error is the variance left in the third
    two = PCA(PCAConfig(input_shape=(33,), n_components=2)).fit(x)
    assert torch.mean((two.decode(two.latent(x)) - x) ** 2) > 1e-4
    assert float(model.explained_variance_ratio.sum()) == pytest.approx(1.0, abs=1e-5)


def test_pca_matches_sklearn_and_streams():
    from sklearn.decomposition import PCA as SkPCA

    rng = np.random.default_rng(3)
    x = rng.random((200, 20)).astype(np.float32) @ rng.random((20, 20)).astype(np.float32)
    sk = SkPCA(n_components=5).fit(x)
    ours = PCA(PCAConfig(input_shape=(20,), n_components=5)).fit(torch.from_numpy(x))
    np.testing.assert_allclose(ours.explained_variance.numpy(), sk.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(ours.mean.numpy(), sk.mean_, rtol=1e-5)
    dots = np.abs(np.sum(ours.components.numpy() * sk.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-4)
    streamed = PCA(PCAConfig(input_shape=(20,), n_components=5)).fit(
        torch.from_numpy(c) for c in np.array_split(x, 7)
    )
    torch.testing.assert_close(streamed.components, ours.components, atol=1e-5, rtol=0)
    assert int(streamed.n_samples_seen) == 200


def test_pca_whiten_and_errors():
    x = frames((33,), n=60)
    model = PCA(PCAConfig(input_shape=(33,), n_components=3, whiten=True)).fit(x)
    z = model.latent(x)
    torch.testing.assert_close(z.var(dim=0), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode(z), x, atol=1e-5, rtol=0)
    with pytest.raises(NotFittedError):
        PCA(PCAConfig(input_shape=(33,), n_components=3)).encode(x)
    with pytest.raises(ConfigError):
        PCA(PCAConfig(input_shape=(33,), n_components=40))
    with pytest.raises(ConfigError):
        PCA(PCAConfig(input_shape=(33,), n_components=3)).fit(x[:, :10])


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_eval_is_deterministic_and_vae_uses_mean(name):
    model, x = ready(name)
    model.eval()
    a, b = model(x), model(x)
    assert torch.equal(a.recon, b.recon)
    if model.variational:
        assert torch.equal(a.z, a.code.mean)
        model.train()
        # training samples around the mean; the map's code is still the mean
        assert not torch.equal(model(x).z, model.encode(x).mean)
        assert torch.equal(model.latent(x), model.encode(x).mean)


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_gains(name):
    model, x = ready(name)
    model.eval()
    with torch.no_grad():
        z = model.latent(x)
        units = model.latent_shape[-1]
        assert torch.equal(model.decode(apply_gains(z, torch.ones(units))), model.decode(z))
        zeroed = model.decode(apply_gains(z, torch.zeros(units)))
        assert torch.equal(zeroed, model.decode(torch.zeros_like(z)))
        half = model.decode(apply_gains(z, torch.full((units,), 0.5)))
        assert not torch.allclose(half, model.decode(z))


def test_hybrid_is_bias_free_with_sigmoid_output():
    for name in ("colonel-hybrid", "colonel-hybrid-8", "colonel-sigmoid", "colonel-shallow"):
        model = tiny(name)
        assert not [n for n, _ in model.named_parameters() if "bias" in n]
    model = tiny("colonel-hybrid")
    with torch.no_grad():
        y = model(torch.randn(BATCH, 33) * 50).recon
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        # no bias anywhere: a zeroed latent passes zeros through ReLUs, and sigmoid(0) = 0.5
        z0 = model.decode(apply_gains(model.latent(frames((33,))), torch.zeros(4)))
        torch.testing.assert_close(z0, torch.full_like(z0, 0.5))
        latent = model.latent(frames((33,)))
        assert float(latent.min()) > 0.0 and float(latent.max()) < 1.0  # sigmoid latent
    assert tiny("colonel-hybrid-8").latent_shape == (8,)


def test_layer_plan_of_hybrid():
    preset = get_preset("colonel-hybrid")
    model = build_model(preset.model, preset.model_config)
    widths = [m.weight.shape for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(512, 1025), (256, 512), (128, 256), (64, 128), (128, 64), (256, 128), (512, 256), (1025, 512)]
    acts = [type(m).__name__ for m in model.modules() if not isinstance(m, (torch.nn.Linear, torch.nn.Sequential))]
    assert acts[1:] == ["ReLU"] * 3 + ["Sigmoid"] + ["ReLU"] * 3 + ["Sigmoid"]


@torch.no_grad()
def test_l2_regularization():
    model = tiny("colonel-hybrid", l2=1e-3, l2_mode="norm")
    weights = [p.detach().double() for p in model.parameters()]
    expected = 1e-3 * math.sqrt(sum(float((w**2).sum()) for w in weights))
    assert float(model.regularization()) == pytest.approx(expected, rel=1e-5)
    squared = tiny("colonel-hybrid", l2=1e-3, l2_mode="squared")
    assert float(squared.regularization()) == pytest.approx(expected**2 / 1e-3, rel=1e-5)
    assert float(tiny("colonel-hybrid", l2=0.0).regularization()) == 0.0
    lstm = tiny("roche-lstm-ae", l2=1e-2)
    assert float(lstm.regularization()) > 0.0
    x = frames((33,))
    out = model(x)
    terms = model.loss(x, out)
    assert float(terms["loss"]) == pytest.approx(float(terms["recon"]) + expected, rel=1e-5)


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_safetensors_round_trip_is_bit_identical(name, tmp_path):
    model, x = ready(name, seed=0)
    model.eval()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh = tiny(name, seed=123)
    fresh.load_state_dict(load_file(str(path)))
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x).recon, model(x).recon)
        assert torch.equal(fresh.latent(x), model.latent(x))


def test_lstm_is_per_frame_and_causal_decoder():
    model = tiny("roche-lstm-ae")
    assert model.sequence is True
    model.eval()
    with torch.no_grad():
        longer = frames((20, 33), n=2)  # any sequence length works, not only seq_len
        z = model.latent(longer)
        assert z.shape == (2, 20, 4)
        y = model.decode(z)
        z2 = z.clone()
        z2[:, 10:] += 1.0
        y2 = model.decode(z2)
        assert torch.equal(y[:, :10], y2[:, :10])  # unidirectional decoder: the past is unchanged
        assert not torch.allclose(y[:, 10:], y2[:, 10:])
        # the encoder is bidirectional: a late frame changes early codes
        changed = longer.clone()
        changed[:, -1] = 0.0
        assert not torch.allclose(model.latent(changed)[:, 0], z[:, 0])


@torch.no_grad()
def test_vae_loss_terms():
    model, x = ready("roche-vae", kl_weight=0.25)
    model.train()
    out = model(x)
    terms = model.loss(x, out)
    assert set(terms) == {"recon", "recon_sum", "kl", "loss"}
    assert float(terms["kl"]) > 0.0
    assert float(terms["recon_sum"]) == pytest.approx(float(terms["recon"]) * 33, rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(float(terms["recon_sum"]) + 0.25 * float(terms["kl"]), rel=1e-5)
    mean_model, _ = ready("roche-vae", recon_reduction="mean", kl_weight=0.0)
    t = mean_model.loss(x, mean_model(x))
    assert float(t["loss"]) == pytest.approx(float(t["recon"]), rel=1e-6)


def test_band_gains():
    g = band_gains(10, [2, 4, 6, 8], [1, 2, 3, 4, 5])
    assert g.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    g = band_gains(6, [0, 3, 3, 6], [9, 1, 7, 2, 8])  # empty first, third and last bands
    assert g.tolist() == [1, 1, 1, 2, 2, 2]
    with pytest.raises(ConfigError):
        band_gains(10, [4, 2, 6, 8], [1, 2, 3, 4, 5])
    with pytest.raises(ConfigError):
        band_gains(10, [2, 4, 6], [1, 2, 3, 4, 5])
    with pytest.raises(ConfigError):
        band_gains(10, [2, 4, 6, 11], [1, 2, 3, 4, 5])


def test_bad_configs_are_config_errors():
    with pytest.raises(ConfigError):
        tiny("colonel-hybrid", hidden_activation="swishy")
    with pytest.raises(ConfigError):
        tiny("colonel-hybrid", hidden_activation=["relu", "relu"])  # 3 hidden layers
    with pytest.raises(ConfigError):
        tiny("colonel-hybrid", bogus=1)
    with pytest.raises(ConfigError):
        tiny("roche-lstm-ae", input_shape=[33])


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_preset_matches_its_representation(name):
    from models.representations import REPRESENTATION_PRESETS, representation_from_dict

    preset = get_preset(name)
    paper = "roche" if name.startswith("roche") else "colonel"
    assert preset.representation == REPRESENTATION_PRESETS[paper]
    full = representation_from_dict(preset.representation)
    assert full.feature_shape(16000)[-1] == preset.model_config["input_shape"][-1]
    # the tiny model eats what the tiny representation makes of a real sound
    rep = representation_from_dict({**preset.representation, **preset.tiny_representation})
    t = np.arange(4000) / rep.sample_rate
    feats = rep.analyze((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)).features
    model = tiny(name)
    x = torch.from_numpy(feats)
    if getattr(model, "sequence", False):
        x = x[None, : model.input_shape[0]]
    if not model.trainable:
        model.fit(x)
    model.eval()
    with torch.no_grad():
        assert model(x).recon.shape == x.shape


@pytest.mark.parametrize("name", FRAME_PRESETS)
def test_config_json_round_trip(name):
    import json

    from models.config import config_from_dict, config_to_dict

    model = tiny(name)
    again = config_from_dict(type(model.config), json.loads(json.dumps(config_to_dict(model.config))))
    assert again == model.config
