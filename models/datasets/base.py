"""What every dataset reader returns: clips with labels, the files it refused, a fingerprint.

A :class:`Dataset` is deliberately plain data (a list of :class:`Clip`) plus the few facts the
rest of the project asks of it: which label fields exist and which one colours the map by
default, which field groups clips for a fair split (a speaker, an instrument, a drum kit), the
sample rate most clips share, and a fingerprint that names its content on any machine.

When files are checked
----------------------
* At open, every reader checks what is cheap: the file exists, is not empty, and (for audio
  found by walking folders) its header parses as audio. Failures go to ``dataset.rejected``.
* Decoding happens later, when a clip is loaded (``dataset.load``) or its features are
  computed (:mod:`models.datasets.feature_cache`); a decode failure there is reported (an
  :class:`~models.errors.AudioLoadError`, or a ``Rejected`` entry in the feature set), never
  fatal for the rest of the dataset.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.audio import MIN_SAMPLES, AudioInfo, audio_info, load_audio
from models.datasets.hashing import FileHasher
from models.errors import AudioLoadError, ConfigError, DatasetError, LatentExplorerError
from models.safe_paths import display_name

#: Clips are read at most this long, in seconds, unless the caller says otherwise: a stray
#: 10-minute recording in a folder of one-shots should cost 30 s of audio, not 10 minutes.
DEFAULT_MAX_DURATION = 30.0


class BuildCancelled(LatentExplorerError):
    """A build (dataset or feature cache) was stopped by its ``should_stop`` callback."""


@dataclass
class BuildReport:
    """What a dataset builder wrote and what it left out (name, reason)."""

    out: Path
    written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def check_output_folder(out: Path, overwrite: bool) -> None:
    """Refuse to build into a file, or into a non-empty folder unless ``overwrite``.

    Raises
    ------
    ConfigError
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose another folder or overwrite it")


