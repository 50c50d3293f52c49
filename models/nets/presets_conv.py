"""Named presets for Natsiou's stacked conv AE and Lionello & Purwins' waveform VAEs.

Natsiou: every row of Tables I-IV is a preset, generated from the table below. All share the
paper's baseline (max pooling, 8192-unit dense layer, softmax output, no regulariser) and change
one thing, as the paper's experiments do; ``natsiou-best`` is the best row of all (Table IV, no
dense layer). The log-mel is the paper's: 16 kHz, n_fft 1024, Blackman window of 690 samples,
128 mel bands, scaled to [0, 1]. The hop is not given: 125 samples gives 513 frames for a 4 s
NSynth note, which the representation crops to 512 (a multiple of 64, see ``natsiou.py``).

Lionello: DC-VAE and CC-VAE for spoken digits (8 kHz, 4096 samples, 10 classes, classifier of 3
hidden layers of 10 units, 20-d latent) and drums (22.05 kHz, 16384 samples, 5 k-means classes,
one hidden layer of 5 units, and the 30-d latent the paper's section 6 fixes for drums). The
``-small`` variants fit a CPU: 10 residual layers of 16 channels instead of 50 of 32, or conv
widths divided by 8. The small CC-VAE has a bottleneck of 16 channels instead of the tables' one:
with one channel it cannot even overfit 8 spoken digits (each 32-sample stretch of its output is
a function of ~4 scalars; the authors' code adds a 4096 x 4096 output layer the tables do not
list); with 16 it does (recon MSE 0.2-0.35 x the clips' variance in 200 Adam steps against 0.95).
The small DC-VAE keeps the tables' one-channel path: widening it did not help in our CPU tests
(its posterior collapsed either way). Small presets train the VAE at learning rate 2e-3 (the
classification update keeps the paper's 1e-3). Otherwise training follows section 3.1: two Adam
optimisers updating alternately (``alternating``), learning rate 5e-4 for the VAE terms and 1e-3
(``lr_classifier``) for the classification term; 117 epochs (the digits run). The batch size is
not given: 32. ``best`` is chosen on the validation VAE objective (``select_on="vae"``: recon +
KL), not on the total: the total includes the validation cross-entropy, whose minimum comes
early (the classifier overfits long before the reconstruction stops improving), so it picked an
early epoch.
"""

from __future__ import annotations

from typing import Any

from models.nets.registry import Preset, register_preset

NATSIOU_PAPER = (
    "Natsiou, Longo, O'Leary. An investigation of the reconstruction capacity of stacked "
    "convolutional autoencoders for log-mel-spectrograms"
)
LIONELLO_PAPER = (
    "Lionello, Purwins. End-to-end dilated variational autoencoder with bottleneck "
    "discriminative loss for sound morphing: a preliminary study"
)

NATSIOU_REPRESENTATION: dict[str, Any] = {
    "kind": "logmel",
    "sample_rate": 16000,
    "n_fft": 1024,
    "win_length": 690,
    "window": "blackman",
    "n_mels": 128,
    "hop_length": 125,
    "n_frames": 512,
}
#: a 64 x 64 log-mel: the smallest that three stages (x64) accept
NATSIOU_TINY_REPRESENTATION: dict[str, Any] = {
    "sample_rate": 8000, "n_fft": 256, "win_length": 256, "n_mels": 64, "hop_length": 64, "n_frames": 64,
}
NATSIOU_TRAINING: dict[str, Any] = {
    "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 200, "patience": 10, "loss": "mse",
}
NATSIOU_TINY = {"input_shape": [64, 64], "channels": [4, 8, 16]}
#: dense sizes at full size -> tiny size (the tiny grid has 16 values)
_TINY_DENSE = {8192: 64, 4096: 32, 2048: 16, 0: 0}

#: (preset suffix, overrides of the baseline, table row)
NATSIOU_VARIANTS: list[tuple[str, dict[str, Any], str]] = [
    ("baseline", {}, "Section VI.A baseline (= Table I 'No Reg')"),
    ("best", {"dense": 0}, "best row of all tables: Table IV 'No Dense'"),
    ("max-pool", {"pooling": "max"}, "Table II 'Max Pooling'"),
    ("avg-pool", {"pooling": "avg"}, "Table II 'Average Pooling'"),
    ("no-pool", {"pooling": "none"}, "Table II 'No Pooling' (three more stride-2 convolutions)"),
    ("dense-8192", {"dense": 8192}, "Table III 'Latent Dim 8192'"),
    ("dense-4096", {"dense": 4096}, "Table III 'Latent Dim 4096'"),
    ("dense-2048", {"dense": 2048}, "Table III 'Latent Dim 2048'"),
    ("no-dense", {"dense": 0}, "Table IV 'No Dense'"),
    ("softmax", {"output": "softmax"}, "softmax output (the paper's)"),
    ("sigmoid", {"output": "sigmoid"}, "sigmoid output"),
]
_HALVES = {"e": "encoder", "d": "decoder", "ed": "both"}
for _code, _half in _HALVES.items():
    NATSIOU_VARIANTS.append(
        (f"dropout-{_code}", {"dropout_on": _half, "dropout": 0.3}, f"Table I 'Dropout {_code.upper()}'")
    )
