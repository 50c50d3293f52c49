"""``latent-trainer compare``: train and evaluate presets across latent sizes, one table.

Roche et al.'s study layout: one row per model, one column per latent size, each cell the
test-set mean ± std of a measure (one table per ``--metrics`` entry). With one latent size (or
none: each preset's own), the table is Natsiou's layout instead: one row per preset (variant),
one column per measure; and when the runs have MFCC-DTW deviations, Lionello's Table 3: one row
per class, one column per model. A last table gives each run's steps and wall time.

Each combination is an ordinary run folder under ``--out`` (``<preset>-d<dim>``), so a
comparison that was stopped can be run again and resumes its unfinished runs. Everything is
also written to ``comparison.json`` and ``comparison.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from models.atomic import atomic_write_json, atomic_write_text
from models.errors import ConfigError

log = logging.getLogger(__name__)

#: names of the latent-size key in the model configs, tried in order
LATENT_KEYS = ("latent_dim", "n_components")

#: table headings of the measures in ``evaluation.json``'s summary (others are shown as named)
METRIC_TITLES = {
    "rmse": "RMSE", "ssim": "SSIM", "precision": "Precision", "recall": "Recall", "f1": "F1",
    "knn1_accuracy": "1-NN acc.", "mfcc_dtw": "MFCC-DTW dev.",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="train and evaluate presets across latent sizes, one table",
        description="Train every preset at every latent size into --out/<preset>-d<dim>, evaluate "
        "each on its test split, and write comparison.md / comparison.json. Run it again to "
        "resume unfinished runs.")
    p.add_argument("--data", required=True)
    p.add_argument("--presets", nargs="+", required=True)
    p.add_argument("--latent-dims", nargs="+", type=int, default=[], help="latent sizes (default: each preset's)")
    p.add_argument("--out", required=True, type=Path, help="folder of the runs and the table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="[PRESET:]KEY=VALUE",
                   help="override for every preset, or only for PRESET with the PRESET: prefix "
                   "(e.g. roche-lstm-ae:model.hidden_size=64)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--metrics", "--metric", dest="metrics", nargs="+", default=["rmse"],
                   help="measures shown: rmse ssim precision recall f1 knn1_accuracy mfcc_dtw")
    p.set_defaults(func=run)


def latent_override(preset_name: str, dim: int) -> str:
    """The ``--set`` that gives ``preset_name``'s model a latent of size ``dim``."""
    from models.nets.registry import MODEL_REGISTRY, get_preset

    preset = get_preset(preset_name)
    fields = {f.name for f in dataclasses.fields(MODEL_REGISTRY[preset.model].config_class)}
    for key in LATENT_KEYS:
        if key in fields:
            return f"model.{key}={dim}"
    raise ConfigError(f"preset {preset_name!r} ({preset.model}) has no latent size key ({', '.join(LATENT_KEYS)})")


def overrides_for(preset_name: str, overrides: list[str], presets: list[str]) -> list[str]:
    """The ``--set`` values that apply to ``preset_name``: unprefixed ones and ``preset_name:...``.

    A ``NAME:`` prefix must name one of ``presets`` (a typo would otherwise apply to nothing).
    """
    out = []
    for text in overrides:
        head, sep, rest = text.partition(":")
        if sep and "=" not in head:
            if head not in presets:
                raise ConfigError(f"--set {text}: {head!r} is not one of --presets ({', '.join(presets)})")
            if head == preset_name:
                out.append(rest)
        else:
            out.append(text)
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from models.config import parse_override
    from trainer.config import build_representation, resolve_config
    from trainer.evaluate import evaluate_run
    from trainer.run import run_training
    from trainer.run_setup import CONFIG_FILE, TrainOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    dims: list[int | None] = list(args.latent_dims) or [None]
    plan = []
    for name in args.presets:  # fail on a bad preset, key or value before training anything
        for dim in dims:
            sets = overrides_for(name, args.overrides, args.presets)
            sets += [latent_override(name, dim)] if dim is not None else []
            for text in sets:
                parse_override(text)
            build_representation(resolve_config(name, sets, tiny=args.tiny).representation)
            plan.append((name, dim, sets))
    results: dict[str, dict[str, Any]] = {}
    for name, dim, sets in plan:
        label = f"{name}-d{dim}" if dim is not None else name
        run_dir = (args.out / label).resolve()
        log.info("== %s", label)
        opts = TrainOptions(run_dir=run_dir, preset=name, data=args.data, overrides=tuple(sets),
                            resume=(run_dir / CONFIG_FILE).exists(), device=args.device, seed=args.seed,
                            max_steps=args.max_steps, epochs=args.epochs, tiny=args.tiny,
                            cache_dir=args.cache_dir)
        t0 = time.monotonic()
        code = run_training(opts)
        t_train = time.monotonic() - t0
        if code != 0:
            log.error("%s failed (exit %d); see %s", label, code, run_dir / "train.log")
            continue
        t0 = time.monotonic()
        ev = evaluate_run(run_dir, cache_dir=args.cache_dir)
        summary = dict(ev["summary"])
        summary["run"] = {"steps": ev["steps"], "train_s": round(training_seconds(run_dir, t_train), 2),
                          "eval_s": round(time.monotonic() - t0, 2), "n_test_clips": ev["n_clips"]}
        results.setdefault(name, {})[str(dim)] = summary
    keys = [str(d) for d in dims]
    text = render_comparison(results, keys, metrics=list(args.metrics))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "comparison.json", {"metrics": list(args.metrics), "dims": keys, "results": results})
    atomic_write_text(args.out / "comparison.md", text + "\n")
    print(text)
    return 0


