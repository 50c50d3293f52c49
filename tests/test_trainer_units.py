"""The trainer's pure pieces, in-process: config resolution, schedule, data order, items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import ConfigError
from trainer.config import RunConfig, TrainConfig, resolve_config, train_config_from_preset
from trainer.data import build_items, fit_length, input_shape_for
from trainer.loop import batches, epoch_order, lr_at, rng_state, set_rng_state, steps_per_epoch


def test_set_overrides_reach_model_train_and_rep():
    cfg = resolve_config("roche-deep-ae", ["model.latent_dim=8", "train.lr=1e-4", "rep.hop_length=128"],
                         tiny=True, seed=5)
    assert cfg.model_config["latent_dim"] == 8
    assert cfg.train.lr == 1e-4
    assert cfg.representation["hop_length"] == 128
    assert cfg.model_config["input_shape"] == [33]  # the tiny override
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.nope=1", "valid model keys: .*model.latent_dim"),
        ("train.learning_rate=1", "valid training keys: .*train.lr"),
        ("lr=1", "model., train. or rep."),
        ("model.latent_dim=big", "latent_dim"),
        ("train.batch_size=0", "batch_size must be positive"),
        ("novalue", "key=value"),
    ],
)
def test_bad_overrides_name_the_valid_keys(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("roche-deep-ae", [override])


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ConfigError, match="roche-deep-ae"):
        resolve_config("nope", [])


def test_preset_training_keys_we_do_not_use_are_kept_aside():
    tc = train_config_from_preset({"optimizer": "adam", "lr": 0.01, "patience": 3})
    assert tc.lr == 0.01 and tc.patience == 3 and tc.extra == {"optimizer": "adam"}


def test_config_json_from_another_schema_version_is_refused():
    d = resolve_config("roche-pca", []).to_dict()
    d["schema_version"] = 99
    with pytest.raises(ConfigError, match="schema version 99"):
        RunConfig.from_dict(d)


def test_lr_schedule():
    kw = dict(lr=1.0, total_steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(50, **kw) == 1.0  # constant after warm-up
    cos = dict(kw, schedule="cosine")
    assert lr_at(10, **cos) == pytest.approx(1.0)
    assert lr_at(60, **cos) == pytest.approx(0.55)
    assert lr_at(110, **cos) == pytest.approx(0.1)
    assert lr_at(500, **cos) == pytest.approx(0.1)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a = epoch_order(50, seed=1, epoch=2)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, epoch_order(50, seed=1, epoch=2))
    assert not np.array_equal(a, epoch_order(50, seed=1, epoch=3))
    assert not np.array_equal(a, epoch_order(50, seed=2, epoch=2))
    assert [len(b) for b in batches(a, 16)] == [16, 16, 16, 2]
    assert steps_per_epoch(50, 16) == 4
    # two ranks share each batch without overlap, equally (tests/test_trainer_distributed.py)
    r0, r1 = batches(a, 16, rank=0, world_size=2), batches(a, 16, rank=1, world_size=2)
    assert [len(b) for b in r0] == [len(b) for b in r1] == [8, 8, 8, 1]
    assert steps_per_epoch(50, 16, world_size=2) == 4 and steps_per_epoch(49, 16, world_size=2) == 3


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    from models.checkpoints.checkpoint import load_training_state, save_training_state

    save_training_state(tmp_path / "s.pt", {"rng": rng_state()})
    expected = (np.random.rand(3), torch.rand(3))
    set_rng_state(load_training_state(tmp_path / "s.pt")["rng"])
    assert np.array_equal(np.random.rand(3), expected[0]) and torch.equal(torch.rand(3), expected[1])


def test_items_frames_windows_and_clips():
    feats = [np.ones((5, 3), np.float32), None, np.zeros((4, 3), np.float32)]
    feats[2][1] = 0.5  # one non-silent frame
    classes = np.array([0, 1, 1])
    frames = build_items(feats, np.array([0, 1, 2]), classes, mode="frames", drop_silent=True)
    assert frames.x.shape == (6, 3) and frames.y.tolist() == [0] * 5 + [1] and frames.clip.tolist() == [0] * 5 + [2]
    windows = build_items(feats, np.array([0, 2]), classes, mode="windows", seq_len=2, seq_hop=1)
    assert windows.x.shape == (4 + 3, 2, 3)
    long_window = build_items(feats, np.array([2]), classes, mode="windows", seq_len=6)
    assert long_window.x.shape == (1, 6, 3) and long_window.x[0, 4:].sum() == 0  # padded
    clips = [np.ones((2, 4)), np.ones((2, 6)), np.ones((2, 6))]
    assert input_shape_for(clips, np.array([0, 1, 2]), mode="clips", seq_len=0) == (2, 6)
    items = build_items(clips, np.array([0, 1]), np.array([0, 0, 0]), mode="clips")
    assert items.x.shape == (2, 2, 6) and items.x[0, :, 4:].sum() == 0
    assert fit_length(np.arange(5), 3, axis=0).tolist() == [0, 1, 2]


def test_train_config_validates():
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig(patience=-1)


def test_comparison_table_layout():
    from trainer.compare_cmd import comparison_table, latent_override

    results = {"roche-pca": {"4": {"rmse": {"mean": 0.1, "std": 0.01}}, "8": {}},
               "roche-deep-ae": {"4": {"rmse": {"mean": 0.05, "std": 0.02}}, "8": {"rmse": {"mean": 0.04, "std": 0.0}}}}
    table = comparison_table(results, ["4", "8"], metric="rmse").splitlines()
    assert table[0] == "| Model | d=4 | d=8 |"
    assert table[2] == "| roche-pca | 0.1000 ± 0.0100 | n/a |"
    assert table[3] == "| roche-deep-ae | 0.0500 ± 0.0200 | 0.0400 ± 0.0000 |"
    assert latent_override("roche-pca", 8) == "model.n_components=8"
    assert latent_override("roche-deep-ae", 8) == "model.latent_dim=8"


# --- Lionello's alternating updates and best-checkpoint selection ------------------------------
def _tiny_lionello(name="lionello-ccvae-digits-small", n_classes=2):
    from models.nets.registry import build_model

    cfg = resolve_config(name, tiny=True)
    mc = dict(cfg.model_config)
    if mc["n_classes"]:
        mc["n_classes"] = n_classes
    torch.manual_seed(0)
    return build_model(cfg.model, mc)


def test_lionello_presets_alternate_and_select_on_the_vae_objective():
    for name in ("lionello-dcvae-digits", "lionello-ccvae-drums-small", "lionello-dcvae-digits-noclass"):
        tc = resolve_config(name).train
        assert tc.alternating and tc.lr_classifier == 1e-3 and tc.select_on == "vae", name
        assert "alternating" not in tc.extra and "lr_classifier" not in tc.extra
    tc = resolve_config("roche-vae").train
    assert not tc.alternating and tc.select_on == "loss"
    with pytest.raises(ConfigError, match="lr_classifier must be positive"):
        TrainConfig(lr_classifier=0.0)


def test_alternating_groups_split_the_classifier_from_the_vae():
    from trainer.loop import alternating_groups

    m = _tiny_lionello()
    vae, head = alternating_groups(m)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    classifier, encoder = ids(m.classifier.parameters()), ids(m.encoder_parameters())
    decoder = ids([*m.dec_body.parameters(), *m.dec_dense.parameters()])
    assert ids(vae) == ids(m.parameters()) - classifier and len(vae) == len(ids(vae))
    # the cross-entropy gradient moves the classifier and, through z, the encoder; never the decoder
    assert ids(head) == classifier | encoder and not ids(head) & decoder
    # no classifier: one group of everything; a model without the API is refused
    noclass = _tiny_lionello("lionello-dcvae-digits-noclass")
    assert alternating_groups(noclass) == (list(noclass.parameters()), [])
    from models.nets.registry import build_model

    deep = resolve_config("roche-deep-ae", tiny=True)
    ae = build_model(deep.model, deep.model_config)
    with pytest.raises(ConfigError, match="alternating"):
        alternating_groups(ae)


@pytest.mark.parametrize("lrs, moved, still", [((1e-2, 0.0), "dec_dense", "classifier"),
                                                ((0.0, 1e-2), "classifier", "dec_dense")])
def test_alternating_step_updates_each_group_with_its_own_optimizer(lrs, moved, still):
    from trainer.loop import alternating_groups, alternating_step

    m = _tiny_lionello()
    vae, head = alternating_groups(m)
    opts = (torch.optim.Adam(vae, lr=1.0), torch.optim.Adam(head, lr=1.0))
    before = {k: v.detach().clone() for k, v in m.state_dict().items()}
    x, y = 0.3 * torch.randn(4, 256), torch.tensor([0, 1, 0, 1])
    terms = alternating_step(m, m, x, y, opts, torch.amp.GradScaler("cpu", enabled=False), lrs=lrs,
                             grad_clip=1.0, amp=False)
    assert set(terms) == {"recon", "kl", "vae", "classification", "loss"}
    assert terms["loss"] == pytest.approx(terms["vae"] + 1.01 * terms["classification"], rel=1e-5)
    after = m.state_dict()
    changed = lambda prefix: any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix))  # noqa: E731
    assert changed(moved) and not changed(still)
    assert changed("enc_mean")  # both objectives reach the encoder
    assert [g["lr"] for o in opts for g in o.param_groups] == list(lrs)


def test_alternating_cannot_be_switched_on_resume(tmp_path):
    from trainer.run_setup import TrainOptions, _apply_resume_overrides

    saved = resolve_config("lionello-ccvae-digits-small", tiny=True)
    opts = TrainOptions(run_dir=tmp_path, resume=True, overrides=("train.alternating=false",))
    with pytest.raises(ConfigError, match="alternating"):
        _apply_resume_overrides(saved, opts)
    opts = TrainOptions(run_dir=tmp_path, resume=True, overrides=("train.select_on=loss",))
    assert _apply_resume_overrides(saved, opts).train.select_on == "loss"
