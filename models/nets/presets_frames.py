"""Named presets for the frame models of Roche et al. 2019 and Colonel et al. 2017.

Choices the papers leave open (each is a plain config value, overridable with ``--set``):

- Roche's abstract gives no STFT, widths or training settings. We take NSynth's 16 kHz,
  n_fft 1024 (513 bins, 64 ms), hop 256, log magnitude over 80 dB with the clip's maximum as
  reference (the representation preset "roche"), and a default latent size of 16 (the paper sweeps sizes;
  sweep ``latent_dim`` / ``n_components`` over e.g. 4, 8, 16, 32, 64, 100). Hidden widths 256-128
  (widen them for latents above 128). AE latents are linear except the shallow AE's sigmoid;
  outputs are sigmoid since frames are scaled to [0, 1]. Adam, lr 1e-3, batch 256 frames.
- Colonel: 22.05 kHz, n_fft 2048 (1025 bins), hop 512 (the paper prints "hop length 0"), each
  frame divided by its maximum. Adam lr 1e-3, batch 100, no bias, sigmoid latent and output.
  The l2 weight is not given: we use lambda = 1e-5 on the (unsquared) Euclidean norm of all
  weights, as eq. 6 is printed. The 8-unit variant halves the widths down to 8 as the authors'
  later (DAFx 2018) code does: 512-256-128-64-32-16-8.
"""

from __future__ import annotations

from typing import Any

from models.nets.registry import Preset, register_preset

ROCHE_PAPER = (
    "Roche, Hueber, Limier, Girin. Autoencoders for music sound modeling: a comparison of "
    "linear, shallow, deep, recurrent and variational models. SMC 2019 (arXiv:1806.04096)"
)
COLONEL_PAPER = (
    "Colonel, Curro, Keene. Improving neural net auto encoders for music synthesis. "
    "AES 143rd Convention, 2017, paper 9846"
)

#: representation parameters, written out (equal to ``REPRESENTATION_PRESETS["roche"]`` and
#: ``["colonel"]`` in models.representations, checked by a test) so that importing the model
#: catalogue does not import librosa
ROCHE_REPRESENTATION: dict[str, Any] = {
    "kind": "stft_frames", "sample_rate": 16000, "n_fft": 1024, "hop_length": 256,
    "window": "hann", "magnitude": "log", "top_db": 80.0, "normalize": "clip",
}
COLONEL_REPRESENTATION: dict[str, Any] = {
    "kind": "stft_frames", "sample_rate": 22050, "n_fft": 2048, "hop_length": 512,
    "window": "hann", "magnitude": "linear", "normalize": "frame",
}
#: tiny STFT for tests: 33 bins
TINY_REPRESENTATION: dict[str, Any] = {"sample_rate": 8000, "n_fft": 64, "hop_length": 16}
TINY_BINS = 33

ROCHE_TRAINING: dict[str, Any] = {
    "lr": 1e-3, "batch_size": 256, "epochs": 100, "patience": 10,
}
COLONEL_TRAINING: dict[str, Any] = {
    "lr": 1e-3, "batch_size": 100, "epochs": 100, "patience": 10,
}

ROCHE_BINS = 513
COLONEL_BINS = 1025
COLONEL_HIDDEN = [512, 256, 128]


def _roche(name: str, model: str, config: dict[str, Any], tiny: dict[str, Any], description: str,
           training: dict[str, Any] | None = None) -> None:
    register_preset(Preset(
        name=name, model=model, model_config=config, representation=dict(ROCHE_REPRESENTATION),
        training=dict(training or ROCHE_TRAINING), paper=ROCHE_PAPER, description=description,
        tiny_model=tiny, tiny_representation=dict(TINY_REPRESENTATION),
    ))


def _colonel(name: str, model: str, config: dict[str, Any], tiny: dict[str, Any], description: str) -> None:
    register_preset(Preset(
        name=name, model=model, model_config=config, representation=dict(COLONEL_REPRESENTATION),
        training=dict(COLONEL_TRAINING), paper=COLONEL_PAPER, description=description,
        tiny_model=tiny, tiny_representation=dict(TINY_REPRESENTATION),
    ))


