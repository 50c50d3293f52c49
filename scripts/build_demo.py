"""Rebuild the bundled demo in ``resources/demo/``: datasets, checkpoints, quality numbers.

Run from the repository root::

    .venv/bin/python scripts/build_demo.py                 # every step not done yet
    .venv/bin/python scripts/build_demo.py --force         # every step again
    .venv/bin/python scripts/build_demo.py --only natsiou --force --threads 2

Steps (each skipped when its output exists, unless ``--force``):

``notes``     FluidR3 GM notes (NSynth layout, 4 s, 16 kHz) rendered by ``build_notes``
``digits``    espeak-ng spoken digits (FSDD layout, 8 kHz) written by ``build_digits``
``licence``   the SoundFont's licence beside the notes
``natsiou``   a small Natsiou log-mel conv AE on the notes      (``latent-trainer train``)
``colonel``   a small Colonel magnitude-frame AE on the notes    (``latent-trainer train``)
``vae``       a Roche frame VAE (Colonel's frames) on the notes   (``latent-trainer train``)
``lionello``  a small Lionello CC-VAE (waveform) on the digits   (opt-in: not bundled)
``quality``   decode every clip with each checkpoint and with the same network untrained, the
              sound with the phase the app estimates; writes ``resources/demo/quality.json``

Training runs are kept under ``--runs`` (default ``runs/demo``, git-ignored); only
``best.safetensors`` is copied into ``resources/demo``. Everything is seeded (split, init, data
order: ``--seed 0``; the builders are deterministic), so on the same library versions and
thread count a rebuild gives the same files up to floating-point summation order.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.core import paths  # Qt-free: only Path constants

ROOT = paths.RESOURCES.parent

SEED = 0
#: two GM programs from each of ten NSynth families (vocal is left out: FluidR3's choirs are pads)
PROGRAMS = (
    0, 4,      # keyboard: acoustic grand, electric piano 1
    11, 12,    # mallet: vibraphone, marimba
    16, 19,    # organ: drawbar, church
    24, 29,    # guitar: nylon, overdriven
    33, 38,    # bass: finger, synth bass 1
    40, 42,    # string: violin, cello
    56, 60,    # brass: trumpet, french horn
    65, 71,    # reed: alto sax, clarinet
    73, 75,    # flute: flute, pan flute
    80, 81,    # synth_lead: square, sawtooth
)
PITCHES = (48, 55, 62, 69)  # C3, G3, D4, A4: inside every one of these instruments' range
VELOCITIES = (75, 127)
#: eight espeak-ng speakers (voice variants), two takes of each digit
DIGIT_VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f3", "f4")
DIGIT_REPETITIONS = 2
SOUNDFONT_COPYRIGHT = Path("/usr/share/doc/fluid-soundfont-gm/copyright")


@dataclass(frozen=True)
class Model:
    """One demo checkpoint: a preset, its small-size overrides and a training budget."""

    name: str
    preset: str
    dataset: Path
    checkpoints: Path
    overrides: tuple[str, ...]
    epochs: int

    @property
    def out(self) -> Path:
        return self.checkpoints / f"{self.name}.safetensors"


MODELS = {
    "natsiou": Model(
        name="natsiou-notes",
        preset="natsiou-dense-2048",
        dataset=paths.DEMO_DATASET,
        checkpoints=paths.DEMO_CHECKPOINTS,
        # 64 mel bands x 256 frames (hop 250: 4 s), three stages of 32/64/128 filters, a
        # 256-unit dense bottleneck: ~592 k parameters (2.4 MB) instead of the paper's ~139 M.
        # 60 epochs: validation loss is best at epoch 50 and rises after (128 training notes
        # overfit); 16/32/64 filters with 64 units plateaued at 0.0112 (docs/demo.md)
        overrides=("rep.n_mels=64", "rep.hop_length=250", "rep.n_frames=256",
                   "model.channels=[32,64,128]", "model.dense=256",
                   "train.batch_size=16", "train.patience=0"),
        epochs=60,
    ),
    "colonel": Model(
        name="colonel-notes",
        preset="colonel-hybrid",
        dataset=paths.DEMO_DATASET,
        checkpoints=paths.DEMO_CHECKPOINTS,
        # the notes' own 16 kHz, a 1024-point FFT (513 bins), 256-128-64 hidden, 32 latent units;
        # 30 epochs (9,660 steps) of cosine-decayed Adam, best validation at epoch 23: test
        # feature RMSE 0.040 and sound SC 0.25 against 0.043 and 0.33 after the former 4 epochs
        # at a constant rate (docs/results/colonel.md)
        overrides=("rep.sample_rate=16000", "rep.n_fft=1024", "rep.hop_length=256",
                   "model.hidden=[256,128,64]", "model.latent_dim=32",
                   "train.batch_size=100", "train.patience=0", "train.lr_schedule=cosine"),
        epochs=30,
    ),
    "vae": Model(
        name="roche-vae-notes",
        preset="roche-vae",
        dataset=paths.DEMO_DATASET,
        checkpoints=paths.DEMO_CHECKPOINTS,
        # Roche's VAE on Colonel's frames: linear magnitudes, each frame scaled by its own
        # maximum, kept as side data, so the envelope is the clip's and the VAE models spectral
        # shape (log frames scaled by the clip's maximum lost the guitars' decay in a short run,
        # log frames scaled per frame kept a broadband floor: docs/results/vae.md).
        # 513-256-128 and a 32-unit latent (mean, log-variance); beta 0.005 against the summed
        # squared error (a Gaussian likelihood of sigma 0.05: linear frames are mostly small
        # values), KL warmed up over the first 400 of 1008 steps; ~341 k parameters (1.4 MB)
        overrides=("rep.magnitude=linear", "rep.normalize=frame", "model.latent_dim=32",
                   "model.kl_weight=0.005", "model.kl_warmup_steps=400", "train.patience=0"),
        epochs=8,
    ),
    "lionello": Model(
        name="lionello-digits",
        preset="lionello-ccvae-digits-small",
        dataset=paths.DEMO_DIGITS_DATASET,
        checkpoints=paths.DEMO_DIGITS_CHECKPOINTS,
        # the preset's small CC-VAE (16-128 filters, ~98 k parameters); batches of 8 at twice
        # the paper's rate: 4x the steps in the same CPU time on 120 training recordings
        overrides=("train.batch_size=8", "train.lr=0.001", "train.patience=0"),
        epochs=25,
    ),
}
#: lionello is opt-in (``--only lionello``): in a few CPU minutes its reconstruction error did
#: not move from that of silence (docs/demo.md), so no waveform checkpoint is bundled
DEFAULT_STEPS = ("notes", "digits", "licence", "natsiou", "colonel", "vae", "quality")
STEPS = ("notes", "digits", "licence", *MODELS, "quality")


def log(msg: str) -> None:
    print(f"[build_demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def step_notes(force: bool, _args: argparse.Namespace) -> None:
    from models.datasets import build_notes

    out = paths.DEMO_DATASET
    if out.is_dir() and any(out.iterdir()) and not force:
        log(f"notes: {out} exists, skipped")
        return
    t = time.time()
    report = build_notes(out, programs=PROGRAMS, pitches=PITCHES, velocities=VELOCITIES, overwrite=True)
    log(f"notes: {report.written} notes in {time.time() - t:.0f} s, skipped {report.skipped}")


def step_digits(force: bool, _args: argparse.Namespace) -> None:
    from models.datasets import build_digits

    out = paths.DEMO_DIGITS_DATASET
    if out.is_dir() and any(out.iterdir()) and not force:
        log(f"digits: {out} exists, skipped")
        return
    t = time.time()
    report = build_digits(out, voices=("en-us",), variants=DIGIT_VARIANTS,
                          repetitions=DIGIT_REPETITIONS, overwrite=True)
    log(f"digits: {report.written} recordings in {time.time() - t:.0f} s, skipped {report.skipped}")


def step_licence(force: bool, _args: argparse.Namespace) -> None:
    from models.atomic import atomic_write_text

    out = paths.DEMO_DIR / "LICENSE-FluidR3_GM.txt"
    if out.exists() and not force:
        log(f"licence: {out} exists, skipped")
        return
    text = SOUNDFONT_COPYRIGHT.read_text(encoding="utf-8")
    header = ("The notes in notes/dataset/ were rendered from FluidR3_GM.sf2 (Debian package\n"
              "fluid-soundfont-gm). Its copyright and licence, as Debian ships them:\n\n")
    atomic_write_text(out, header + text)
    log(f"licence: wrote {out}")


def train(model: Model, force: bool, args: argparse.Namespace) -> None:
    if model.out.exists() and not force:
        log(f"{model.name}: {model.out} exists, skipped")
        return
    run_dir = Path(args.runs) / model.name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh run: the trainer refuses a folder that holds one
    cmd = [sys.executable, "-m", "trainer", "train", "--preset", model.preset,
           "--data", str(model.dataset), "--run-dir", str(run_dir), "--seed", str(SEED),
           "--device", "cpu", "--threads", str(args.threads), "--epochs", str(model.epochs)]
    for o in model.overrides:
        cmd += ["--set", o]
    log(f"{model.name}: {' '.join(cmd[1:])}")
    t = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    model.checkpoints.mkdir(parents=True, exist_ok=True)
    from models.atomic import atomic_write_bytes

    atomic_write_bytes(model.out, (run_dir / "best.safetensors").read_bytes())
    log(f"{model.name}: trained in {time.time() - t:.0f} s -> {model.out} "
        f"({model.out.stat().st_size / 1e6:.2f} MB)")


def _feature_rmse(model, rep, ds, clip_range) -> np.ndarray:  # noqa: ANN001
    """Per-clip RMSE between each clip's features and their reconstruction through ``model``."""
    from models.inference import layout
    from models.inference.decode import decode_features
    from models.inference.encode import analyse_clip, encode_items

    out = []
    for i in range(len(ds.clips)):
        _, analysis = analyse_clip(ds, i, rep)
        f = analysis.features
        z = encode_items(model, layout.to_items(f, layout.layout_for(model, rep), model.input_shape))
        rec = decode_features(model, rep, z.reshape(len(z), -1), latent_shape=z.shape[1:], feature_shape=f.shape)
        out.append(float(np.sqrt(np.mean((np.clip(rec, *clip_range) - f) ** 2))))
    return np.asarray(out)


