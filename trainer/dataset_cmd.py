"""``latent-trainer dataset ...``: build and inspect datasets.

    latent-trainer dataset build notes --out DIR [--programs 0 24 40] [--pitches 48-72]
    latent-trainer dataset build digits --out DIR [--voices en-us en-gb] [--variants m3 f2]
    latent-trainer dataset info PATH [--kind KIND] [--filter FIELD=VALUE ...] [--check] [--json]

Integer lists accept single values, ranges ``48-72`` (inclusive) and steps ``48-72:12``.

``dataset info`` checks headers (fast: NSynth's 289,205 files would take an hour to decode) and
says so on its last line; ``--check`` decodes every clip, so that files which fail only when
decoded (an all-NaN WAV, a truncated body) are listed with those refused at open.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from models.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="build or inspect a dataset")
    p.set_defaults(func=lambda args: p.print_help() or 0)
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION")

    build = dsub.add_parser("build", help="render a dataset from system packages")
    build.set_defaults(func=lambda args: build.print_help() or 0)
    bsub = build.add_subparsers(dest="builder", metavar="WHAT")

    from models.datasets.build_digits import DEFAULT_PITCHES as D_PITCHES
    from models.datasets.build_digits import DEFAULT_SPEEDS, DEFAULT_VARIANTS, DEFAULT_VOICES
    from models.datasets.build_notes import (
        DEFAULT_PITCHES,
        DEFAULT_PROGRAMS,
        DEFAULT_SOUNDFONT,
        DEFAULT_VELOCITIES,
    )

    notes = bsub.add_parser("notes", help="NSynth-style notes from a GM SoundFont (FluidSynth)")
    notes.add_argument("--out", required=True, help="folder to write (examples.json + audio/)")
    notes.add_argument("--programs", nargs="+", type=_ints, default=[list(DEFAULT_PROGRAMS)],
                       help=f"GM programs 0-119 (default {' '.join(map(str, DEFAULT_PROGRAMS))})")
    notes.add_argument("--pitches", nargs="+", type=_ints, default=[list(DEFAULT_PITCHES)],
                       help=f"MIDI pitches (default {' '.join(map(str, DEFAULT_PITCHES))})")
    notes.add_argument("--velocities", nargs="+", type=_ints, default=[list(DEFAULT_VELOCITIES)],
                       help=f"MIDI velocities (default {' '.join(map(str, DEFAULT_VELOCITIES))})")
    notes.add_argument("--soundfont", default=str(DEFAULT_SOUNDFONT), help="any .sf2 file")
    notes.add_argument("--force", action="store_true", help="replace OUT if it is not empty")
    notes.set_defaults(func=_build_notes)

    digits = bsub.add_parser("digits", help="spoken digits through espeak-ng (FSDD layout)")
    digits.add_argument("--out", required=True, help="folder to write")
    digits.add_argument("--voices", nargs="+", default=list(DEFAULT_VOICES))
    digits.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        help="espeak-ng variants (m1-m7, f1-f5, klatt...); 'none' for none")
    digits.add_argument("--speeds", nargs="+", type=_ints, default=[list(DEFAULT_SPEEDS)])
    digits.add_argument("--pitches", nargs="+", type=_ints, default=[list(D_PITCHES)])
    digits.add_argument("--repetitions", type=int, default=1)
    digits.add_argument("--force", action="store_true", help="replace OUT if it is not empty")
    digits.set_defaults(func=_build_digits)

    info = dsub.add_parser("info", help="summarise a dataset folder")
    info.add_argument("path")
    info.add_argument("--kind", choices=("folder", "nsynth", "fsdd", "hydrogen"))
    info.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                      help="keep clips whose FIELD equals VALUE (repeat; VALUE may be a JSON list)")
    info.add_argument("--check", action="store_true",
                      help="decode every clip (slower); clips that fail only when decoded are listed as rejected "
                      "(default: headers only)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=_info)


def _ints(text: str) -> list[int]:
    """``"60"`` -> [60]; ``"48-52"`` -> [48..52]; ``"48-72:12"`` -> [48, 60, 72]; commas split."""
    out: list[int] = []
    try:
        for part in text.split(","):
            span, _, step = part.partition(":")
            lo, dash, hi = span.partition("-")
            if dash:
                out.extend(range(int(lo), int(hi) + 1, int(step or 1)))
            else:
                out.append(int(span))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer list: {text!r}") from exc
    return out


def _flat(lists: list[list[int]]) -> list[int]:
    return [v for sub in lists for v in sub]


def _progress_bar(desc: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A tqdm bar on a terminal; nothing when stderr is not a tty (logs, pipes, the GUI)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="clip", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress, bar.close


def _build_notes(args: argparse.Namespace) -> int:
    from models.datasets import build_notes

    progress, close = _progress_bar("notes")
    try:
        report = build_notes(
            args.out, programs=_flat(args.programs), pitches=_flat(args.pitches),
            velocities=_flat(args.velocities), soundfont=args.soundfont, overwrite=args.force,
            progress=progress,
        )
    finally:
        close()
    _print_report(report)
    return 0


def _build_digits(args: argparse.Namespace) -> int:
    from models.datasets import build_digits

    variants = [None if v.lower() == "none" else v for v in args.variants]
    progress, close = _progress_bar("digits")
    try:
        report = build_digits(
            args.out, voices=args.voices, variants=variants, speeds=_flat(args.speeds),
            pitches=_flat(args.pitches), repetitions=args.repetitions, overwrite=args.force,
            progress=progress,
        )
    finally:
        close()
    _print_report(report)
    return 0


def _print_report(report: Any) -> None:
    print(f"wrote {report.written} clips to {report.out}")
    for name, reason in report.skipped:
        print(f"skipped {name}: {reason}")


def _parse_filters(items: list[str]) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for item in items:
        field, eq, value = item.partition("=")
        if not eq or not field:
            raise ConfigError(f"--filter wants FIELD=VALUE, got {item!r}")
        try:
            filters[field] = json.loads(value)
        except ValueError:
            filters[field] = value
    return filters


def dataset_summary(dataset: Any, *, skipped: Any = None, checked: str = "headers") -> dict[str, Any]:
    """What ``dataset info`` prints, as plain JSON-able data.

    ``skipped`` (a :class:`models.datasets.skipped.SkippedFiles`, default: the dataset's
    ``rejected``) lists the refused files; ``checked`` says how: ``"headers"`` or ``"decoded"``.
    """
    from models.datasets.skipped import SkippedFiles

    skipped = skipped if skipped is not None else SkippedFiles(dataset)
    durations = [c.meta.get("duration") for c in dataset.clips]
    known = [d for d in durations if d is not None]
    if dataset.kind == "nsynth" and dataset.clips:
        # The reader opens no NSynth file (289,205 headers take over a minute); every note of
        # an NSynth set has one length, so the first file's header stands for all of them.
        from models.audio import audio_info
        from models.errors import AudioLoadError

        try:
            known = [audio_info(dataset.clips[0].path).duration] * len(dataset.clips)
        except AudioLoadError:
            known = [4.0] * len(dataset.clips)  # NSynth's note length
    rates: dict[str, int] = {}
    for c in dataset.clips:
        sr = c.meta.get("sample_rate")
        rates[str(sr)] = rates.get(str(sr), 0) + 1
    cap = dataset.max_duration
    return {
        "path": str(dataset.root),
        "kind": dataset.kind,
        "clips": len(dataset.clips),
        "label_fields": list(dataset.label_fields),
        "default_label": dataset.default_label,
        "group_key": dataset.group_key,
        "counts": {f: {str(k): v for k, v in dataset.counts(f).items()} for f in dataset.label_fields},
        "total_duration_s": round(sum(known), 3),
        "sample_rates": rates,
        "max_duration_s": cap,
        "longer_than_cap": [c.name for c, d in zip(dataset.clips, durations) if d and cap and d > cap],
        "checked": checked,
        "rejected": [{"path": str(r.path), "name": r.name, "reason": r.reason, "stage": r.stage} for r in skipped],
    }


def _info(args: argparse.Namespace) -> int:
    from models.datasets import open_dataset

    from models.datasets.skipped import SkippedFiles

    dataset = open_dataset(args.path, kind=args.kind, **_parse_filters(args.filter))
    skipped = SkippedFiles(dataset)
    decode = bool(args.check)
    if decode:
        progress, close = _progress_bar("check")
        try:
            skipped.add_rejected(dataset.validate(progress=progress))
        finally:
            close()
    summary = dataset_summary(dataset, skipped=skipped, checked="decoded" if decode else "headers")
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}: {summary['kind']} dataset, {summary['clips']} clips, "
          f"{summary['total_duration_s'] / 60:.1f} min")
    print("sample rates: " + ", ".join(f"{sr} Hz x {n}" for sr, n in summary["sample_rates"].items()))
    if summary["group_key"]:
        print(f"group key: {summary['group_key']}")
    for field, counts in summary["counts"].items():
        shown = ", ".join(f"{k}: {v}" for k, v in list(counts.items())[:40])
        more = f", ... ({len(counts)} values)" if len(counts) > 40 else ""
        print(f"{field}: {shown}{more}")
    if summary["longer_than_cap"]:
        print(f"{len(summary['longer_than_cap'])} clips longer than {summary['max_duration_s']} s "
              f"are read up to that length")
    if summary["rejected"]:
        print(f"rejected ({len(summary['rejected'])}):")
        for line in skipped.lines():
            print(f"  {line}")
    if decode:
        print(f"checked: every clip decoded ({summary['clips'] + len(summary['rejected'])} files)")
    else:
        print("checked: headers only; files that fail only when decoded are not listed (--check decodes every clip)")
    return 0
