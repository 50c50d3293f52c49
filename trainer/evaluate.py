"""``latent-trainer evaluate``: the papers' measures on one side of a run's split.

Per clip of the split (the test side by default), the clip's features are encoded and
decoded by the checkpoint, and compared with the originals:

* RMSE, SSIM and harmonic precision/recall/F1 (Natsiou, Table I) on the clip's spectrogram in
  librosa's layout ``(n_freq, n_frames)``: the frames of a frame model stacked back in time, a
  log-mel as it is, its levels read on the features' own dB scale (``harmonic_levels``);
  waveform models are compared on samples (RMSE only);
* 1-NN accuracy of the clips' labels in latent space (Lionello, section 5): one code per clip,
  the mean of its frame or window codes for frame and sequence models;
* 1-NN accuracy against the training clips (``knn1_vs_train_accuracy``): each evaluated clip
  takes the label of its nearest training clip in latent space. On a split that is not grouped
  (a folder of digit sub-folders: held-out takes of the speakers it trained on) this is
  Lionello's protocol, 400 / 100 clips of one speaker; with ``unseen=`` it is the same question
  for voices the model never heard;
* MFCC-DTW deviation per class (Lionello, Table 3) for whole-clip models (log-mel, waveform):
  each class's mean code is decoded to sound and compared with the class's test clips. Frame
  models have no whole-clip code to decode, so this measure is left out for them;
* for waveform models, spectral convergence (``sc``) of the decoded window against the input
  window (what the app plays for the clip), and the figures silence would get: ``sc`` 1 by
  definition, ``rmse_silence`` the window's RMS. A decoder that cannot beat silence has learnt
  nothing the ear could use.

Written as ``evaluation.json`` (per-clip values and aggregates) and ``evaluation.md``; with
``unseen=`` as ``evaluation-unseen.json`` and ``evaluation-unseen.md``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.atomic import atomic_write_json, atomic_write_text
from models.errors import ConfigError
from models.datasets.splits import Split

log = logging.getLogger(__name__)


def _check_labels(ckpt: Any, dataset: Any, path: Path) -> None:
    """Refuse a checkpoint trained on other labels than the dataset's (its classes would not map)."""
    if not ckpt.labels:
        return
    if ckpt.labels.field != dataset.default_label:
        raise ConfigError(f"{path} was trained on the label {ckpt.labels.field!r}, this dataset is labelled by "
                          f"{dataset.default_label!r}; evaluate it on the dataset it was trained on")
    unknown = sorted({str(c.labels.get(dataset.default_label)) for c in dataset.clips} - set(ckpt.labels.names))
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise ConfigError(f"{path} was trained on the classes {', '.join(ckpt.labels.names)}; this dataset also "
                          f"has {shown}; evaluate it on the dataset it was trained on")