def _reference(rep, ds, i: int) -> np.ndarray:  # noqa: ANN001
    """What a decoding of clip ``i`` should sound like: the clip, or for a waveform model the
    fixed-length, normalised window it was trained to reproduce."""
    y = ds.load(i, sr=rep.sample_rate)
    return rep.preprocess(y) if rep.kind == "waveform" else y


def _sc(reference: np.ndarray, decoded: np.ndarray, sr: int) -> float:
    """Spectral convergence of two sounds' STFT magnitudes (decoded cut/padded to the reference)."""
    import librosa

    from models.metrics import spectral_convergence

    n_fft = 1024 if sr >= 16000 else 512
    d = np.zeros(len(reference), np.float32)
    d[: min(len(d), len(decoded))] = np.asarray(decoded, np.float32)[: len(d)]
    mags = [np.abs(librosa.stft(np.asarray(v, np.float32), n_fft=n_fft, hop_length=n_fft // 4)) for v in (reference, d)]
    return float(spectral_convergence(*mags))


def measure(ckpt_path: Path, dataset_path: Path, *, threads: int = 2, n_audio: int = 12,
            split_json: Path | None = None) -> dict:
    """Quality of one checkpoint on its dataset, next to the same network untrained.

    ``feature_rmse``: RMSE of the model's own features (log-mel or frames in [0, 1], or
    samples), every clip (and the test split's clips when ``split_json`` is given).
    ``spectral_convergence``: ``||S - S'|| / ||S||`` of the linear STFT magnitudes of the
    original and of the decoded sound as the app plays it (``engine.render_clip`` with the
    phase it estimates, ``engine.ESTIMATED_PHASE``), on ``n_audio`` clips spread over the
    dataset; ``spectral_convergence_clip_phase`` the same with the clip's own phase (the app's
    reference). ``resynthesis`` is the representation alone (analysis then synthesis, no
    model, both phases): the floor the phase reconstruction leaves.
    """
    import torch

    from explorer.core.controller import check_fit, load_model
    from models.inference import engine
    from models.datasets import open_dataset
    from models.nets.registry import build_model

    torch.set_num_threads(threads)
    ds = open_dataset(dataset_path)
    lm = load_model(ckpt_path)
    check_fit(lm, ds)
    rep, info = lm.representation, lm.checkpoint.info
    torch.manual_seed(SEED)
    untrained = build_model(info.model_name, dict(info.model_config)).eval()
    clip_range = (-np.inf, np.inf) if rep.kind == "waveform" else (0.0, 1.0)
    picks = np.linspace(0, len(ds.clips) - 1, n_audio).round().astype(int)
    result: dict = {"n_clips": len(ds.clips), "audio_clips": [ds.clips[i].name for i in picks]}
    test = None
    if split_json is not None and split_json.exists():
        test = np.asarray(json.loads(split_json.read_text())["test"], dtype=int)
    for tag, net in (("trained", lm.model), ("untrained", untrained)):
        rm = _feature_rmse(net, rep, ds, clip_range)
        enc = engine.encode_dataset(net, rep, ds)
        entry = {"feature_rmse": round(float(rm.mean()), 4)}
        for key, phase in (("spectral_convergence", engine.ESTIMATED_PHASE),
                           ("spectral_convergence_clip_phase", engine.CLIP_PHASE)):
            sc = [_sc(_reference(rep, ds, int(i)), engine.render_clip(net, rep, ds, enc, int(i), phase=phase).y,
                      rep.sample_rate) for i in picks]
            entry[key] = round(float(np.mean(sc)), 4)
        if test is not None and len(test):
            entry["feature_rmse_test"] = round(float(rm[test].mean()), 4)
        result[tag] = entry
    result["resynthesis"] = {}
    for key, phase in (("spectral_convergence", engine.ESTIMATED_PHASE),
                       ("spectral_convergence_clip_phase", engine.CLIP_PHASE)):
        sc = []
        for i in picks:
            a = rep.analyze(ds.load(int(i), sr=rep.sample_rate))
            resynth = rep.synthesize(a.features, side=a.side, phase=phase, n_samples=a.n_samples)
            sc.append(_sc(_reference(rep, ds, int(i)), resynth, rep.sample_rate))
        result["resynthesis"][key] = round(float(np.mean(sc)), 4)
    result["parameters"] = int(sum(p.numel() for p in lm.model.parameters()))
    result["file_mb"] = round(ckpt_path.stat().st_size / 1e6, 2)
    return result


def step_quality(force: bool, args: argparse.Namespace) -> None:
    from models.atomic import atomic_write_json

    out = paths.DEMO_DIR / "quality.json"
    if out.exists() and not force:
        log(f"quality: {out} exists, skipped")
        return
    results = {}
    for key, model in MODELS.items():
        if model.out.exists():
            results[model.name] = measure(model.out, model.dataset, threads=args.threads,
                                          split_json=Path(args.runs) / model.name / "split.json")
            log(f"quality {model.name}: {json.dumps(results[model.name])}")
    atomic_write_json(out, results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=STEPS,
                   help=f"run these steps (default: {' '.join(DEFAULT_STEPS)})")
    p.add_argument("--force", action="store_true", help="redo the steps even if their output exists")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads for training")
    p.add_argument("--runs", default=str(ROOT / "runs" / "demo"), help="where training runs are kept")
    args = p.parse_args(argv)
    steps = args.only or DEFAULT_STEPS
    for name in STEPS:
        if name not in steps:
            continue
        if name in MODELS:
            train(MODELS[name], args.force, args)
        else:
            globals()[f"step_{name}"](args.force, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