for _kind, _field in (("kr", "kernel_reg"), ("ar", "activity_reg")):
    for _norm in ("l1", "l2"):
        for _code, _half in _HALVES.items():
            NATSIOU_VARIANTS.append((
                f"{_kind}-{_norm}-{_code}",
                {_field: _norm, f"{_field}_on": _half},
                f"Table I '{_kind.upper()} {_norm.upper()} {_code.upper()}'",
            ))

for _suffix, _over, _row in NATSIOU_VARIANTS:
    _cfg: dict[str, Any] = {
        "input_shape": [128, 512], "channels": [128, 256, 512], "pooling": "max", "dense": 8192,
        "output": "softmax", **_over,
    }
    register_preset(Preset(
        name=f"natsiou-{_suffix}", model="natsiou_conv_ae", model_config=_cfg,
        representation=dict(NATSIOU_REPRESENTATION), training=dict(NATSIOU_TRAINING),
        paper=NATSIOU_PAPER,
        description=f"Stacked conv AE on 128 x 512 log-mel, {_row}.",
        tiny_model={**NATSIOU_TINY, "dense": _TINY_DENSE[_cfg["dense"]]},
        tiny_representation=dict(NATSIOU_TINY_REPRESENTATION),
    ))


# --- Lionello & Purwins -------------------------------------------------------------------
_DIGITS = {
    "representation": {"kind": "waveform", "sample_rate": 8000, "n_samples": 4096},
    "model": {"input_shape": [4096], "latent_dim": 20, "n_classes": 10, "classifier_hidden": [10, 10, 10]},
    "what": "spoken digits (8 kHz, 4096 samples, 10 classes)",
}
_DRUMS = {
    "representation": {"kind": "waveform", "sample_rate": 22050, "n_samples": 16384},
    "model": {"input_shape": [16384], "latent_dim": 30, "n_classes": 5, "classifier_hidden": [5]},
    "what": "drum hits (22.05 kHz, 16384 samples, 5 k-means classes)",
}
LIONELLO_TRAINING: dict[str, Any] = {
    "optimizer": "adam", "lr": 5e-4, "lr_classifier": 1e-3, "alternating": True,
    "batch_size": 32, "epochs": 117, "select_on": "vae",
}
#: CPU size: 4x the paper's rate (at 5e-4 a small net needs thousands of steps to leave silence)
LIONELLO_SMALL_TRAINING: dict[str, Any] = {**LIONELLO_TRAINING, "lr": 2e-3}
_ARCH: dict[str, dict[str, Any]] = {
    "dcvae": {"model": "dc_vae", "full": {},
              "small": {"n_layers": 10, "residual_channels": 16, "front_channels": 8},
              "tiny": {"n_layers": 4, "residual_channels": 4, "front_channels": 4, "front_kernel": 8},
              "what": "DC-VAE (Table 1: 50 gated dilated residual layers)"},
    "ccvae": {"model": "cc_vae", "full": {},
              "small": {"channels": [16, 16, 32, 64, 128], "bottleneck_channels": 16},
              "tiny": {"channels": [4, 4, 8, 8, 16]},
              "what": "CC-VAE (Table 2: five stride-2 convolutions)"},
}
_TINY_WAVE = {"sample_rate": 8000, "n_samples": 256}

for _arch, _a in _ARCH.items():
    for _data, _d in (("digits", _DIGITS), ("drums", _DRUMS)):
        for _size in ("full", "small"):
            _name = f"lionello-{_arch}-{_data}" + ("" if _size == "full" else "-small")
            register_preset(Preset(
                name=_name, model=_a["model"], model_config={**_d["model"], **_a[_size]},
                representation=dict(_d["representation"]),
                training=dict(LIONELLO_TRAINING if _size == "full" else LIONELLO_SMALL_TRAINING),
                paper=LIONELLO_PAPER,
                description=f"{_a['what']} on {_d['what']}" + (", CPU size" if _size == "small" else ""),
                tiny_model={"input_shape": [256], **_a["tiny"]},
                tiny_representation=dict(_TINY_WAVE),
            ))

register_preset(Preset(
    name="lionello-dcvae-digits-noclass", model="dc_vae",
    model_config={**_DIGITS["model"], "n_classes": 0},
    representation=dict(_DIGITS["representation"]), training=dict(LIONELLO_TRAINING),
    paper=LIONELLO_PAPER,
    description="DC-VAE without the bottleneck classifier (Table 3 'DC-VAE (non-class)').",
    tiny_model={"input_shape": [256], **_ARCH["dcvae"]["tiny"]},
    tiny_representation=dict(_TINY_WAVE),
))