# --- Roche et al. 2019 ---------------------------------------------------------------------
_roche(
    "roche-pca", "pca",
    {"input_shape": [ROCHE_BINS], "n_components": 16},
    {"input_shape": [TINY_BINS], "n_components": 4},
    "PCA of 513-bin frames, 16 components: the linear baseline (fitted in closed form).",
    training={"batch_size": 4096},
)
_roche(
    "roche-shallow-ae", "shallow_ae",
    {"input_shape": [ROCHE_BINS], "latent_dim": 16, "activation": "sigmoid",
     "output_activation": "sigmoid", "bias": True},
    {"input_shape": [TINY_BINS], "latent_dim": 4},
    "Shallow AE 513-16-513, sigmoid hidden and output, with bias.",
)
_roche(
    "roche-deep-ae", "deep_ae",
    {"input_shape": [ROCHE_BINS], "hidden": [256, 128], "latent_dim": 16,
     "hidden_activation": "relu", "latent_activation": "identity",
     "output_activation": "sigmoid", "bias": True},
    {"input_shape": [TINY_BINS], "hidden": [16, 8], "latent_dim": 4},
    "Deep AE 513-256-128-16 mirrored, ReLU, linear latent, sigmoid output, with bias.",
)
_roche(
    "roche-lstm-ae", "lstm_ae",
    {"input_shape": [32, ROCHE_BINS], "latent_dim": 16, "hidden_size": 256, "num_layers": 1,
     "bidirectional": True, "decoder_bidirectional": False},
    {"input_shape": [8, TINY_BINS], "latent_dim": 4, "hidden_size": 12},
    "LSTM-AE on windows of 32 frames: bidirectional encoder LSTM (256) + linear to a 16-dim "
    "latent per frame; decoder LSTM (256) + linear + sigmoid.",
    training={**ROCHE_TRAINING, "batch_size": 32},
)
_roche(
    "roche-vae", "frame_vae",
    {"input_shape": [ROCHE_BINS], "hidden": [256, 128], "latent_dim": 16, "kl_weight": 0.02,
     "recon_reduction": "sum"},
    {"input_shape": [TINY_BINS], "hidden": [16, 8], "latent_dim": 4},
    "VAE 513-256-128-16 (mean, log-variance) mirrored, sigmoid output; per-frame summed "
    "squared error + 0.02 KL (a Gaussian likelihood of sigma 0.1), KL warmed up over 1000 steps.",
)

# --- Colonel et al. 2017 -------------------------------------------------------------------
_colonel(
    "colonel-shallow", "shallow_ae",
    {"input_shape": [COLONEL_BINS], "latent_dim": 64, "activation": "sigmoid",
     "output_activation": "sigmoid", "bias": False},
    {"input_shape": [TINY_BINS], "latent_dim": 4},
    "Table 1 depth-1 net 1025-64-1025, sigmoid, no bias (set latent_dim for 8..1024).",
)
_colonel(
    "colonel-hybrid", "deep_ae",
    {"input_shape": [COLONEL_BINS], "hidden": list(COLONEL_HIDDEN), "latent_dim": 64,
     "hidden_activation": "relu", "latent_activation": "sigmoid", "output_activation": "sigmoid",
     "bias": False, "l2": 1e-5, "l2_mode": "norm"},
    {"input_shape": [TINY_BINS], "hidden": [24, 16, 8], "latent_dim": 4},
    "Table 3 hybrid 1025-512-256-128-64 mirrored: ReLU, sigmoid latent and output, no bias, "
    "l2 penalty. The paper's synthesizer: 64 latent gains.",
)
_colonel(
    "colonel-hybrid-8", "deep_ae",
    {"input_shape": [COLONEL_BINS], "hidden": [512, 256, 128, 64, 32, 16], "latent_dim": 8,
     "hidden_activation": "relu", "latent_activation": "sigmoid", "output_activation": "sigmoid",
     "bias": False, "l2": 1e-5, "l2_mode": "norm"},
    {"input_shape": [TINY_BINS], "hidden": [28, 24, 20, 16, 12, 10], "latent_dim": 8},
    "Hybrid down to an 8-unit latent (authors' later code): 1025-512-256-128-64-32-16-8.",
)
_colonel(
    "colonel-sigmoid", "deep_ae",
    {"input_shape": [COLONEL_BINS], "hidden": list(COLONEL_HIDDEN), "latent_dim": 64,
     "hidden_activation": "sigmoid", "latent_activation": "sigmoid",
     "output_activation": "sigmoid", "bias": False},
    {"input_shape": [TINY_BINS], "hidden": [24, 16, 8], "latent_dim": 4},
    "Table 3 'all sigmoid' 1025-512-256-128-64 mirrored, no bias.",
)
_colonel(
    "colonel-relu", "deep_ae",
    {"input_shape": [COLONEL_BINS], "hidden": list(COLONEL_HIDDEN), "latent_dim": 64,
     "hidden_activation": "relu", "latent_activation": "relu", "output_activation": "relu",
     "bias": False},
    {"input_shape": [TINY_BINS], "hidden": [24, 16, 8], "latent_dim": 4},
    "Table 3 'all ReLU' 1025-512-256-128-64 mirrored (latent and output too), no bias.",
)

#: the presets this module registers, in table order
FRAME_PRESETS = (
    "roche-pca", "roche-shallow-ae", "roche-deep-ae", "roche-lstm-ae", "roche-vae",
    "colonel-shallow", "colonel-hybrid", "colonel-hybrid-8", "colonel-sigmoid", "colonel-relu",
)