def training_seconds(run_dir: Path, fallback: float) -> float:
    """The run's training time: the last ``finished`` event's ``duration_s``, which adds up the
    time of every resumed part (``fallback`` when the run never finished)."""
    from models.events import Finished, parse_event

    path = run_dir / "events.jsonl"
    best = None
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if '"finished"' in line:
                ev = parse_event(line)
                if isinstance(ev, Finished):
                    best = ev.duration_s
    return float(best) if best is not None else fallback


def render_comparison(results: dict[str, dict[str, Any]], dims: list[str], *, metrics: list[str]) -> str:
    """All the tables of a comparison, as Markdown (see the module docstring for the layouts)."""
    parts = []
    if len(dims) == 1:
        parts.append(metrics_table(results, dims[0], metrics=metrics))
    else:
        for m in metrics:
            parts.append(f"**{METRIC_TITLES.get(m, m)}** (test split, mean ± std over clips)\n\n"
                         + comparison_table(results, dims, metric=m))
    dtw = dtw_class_table(results, dims)
    if dtw:
        parts.append("**MFCC-DTW deviation per class** (mean ± std)\n\n" + dtw)
    parts.append("**Runs** (steps of the evaluated checkpoint, training wall time)\n\n" + runs_table(results, dims))
    return "\n\n".join(parts)


def _cell(stat: Any) -> str:
    if isinstance(stat, dict) and "average" in stat:  # the MFCC-DTW summary
        stat = stat["average"]
    if isinstance(stat, dict) and stat.get("mean") is not None:
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    if isinstance(stat, (int, float)) and not isinstance(stat, bool):
        return f"{stat:.4f}"
    return "n/a"


def _dim_title(d: str) -> str:
    return f"d={d}" if d != "None" else "default"


def _md(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def comparison_table(results: dict[str, dict[str, Any]], dims: list[str], *, metric: str) -> str:
    """Markdown: a row per preset, a column per latent size, cells ``mean ± std`` of ``metric``."""
    header = ["Model", *[_dim_title(d) for d in dims]]
    lines = [_md(header), _md(["---"] * len(header))]
    for name, by_dim in results.items():
        lines.append(_md([name, *[_cell((by_dim.get(d) or {}).get(metric)) for d in dims]]))
    return "\n".join(lines)


def metrics_table(results: dict[str, dict[str, Any]], dim: str, *, metrics: list[str]) -> str:
    """Markdown: a row per preset, a column per measure (Natsiou's tables), at one latent size."""
    header = ["Model", *[METRIC_TITLES.get(m, m) for m in metrics]]
    lines = [_md(header), _md(["---"] * len(header))]
    for name, by_dim in results.items():
        s = by_dim.get(dim) or {}
        lines.append(_md([name, *[_cell(s.get(m)) for m in metrics]]))
    return "\n".join(lines)


def dtw_class_table(results: dict[str, dict[str, Any]], dims: list[str]) -> str:
    """Markdown: a row per class, a column per run (Lionello's Table 3); empty without MFCC-DTW."""
    cols = [(name, d) for name, by_dim in results.items() for d in dims
            if ((by_dim.get(d) or {}).get("mfcc_dtw") or {}).get("per_class")]
    if not cols:
        return ""
    classes = sorted({c for n, d in cols for c in results[n][d]["mfcc_dtw"]["per_class"]},
                     key=lambda c: (not c.lstrip("-").isdigit(), int(c) if c.lstrip("-").isdigit() else 0, c))
    header = ["Class", *[n if d == "None" or len(dims) == 1 else f"{n} d={d}" for n, d in cols]]
    lines = [_md(header), _md(["---"] * len(header))]
    for c in [*classes, "average"]:
        row = [c]
        for n, d in cols:
            dtw = results[n][d]["mfcc_dtw"]
            row.append(_cell(dtw["average"] if c == "average" else dtw["per_class"].get(c)))
        lines.append(_md(row))
    return "\n".join(lines)


def runs_table(results: dict[str, dict[str, Any]], dims: list[str]) -> str:
    """Markdown: a row per preset, a column per latent size, cells ``steps / seconds``."""
    header = ["Model", *[_dim_title(d) for d in dims]]
    lines = [_md(header), _md(["---"] * len(header))]
    for name, by_dim in results.items():
        cells = []
        for d in dims:
            r = (by_dim.get(d) or {}).get("run")
            cells.append(f"{r['steps']} steps, {r['train_s']:.0f} s" if r else "n/a")
        lines.append(_md([name, *cells]))
    return "\n".join(lines)
