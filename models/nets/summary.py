"""What each preset is, in numbers: paper, size, what it consumes, its latent.

The explorer's model picker and ``scripts/preset_table.py`` (which writes the table in
docs/presets.md) read the same summaries, so the documented parameter counts are the registry's.
Models are built on PyTorch's ``meta`` device: shapes without memory, so summarising the
139-million-parameter Natsiou baseline costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.nets.registry import PRESETS, Preset, build_model, get_preset

__all__ = [
    "PresetSummary",
    "markdown_table",
    "short_citation",
    "summarize_preset",
    "summarize_presets",
]


@dataclass(frozen=True, kw_only=True)
class PresetSummary:
    """One row of the preset table.

    n_parameters : trainable parameters at full size
    n_fitted : floating-point buffer values (a PCA basis, fitted in closed form), saved with the weights
    input_shape, latent_shape : one item, no batch axis
    """

    name: str
    paper: str
    model: str
    kind: str
    sample_rate: int | None
    input_shape: tuple[int, ...]
    latent_shape: tuple[int, ...]
    variational: bool
    trainable: bool
    n_parameters: int
    n_fitted: int
    description: str


def short_citation(paper: str) -> str:
    """``"Roche, Hueber, Limier, Girin. Title..."`` -> ``"Roche et al."``; two authors joined by ``&``."""
    authors = paper.split(". ", 1)[0]
    names = [a.strip() for a in authors.split(",") if a.strip()]
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} & {names[1]}"
    return f"{names[0]} et al."


def summarize_preset(preset: Preset | str) -> PresetSummary:
    """Build ``preset``'s full-size model on the meta device and describe it."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    with torch.device("meta"):
        model = build_model(p.model, p.model_config)
    sr = p.representation.get("sample_rate")
    return PresetSummary(
        name=p.name,
        paper=p.paper,
        model=p.model,
        kind=str(p.representation.get("kind", type(model).consumes)),
        sample_rate=int(sr) if sr is not None else None,
        input_shape=tuple(int(s) for s in model.input_shape),
        latent_shape=tuple(int(s) for s in model.latent_shape),
        variational=bool(type(model).variational),
        trainable=bool(type(model).trainable),
        n_parameters=sum(t.numel() for t in model.parameters()),
        n_fitted=sum(b.numel() for b in model.buffers() if b.is_floating_point()),
        description=p.description,
    )


def summarize_presets() -> list[PresetSummary]:
    """Every registered preset, in registration order (frame models, then Natsiou, then Lionello)."""
    from models.nets import catalog  # noqa: F401  (registers every model and preset)

    return [summarize_preset(p) for p in PRESETS.values()]


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(s) for s in shape)


def markdown_table(summaries: list[PresetSummary]) -> str:
    """The preset table of docs/presets.md, followed by the full references of its papers."""
    lines = [
        "| Preset | Paper | Model | Parameters | Consumes | Latent | What |",
        "|---|---|---|---:|---|---|---|",
    ]
    for s in summaries:
        params = f"{s.n_parameters:,}"
        if not s.trainable or s.n_fitted:
            params += f" ({s.n_fitted:,} fitted)"
        rate = f", {s.sample_rate / 1000:g} kHz" if s.sample_rate else ""
        latent = _shape(s.latent_shape) + (" (mean, log-var)" if s.variational else "")
        what = s.description.replace("|", "\\|")
        lines.append(
            f"| `{s.name}` | {short_citation(s.paper)} | `{s.model}` | {params} | "
            f"`{s.kind}` {_shape(s.input_shape)}{rate} | {latent} | {what} |"
        )
    papers = sorted({s.paper for s in summaries if s.paper})
    return "\n".join([*lines, "", "Papers:", "", *(f"- {p}" for p in papers)])