def evaluate_run(run_dir: Path, *, split: str = "test", checkpoint: str = "best", data: str | None = None,
                 cache_dir: str | None = None, device: str = "cpu", unseen: str | None = None) -> dict[str, Any]:
    """Evaluate ``run_dir/<checkpoint>.safetensors`` on one side of the run's split.

    ``unseen``: a second dataset with the same labels (other speakers) whose every clip is
    evaluated instead of ``split``; the run's training clips stay the 1-NN reference.

    Returns the dict written to ``evaluation.json`` (also written by this function).
    """
    from models.checkpoints.checkpoint import load_checkpoint
    from models.representations import representation_from_dict
    from trainer.config import RunConfig
    from models.inference.encode import encode_items
    from trainer.data import build_items, clip_classes, clip_features
    from trainer.run_setup import CONFIG_FILE, SPLIT_FILE, open_data

    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise ConfigError(f"{run_dir} holds no run (no {CONFIG_FILE})")
    cfg = RunConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
    split_data = json.loads((run_dir / SPLIT_FILE).read_text(encoding="utf-8"))
    indices = Split.from_dict(split_data).side(split)
    ckpt_path = run_dir / f"{checkpoint}.safetensors"
    if not ckpt_path.exists() and checkpoint == "best":
        ckpt_path = run_dir / "last.safetensors"
    if not ckpt_path.exists():
        raise ConfigError(f"{run_dir} has no {checkpoint} checkpoint")
    ckpt = load_checkpoint(ckpt_path, device=device)
    model = ckpt.model
    dataset = open_data(data or cfg.data)
    if [c.name for c in dataset.clips] != split_data.get("clips"):
        raise ConfigError(f"{data or cfg.data} is not the dataset this run was split from")
    rep = representation_from_dict(ckpt.representation)
    names = list(ckpt.labels.names) if ckpt.labels else []
    _check_labels(ckpt, dataset, ckpt_path)
    classes = clip_classes(dataset, names)
    feats = clip_features(dataset, rep, cache_dir=cache_dir)
    mode = ckpt.info.item_layout  # the layout it was trained with, as the checkpoint records it
    shape = tuple(model.input_shape)
    seq_len = shape[0] if mode == "windows" else 0
    dev = torch.device(device)

    def encode_clip(feats: list, classes: np.ndarray, i: int, decode: bool = True):
        items = build_items(feats, np.array([i]), classes, mode=mode, seq_len=seq_len, seq_hop=seq_len,
                            clip_length=shape[-1] if mode == "clips" else None)
        codes = encode_items(model, torch.from_numpy(items.x), batch_size=512, device=dev)
        code = codes.reshape(len(codes), -1).mean(axis=0) if mode != "clips" else codes.reshape(-1)
        if not decode:
            return code
        with torch.no_grad():
            rec = model.decode(torch.from_numpy(codes).to(dev)).float().cpu().numpy()
        return code, _as_spectrogram(items.x, mode), _as_spectrogram(rec, mode)

    reference = None  # (codes, labels) of the training clips, for 1-NN against them
    if names and (unseen is not None or split != "train"):
        train = [int(i) for i in Split.from_dict(split_data).train if feats[int(i)] is not None]
        if train:
            reference = (np.stack([encode_clip(feats, classes, i, decode=False) for i in train]),
                         np.array([names[classes[i]] for i in train]))
    if unseen is not None:
        dataset = open_data(unseen)
        _check_labels(ckpt, dataset, ckpt_path)
        classes = clip_classes(dataset, names)
        feats = clip_features(dataset, rep, cache_dir=cache_dir)
        indices = np.arange(len(dataset.clips))
        split = "unseen"

    per_clip: list[dict[str, Any]] = []
    originals, recons, clip_codes, clip_labels = [], [], [], []
    for i in (int(i) for i in indices):
        if feats[i] is None:
            continue
        code, orig, out = encode_clip(feats, classes, i)
        originals.append(orig)
        recons.append(out)
        clip_codes.append(code)
        clip_labels.append(names[classes[i]] if names else None)
        per_clip.append({"index": i, "name": dataset.clips[i].name, "label": clip_labels[-1]})
    if not per_clip:
        raise ConfigError(f"the {split} split of {run_dir} holds no usable clip")

    summary: dict[str, Any] = {}
    values = _reconstruction(originals, recons, rep, mode)
    for name, vals in values.items():
        for row, v in zip(per_clip, vals):
            row[name] = _num(v)
        summary[name] = _summary(vals)
    if names and len(set(clip_labels)) < 2:
        # one class in the split (a grouped split can put one instrument on the test side):
        # every neighbour is right, so the number would say nothing
        log.info("1-NN accuracy left out: the %s split holds a single class", split)
    elif names:
        from models.metrics import knn1

        res = knn1(np.stack(clip_codes), np.array(clip_labels))
        summary["knn1_accuracy"] = float(res.accuracy)
        summary["knn1_per_class"] = {str(k): float(v) for k, v in res.per_class.items()}
    if reference is not None:
        summary["knn1_vs_train_accuracy"] = knn1_against(reference[0], reference[1], np.stack(clip_codes),
                                                         np.array(clip_labels))
        summary["chance"] = 1.0 / len(names)
    if mode == "clips" and names:
        summary["mfcc_dtw"] = _mfcc_dtw(model, rep, dataset, per_clip, clip_codes, dev)

    result = {
        "run_dir": str(run_dir), "checkpoint": str(ckpt_path), "split": split, "preset": cfg.preset,
        "model": cfg.model, "latent_shape": list(getattr(model, "latent_shape", ())),
        "steps": ckpt.training.steps if ckpt.training else None, "n_clips": len(per_clip),
        "summary": summary, "per_clip": per_clip,
    }
    stem = "evaluation-unseen" if unseen is not None else "evaluation"
    atomic_write_json(run_dir / f"{stem}.json", result)
    atomic_write_text(run_dir / f"{stem}.md", render_markdown(result))
    return result