@dataclass(frozen=True)
class Clip:
    """One sound of a dataset.

    ``labels`` holds the categorical fields a map can be coloured by (all values are str or
    int); ``meta`` holds everything else the reader knows (header facts, the raw NSynth entry).
    """

    path: Path
    name: str
    labels: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A file that is not part of the dataset, and why."""

    path: Path
    reason: str


@dataclass(eq=False)
class Dataset:
    """Clips, labels and metadata read from one folder.

    Attributes
    ----------
    root : the folder the dataset was opened from.
    kind : ``"folder"``, ``"nsynth"``, ``"fsdd"`` or ``"hydrogen"``.
    clips : the usable clips, in a stable order (sorted by relative path).
    label_fields : names of the keys of ``clip.labels``, most useful first.
    default_label : the field a map is coloured by when the user has not chosen.
    group_key : the label field that groups clips which must stay on one side of a
        train/test split (speaker, instrument, kit); ``None`` when there is none.
    sample_rate : the rate most clips are stored at; ``None`` when unknown (empty dataset).
    rejected : files that were found but are not usable, each with a reason.
    max_duration : ``load`` reads at most this many seconds per clip (``None``: no cap).
    """

    root: Path
    kind: str
    clips: list[Clip]
    label_fields: tuple[str, ...]
    default_label: str | None
    group_key: str | None
    sample_rate: int | None
    rejected: list[Rejected] = field(default_factory=list)
    max_duration: float | None = DEFAULT_MAX_DURATION
    _fingerprint: str | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.clips)

    def load(self, i: int, *, sr: int | None = None) -> np.ndarray:
        """Decode clip ``i`` as mono float32 at ``sr`` (default: ``self.sample_rate``).

        Returns
        -------
        y : np.ndarray [shape=(n,), dtype=float32], at most ``max_duration * sr`` samples.

        Raises
        ------
        AudioLoadError
            The file fails to decode (truncated, NaN, too short...).
        """
        clip = self.clips[i]
        return load_audio(clip.path, sr=sr or self.sample_rate, max_duration=self.max_duration)

    def validate(
        self,
        *,
        sr: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Rejected]:
        """Decode every clip; move those that fail from ``clips`` to ``rejected``.

        Opening only checks headers; this is the full check (what computing features does
        anyway). Returns the newly rejected entries. The fingerprint is recomputed on next use.

        Raises
        ------
        BuildCancelled
            ``should_stop()`` returned true; the dataset is left unchanged.
        """
        kept: list[Clip] = []
        failed: list[Rejected] = []
        for i, clip in enumerate(self.clips):
            if should_stop is not None and should_stop():
                raise BuildCancelled("validation cancelled")
            try:
                self.load(i, sr=sr)
            except AudioLoadError as exc:
                failed.append(Rejected(clip.path, rejection_reason(exc, clip.path)))
            else:
                kept.append(clip)
            if progress is not None:
                progress(i + 1, len(self.clips))
        if failed:
            self.clips = kept
            self.rejected = [*self.rejected, *failed]
            self._fingerprint = None
        return failed

    def labels(self, field_name: str | None = None) -> list[Any]:
        """The value of one label field for every clip (``default_label`` when not given)."""
        name = field_name or self.default_label
        if name is None:
            return [None] * len(self.clips)
        if name not in self.label_fields:
            raise DatasetError(f"no label field {name!r}; this dataset has {list(self.label_fields)}")
        return [c.labels.get(name) for c in self.clips]

    def groups(self) -> list[Any] | None:
        """The group of every clip (``None`` when the dataset has no group key)."""
        return None if self.group_key is None else self.labels(self.group_key)

    def counts(self, field_name: str) -> dict[Any, int]:
        """How many clips carry each value of ``field_name``, sorted by value."""
        counter = Counter(self.labels(field_name))
        return dict(sorted(counter.items(), key=lambda kv: (str(type(kv[0])), kv[0])))

    @property
    def fingerprint(self) -> str:
        """A 32-hex-digit name for this dataset's content, the same on any machine.

        It covers each clip's path relative to ``root``, a hash of its bytes, and its labels
        (plus ``kind``); it does not cover where the folder lives or file dates. Computed on
        first use; per-file hashes are cached on disk keyed by size and mtime, so a second
        computation reads no audio.
        """
        if self._fingerprint is None:
            fingerprint, gone = fingerprint_and_failures(self)
            if gone:
                # A file that vanished (or became unreadable) since the folder was listed is
                # rejected like a broken one, and the fingerprint names what is left.
                lost = {r.path for r in gone}
                self.clips = [c for c in self.clips if c.path not in lost]
                self.rejected = [*self.rejected, *gone]
                fingerprint, _ = fingerprint_and_failures(self)
            self._fingerprint = fingerprint
        return self._fingerprint


def compute_fingerprint(dataset: Dataset, *, hasher: FileHasher | None = None) -> str:
    """The fingerprint of ``dataset``'s clips (see :attr:`Dataset.fingerprint`).

    Raises
    ------
    DatasetError
        A clip's file cannot be read any more (it vanished since the folder was listed).
    """
    fingerprint, gone = fingerprint_and_failures(dataset, hasher=hasher)
    if gone:
        raise DatasetError(f"{display_name(gone[0].path)}: {gone[0].reason}")
    return fingerprint


def fingerprint_and_failures(dataset: Dataset, *, hasher: FileHasher | None = None) -> tuple[str, list[Rejected]]:
    """(fingerprint of the clips that could be hashed, the clips that could not, as Rejected)."""
    hasher = hasher or FileHasher(dataset.root)
    items, gone = [], []
    try:
        for clip in dataset.clips:
            rel = _relative(clip.path, dataset.root)
            try:
                digest = hasher.hash(clip.path)
            except OSError as exc:
                what = "vanished" if isinstance(exc, FileNotFoundError) else "cannot be read any more"
                gone.append(Rejected(clip.path, f"the file {what} since the folder was listed "
                                     f"({exc.strerror or type(exc).__name__})"))
                continue
            items.append([rel, digest, _jsonable(clip.labels)])
    finally:
        hasher.save()
    # ensure_ascii (the default) escapes the lone surrogates of names that are not UTF-8
    blob = json.dumps({"kind": dataset.kind, "clips": items}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:32], gone


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        # Hydrogen kits may point outside their folder; the file name still names it.
        return Path(path).name


def _jsonable(labels: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v)) for k, v in labels.items()}


def check_header(path: Path) -> tuple[AudioInfo | None, str | None]:
    """``(info, None)`` for a readable audio header, ``(None, reason)`` otherwise."""
    try:
        info = audio_info(path)
    except AudioLoadError as exc:
        return None, rejection_reason(exc, path)
    if info.frames < MIN_SAMPLES:
        return None, f"too short ({info.frames} sample{'s' if info.frames != 1 else ''}, at least {MIN_SAMPLES} needed)"
    if info.sample_rate <= 0:
        return None, f"invalid sample rate {info.sample_rate}"
    return info, None


def rejection_reason(exc: Exception, path: Path) -> str:
    """The message of ``exc`` without the leading ``"<file name>: "`` (a Rejected entry has it)."""
    text = str(exc)
    prefix = f"{path.name}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def header_meta(info: AudioInfo) -> dict[str, Any]:
    return {
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "frames": info.frames,
        "duration": round(info.duration, 6),
        "subtype": info.subtype,
    }


def most_common_rate(clips: Iterable[Clip]) -> int | None:
    rates = Counter(c.meta.get("sample_rate") for c in clips if c.meta.get("sample_rate"))
    return int(rates.most_common(1)[0][0]) if rates else None


def apply_filters(clips: Sequence[Clip], filters: dict[str, Any], *, kind: str) -> list[Clip]:
    """Keep the clips whose fields match every filter.

    A filter value matches a field value when it is equal to it; a list, tuple, set or
    ``range`` matches any of its members; a callable matches when it returns true. A field
    holding a list (NSynth's ``qualities_str``) matches a value it contains. Fields are
    looked up in ``labels`` first, then ``meta``. Numbers given as strings (from a command
    line) compare with numbers.
    """
    if not filters:
        return list(clips)
    known: set[str] = set()
    for c in clips:
        known.update(c.labels)
        known.update(c.meta)
    unknown = sorted(set(filters) - known) if clips else []
    if unknown:
        raise DatasetError(
            f"cannot filter a {kind} dataset by {unknown}; its fields are {sorted(known)}"
        )
    predicates = {name: _predicate(value) for name, value in filters.items()}
    out = []
    for c in clips:
        if all(pred(c.labels[n] if n in c.labels else c.meta.get(n)) for n, pred in predicates.items()):
            out.append(c)
    return out


def _predicate(value: Any) -> Callable[[Any], bool]:
    if callable(value) and not isinstance(value, (str, bytes)):
        return lambda v: bool(value(v))
    if isinstance(value, (list, tuple, set, frozenset, range)):
        members = [_predicate(m) for m in value]
        return lambda v: any(m(v) for m in members)
    return lambda v: _equal(v, value)


def _equal(actual: Any, wanted: Any) -> bool:
    if actual == wanted:
        return True
    if isinstance(actual, (list, tuple)):
        # A list field (NSynth's qualities_str) matches any value it holds.
        return any(_equal(a, wanted) for a in actual)
    if isinstance(actual, (int, float)) and not isinstance(actual, bool) and isinstance(wanted, str):
        try:
            return float(wanted) == float(actual)
        except ValueError:
            return False
    return False
