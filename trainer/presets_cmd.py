"""``latent-trainer presets``: every preset by name, one line each.

    latent-trainer presets            # name, paper, what it consumes, latent, one-line description
    latent-trainer presets --names    # just the names (for scripts and shell completion)

The same summaries as docs/presets.md (:mod:`models.nets.summary`), so the numbers agree.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the model presets, one line each",
                       description="List every preset `latent-trainer train --preset NAME` accepts.")
    p.add_argument("--names", action="store_true", help="print only the names")
    p.set_defaults(func=run)


def preset_lines(*, names_only: bool = False) -> list[str]:
    """One line per registered preset, in registration order."""
    from models.nets.summary import short_citation, summarize_presets

    rows = summarize_presets()
    if names_only:
        return [s.name for s in rows]
    width = max(len(s.name) for s in rows)
    out = []
    for s in rows:
        shape = " x ".join(str(d) for d in s.input_shape)
        rate = f" {s.sample_rate / 1000:g} kHz" if s.sample_rate else ""
        latent = " x ".join(str(d) for d in s.latent_shape)
        first = s.description.split(": ")[0].split(". ")[0].rstrip(".")
        out.append(f"{s.name:<{width}}  {short_citation(s.paper):<15} {s.kind} {shape}{rate}, "
                   f"latent {latent}{' (VAE)' if s.variational else ''}: {first}")
    return out


def run(args: argparse.Namespace) -> int:
    print("\n".join(preset_lines(names_only=args.names)))
    return 0