def knn1_against(ref_codes: np.ndarray, ref_labels: np.ndarray, codes: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of labelling each of ``codes`` [shape=(n, d)] as its nearest of ``ref_codes`` [shape=(m, d)].

    Unlike ``models.metrics.knn1`` (leave-one-out within one set), the references are another
    set: the training clips, so a held-out clip is judged by what the model learnt, not by its
    own split's other takes.
    """
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=1).fit(ref_codes).kneighbors(codes, return_distance=False)[:, 0]
    return float(np.mean(ref_labels[idx] == labels))


def _as_spectrogram(x: np.ndarray, mode: str) -> np.ndarray:
    """Items of one clip -> one array: (n_freq, n_frames) for spectra, (n_samples,) for waveforms."""
    if mode == "frames":
        return x.T
    if mode == "windows":
        return x.reshape(-1, x.shape[-1]).T
    return x[0]


def _reconstruction(originals: list, recons: list, rep: Any, mode: str) -> dict[str, np.ndarray]:
    from models.metrics import reconstruction_metrics, rmse

    if rep.kind == "waveform":
        return {"rmse": np.array([float(rmse(o, r, item_ndim=1)) for o, r in zip(originals, recons)]),
                "rmse_silence": np.array([float(np.sqrt(np.mean(np.square(o)))) for o in originals]),
                "sc": np.array([waveform_spectral_convergence(o, r) for o, r in zip(originals, recons)])}
    freqs = _row_frequencies(rep)
    levels = harmonic_levels(rep)
    out: dict[str, list[float]] = {}
    # clips differ in length: score one at a time
    for o, r in zip(originals, recons):
        ms = reconstruction_metrics(o[None], np.clip(r, 0, 1)[None] if mode != "clips" else r[None],
                                    metrics=("rmse", "ssim", "harmonic"), freqs=freqs,
                                    harmonic_kwargs=levels)
        for k, v in ms.values.items():
            out.setdefault(k, []).append(float(np.asarray(v).reshape(-1)[0]))
    return {k: np.array(v) for k, v in out.items()}


def waveform_spectral_convergence(x: np.ndarray, y: np.ndarray, *, n_fft: int = 512) -> float:
    """Spectral convergence of waveform ``y`` against ``x`` [shape=(n_samples,)]: 512-point STFT magnitudes.

    Phase-blind, unlike the waveform RMSE (the paper's point 6: MSE punishes inaudible phase
    shifts). Silence scores 1, an exact copy 0; above 1 is worse than silence.
    """
    import librosa

    from models.metrics import spectral_convergence

    mag = [np.abs(librosa.stft(np.asarray(v, dtype=np.float32), n_fft=n_fft, hop_length=n_fft // 4)) for v in (x, y)]
    return float(spectral_convergence(mag[0], mag[1]))


def harmonic_levels(rep: Any) -> dict[str, Any]:
    """How the harmonic metric must read ``rep``'s feature values as levels (its ``kind`` keywords).

    The representation answers (``feature_levels``): a log-mel and log-magnitude STFT frames are
    dB mapped linearly onto [0, 1] over ``top_db`` (``kind="db"``, ``top_db`` dB per unit). Read
    as amplitudes instead (the metric's default), [0, 1] log values put the 30 dB rule at
    1 - 10 ** (-30 / 20) = 0.97 of the range, 77 dB for 80 dB features, so noise-floor peaks
    were scored. Linear-magnitude frames are amplitudes.

    Raises
    ------
    ConfigError
        A representation whose features are not levels (waveforms are not scored by the
        harmonic metric).
    """
    levels = rep.feature_levels()
    if levels is None:
        raise ConfigError(f"the harmonic metric has no level scale for {rep.kind!r} features")
    return dict(levels)


def _row_frequencies(rep: Any) -> np.ndarray:
    import librosa

    c = rep.config
    if rep.kind == "logmel":
        from models.metrics import mel_band_frequencies

        return mel_band_frequencies(c.n_mels, fmin=c.fmin, fmax=c.fmax or c.sample_rate / 2, htk=c.htk)
    return librosa.fft_frequencies(sr=c.sample_rate, n_fft=c.n_fft)


def _mfcc_dtw(model: Any, rep: Any, dataset: Any, per_clip: list, codes: list, dev: torch.device) -> dict[str, Any]:
    from models.metrics import mfcc, mfcc_dtw_deviation_table

    sr = rep.sample_rate
    labels = np.array([row["label"] for row in per_clip])
    mfccs = [mfcc(dataset.load(row["index"], sr=sr), sr=sr) for row in per_clip]
    centres = {}
    latent_shape = tuple(model.latent_shape)
    for lab in np.unique(labels):
        if np.sum(labels == lab) < 3:  # a deviation needs the item and two class mates
            continue
        z = np.stack([c for c, l in zip(codes, labels) if l == lab]).mean(axis=0).reshape(1, *latent_shape)
        with torch.no_grad():
            feats = model.decode(torch.from_numpy(z).to(dev)).float().cpu().numpy()[0]
        centres[str(lab)] = mfcc(rep.synthesize(feats), sr=sr)
    keep = np.array([lab in centres for lab in labels])
    if not keep.any():
        return {}
    table = mfcc_dtw_deviation_table([m for m, k in zip(mfccs, keep) if k], labels[keep], centres)
    return {
        "per_class": {str(k): {"mean": s.mean, "std": s.std, "n": s.n} for k, s in table.per_class.items()},
        "average": {"mean": table.average.mean, "std": table.average.std, "n": table.average.n},
    }


def render_markdown(result: dict[str, Any]) -> str:
    """Tables laid out like the papers': Natsiou's metrics row, Lionello's per-class deviations."""
    s = result["summary"]
    lines = [f"# Evaluation of {result['preset']} ({result['model']})", "",
             f"Checkpoint `{Path(result['checkpoint']).name}` after {result['steps']} steps, "
             f"{result['n_clips']} clips of the {result['split']} split.", ""]
    titles = {"rmse": "RMSE", "rmse_silence": "RMSE of silence", "sc": "SC (silence 1)", "ssim": "SSIM"}
    cols = [k for k in ("rmse", "rmse_silence", "sc", "ssim", "precision", "recall", "f1") if k in s]
    header = ["Model", *[titles.get(k, k.capitalize()) for k in cols]]
    row = [result["preset"], *[_pm(s[k]) for k in cols]]
    if "knn1_accuracy" in s:
        header.append("1-NN acc.")  # leave-one-out within the split
        row.append(f"{s['knn1_accuracy']:.3f}")
    if "knn1_vs_train_accuracy" in s:
        header.append(f"1-NN acc. vs training clips (chance {s['chance']:.2f})")
        row.append(f"{s['knn1_vs_train_accuracy']:.3f}")
    lines += [_md_row(header), _md_row(["---"] * len(header)), _md_row(row), ""]
    dtw = s.get("mfcc_dtw") or {}
    if dtw.get("per_class"):
        lines += ["MFCC-DTW deviation per class (mean, std):", "",
                  _md_row(["Class", "Mean", "Std", "n"]), _md_row(["---"] * 4)]
        for k, v in dtw["per_class"].items():
            lines.append(_md_row([k, f"{v['mean']:.3f}", f"{v['std']:.3f}", str(v["n"])]))
        a = dtw["average"]
        lines += [_md_row(["average", f"{a['mean']:.3f}", f"{a['std']:.3f}", str(a["n"])]), ""]
    return "\n".join(lines)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pm(stat: dict[str, Any]) -> str:
    return "n/a" if stat["mean"] is None else f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _summary(values: np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if len(v) else None, "std": float(v.std()) if len(v) else None, "n": int(len(v))}


def _num(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
