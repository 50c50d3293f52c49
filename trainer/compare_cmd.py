"""``latent-trainer compare``: train and evaluate presets across latent sizes, one table.

Roche et al.'s study layout: one row per model, one column per latent size, each cell the
test-set RMSE of the frames (mean), with the other measures in ``comparison.json``. Each
combination is an ordinary run folder under ``--out`` (``<preset>-d<dim>``), so a comparison
that was stopped can be run again and resumes its unfinished runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from models.atomic import atomic_write_json, atomic_write_text
from models.errors import ConfigError

log = logging.getLogger(__name__)

#: names of the latent-size key in the model configs, tried in order
LATENT_KEYS = ("latent_dim", "n_components")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="train and evaluate presets across latent sizes, one table")
    p.add_argument("--data", required=True)
    p.add_argument("--presets", nargs="+", required=True)
    p.add_argument("--latent-dims", nargs="+", type=int, default=[], help="latent sizes (default: each preset's)")
    p.add_argument("--out", required=True, type=Path, help="folder of the runs and the table")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--metric", default="rmse", help="the measure shown in the table cells")
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


def run(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_run
    from trainer.run import run_training
    from trainer.setup import TrainOptions

    dims: list[int | None] = list(args.latent_dims) or [None]
    for name in args.presets:  # fail on a bad preset or key before training anything
        for dim in dims:
            if dim is not None:
                latent_override(name, dim)
    results: dict[str, dict[str, Any]] = {}
    for name in args.presets:
        for dim in dims:
            label = f"{name}-d{dim}" if dim is not None else name
            run_dir = (args.out / label).resolve()
            overrides = list(args.overrides) + ([latent_override(name, dim)] if dim is not None else [])
            log.info("== %s", label)
            opts = TrainOptions(run_dir=run_dir, preset=name, data=args.data, overrides=tuple(overrides),
                                resume=True, device=args.device, seed=args.seed, max_steps=args.max_steps,
                                epochs=args.epochs, tiny=args.tiny, cache_dir=args.cache_dir)
            code = run_training(opts)
            if code != 0:
                log.error("%s failed (exit %d); see %s", label, code, run_dir / "train.log")
                continue
            ev = evaluate_run(run_dir, cache_dir=args.cache_dir)
            results.setdefault(name, {})[str(dim)] = ev["summary"]
    table = comparison_table(results, [str(d) for d in dims], metric=args.metric)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "comparison.json", {"metric": args.metric, "results": results})
    atomic_write_text(args.out / "comparison.md", table + "\n")
    print(table)
    return 0


def comparison_table(results: dict[str, dict[str, Any]], dims: list[str], *, metric: str) -> str:
    """Markdown: a row per preset, a column per latent size, cells ``mean ± std`` of ``metric``."""
    header = ["Model", *[f"d={d}" if d != "None" else "default" for d in dims]]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    for name, by_dim in results.items():
        cells = [name]
        for d in dims:
            stat = (by_dim.get(d) or {}).get(metric)
            if isinstance(stat, dict) and stat.get("mean") is not None:
                cells.append(f"{stat['mean']:.4f} ± {stat['std']:.4f}")
            elif isinstance(stat, (int, float)):
                cells.append(f"{stat:.4f}")
            else:
                cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
