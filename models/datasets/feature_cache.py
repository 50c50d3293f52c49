"""Features computed once per (dataset content, representation parameters), kept on disk.

Layout: ``<root>/features/<key>/`` where ``key`` hashes the dataset fingerprint, the
representation's ``to_dict()``, the load settings (sample rate, clip cap) and
:data:`FORMAT_VERSION`. The folder holds

* ``features.f32``: every clip's features, flattened and concatenated, little-endian float32
  (read back as one ``np.memmap``, so a large set costs no memory until used);
* ``side.f32``: the small side arrays drawing and decoding need (e.g. ``frame_max``,
  ``ref_db``), each clip's after the previous one's, stored and read the same way;
* ``manifest.json``: per clip its dataset index, name, shape, offset, side shapes and offsets
  and ``n_samples``; the clips that failed to decode with their reasons; the inputs of the key.

What is not kept: the STFT phase a spectral representation can return (``side["phase"]``, as
large as the features themselves). Nothing that reads the cache uses it: a decoded sound gets
its phase from a phase method, and the clip being played is analysed again, phase included.
Leaving it out keeps a 20,000-clip library's cache and its build to the size of the features.
Both files are written clip by clip as the analysis runs, so building holds one clip at a time.

An entry is built in a temporary sibling folder and renamed into place, so a reader never sees
half of one; a lock file (``<key>.lock``, ``flock``) makes a second process wait for the first
instead of computing the same features again. When the dataset or the representation changes,
so does the key: the old entry is simply not used (``FeatureCache.prune`` deletes entries).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.atomic import atomic_dir
from models.datasets.base import BuildCancelled, Dataset, Rejected, rejection_reason
from models.datasets.hashing import default_cache_root
from models.errors import LatentExplorerError

#: 2: side arrays in ``side.f32`` (memory-mapped), no phase; entries of format 1 are rebuilt.
FORMAT_VERSION = 2

#: Side keys never cached (see the module docstring).
UNCACHED_SIDE = frozenset({"phase"})


class _Analysis(Protocol):
    features: np.ndarray
    side: dict[str, np.ndarray]
    n_samples: int


class _Representation(Protocol):
    """What the cache needs of a representation.

    A representation that can keep the STFT phase lists ``"phase"`` in a ``side_keys``
    attribute and takes ``analyze(y, keep_phase=False)`` (models.representations' do); others
    (descriptor vectors, test doubles) are called as ``analyze(y)``.
    """

    sample_rate: int

    def to_dict(self) -> dict[str, Any]: ...

    def analyze(self, y: np.ndarray) -> _Analysis: ...


@dataclass(frozen=True)
class _ClipRecord:
    index: int
    name: str
    shape: tuple[int, ...]
    offset: int
    side_shapes: dict[str, tuple[int, ...]]
    side_offsets: dict[str, int]
    n_samples: int


class FeatureSet:
    """The cached features of one dataset under one representation.

    ``fs[j]`` is the ``j``-th usable clip's feature array (read-only, memory-mapped);
    ``fs.indices[j]`` is that clip's index in ``dataset.clips``. Clips that failed to decode
    are in ``fs.rejected`` and have no entry.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.key = path.name
        self.manifest = manifest
        self._records = [
            _ClipRecord(
                index=r["index"], name=r["name"], shape=tuple(r["shape"]), offset=r["offset"],
                side_shapes={k: tuple(v) for k, v in r["side_shapes"].items()},
                side_offsets=dict(r["side_offsets"]), n_samples=r["n_samples"],
            )
            for r in manifest["clips"]
        ]
        total = int(manifest["total_values"])
        self._data = _mapped(path / "features.f32", total)
        self._side = _mapped(path / "side.f32", int(manifest["total_side_values"]))
        self.rejected = [Rejected(Path(p), reason) for p, reason in manifest["rejected"]]

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, j: int) -> np.ndarray:
        r = self._records[j]
        size = int(np.prod(r.shape))
        return self._data[r.offset: r.offset + size].reshape(r.shape)

    def read(self, j: int, stop: int | None = None) -> list[np.ndarray]:
        """Clips ``j`` to ``stop - 1`` (default: ``j`` alone) read from the file in one read, as
        views of one new array (not mapped).

        A pass over every clip this way costs one block's memory; through ``fs[j]`` the pages
        read stay resident (and count in the process's memory) until the OS needs them. Clips
        lie in the file in entry order, so a block of them is one contiguous read.
        """
        recs = self._records[j: j + 1 if stop is None else stop]
        if not recs:
            return []
        sizes = [int(np.prod(r.shape)) for r in recs]
        total = recs[-1].offset + sizes[-1] - recs[0].offset
        block = (np.fromfile(self.path / "features.f32", dtype="<f4", count=total, offset=4 * recs[0].offset)
                 if total else np.zeros(0, dtype="<f4"))
        base = recs[0].offset
        return [block[r.offset - base: r.offset - base + n].reshape(r.shape) for r, n in zip(recs, sizes)]

    def nbytes(self, j: int) -> int:
        """Bytes of the ``j``-th clip's features."""
        return 4 * int(np.prod(self._records[j].shape))

    @property
    def indices(self) -> np.ndarray:
        """Dataset clip index of each entry, ``int64 [shape=(len(self),)]``."""
        return np.array([r.index for r in self._records], dtype=np.int64)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._records]

    @property
    def n_samples(self) -> list[int]:
        return [r.n_samples for r in self._records]

    def side(self, j: int) -> dict[str, np.ndarray]:
        """The ``j``-th clip's side arrays (float32 copies: small, and theirs to change)."""
        r = self._records[j]
        return {
            k: np.array(self._side[r.side_offsets[k]: r.side_offsets[k] + int(np.prod(shape))], dtype=np.float32)
            .reshape(shape)
            for k, shape in r.side_shapes.items()
        }

    def stack(self) -> np.ndarray:
        """All features as one array ``[shape=(len(self), *feature_shape)]``; needs equal shapes."""
        shapes = {r.shape for r in self._records}
        if len(shapes) > 1:
            raise LatentExplorerError(f"features have different shapes ({len(shapes)} kinds); cannot stack")
        if not self._records:
            return np.zeros((0,), dtype=np.float32)
        return np.asarray(self._data).reshape(len(self._records), *self._records[0].shape)


class FeatureCache:
    """Compute-once storage of features; ``root`` defaults to the user cache folder."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.dir = self.root / "features"

    def key(self, dataset: Dataset, representation: _Representation) -> str:
        return hashlib.sha256(_canonical(self._key_inputs(dataset, representation)).encode()).hexdigest()[:32]

    def _key_inputs(self, dataset: Dataset, representation: _Representation) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "dataset": dataset.fingerprint,
            "representation": representation.to_dict(),
            "sample_rate": int(representation.sample_rate),
            "max_duration": dataset.max_duration,
        }

    def lookup(self, dataset: Dataset, representation: _Representation) -> FeatureSet | None:
        """The cached entry, or ``None`` when it has not been built (or is unreadable)."""
        return self._open(self.dir / self.key(dataset, representation))

    def features(
        self,
        dataset: Dataset,
        representation: _Representation,
        *,
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_clip: Callable[[int, np.ndarray | None], None] | None = None,
    ) -> FeatureSet:
        """The features of every clip, computed now if no valid entry exists.

        Each clip is loaded at ``representation.sample_rate`` (capped at
        ``dataset.max_duration``) and passed to ``representation.analyze``. A clip that fails
        to decode or analyse is recorded in ``FeatureSet.rejected``, not raised.

        ``on_clip(i, features)`` is called, in clip order, with each clip's features as they
        are computed (``None`` for a rejected clip), so an encoder can start on the first clips
        while the rest are analysed; it is not called when the entry already exists.

        Raises
        ------
        BuildCancelled
            ``should_stop()`` returned true; nothing is left on disk.
        """
        key = self.key(dataset, representation)
        final = self.dir / key
        found = self._open(final)
        if found is not None:
            return found
        with self._lock(key):
            found = self._open(final)  # another process may have built it while we waited
            if found is not None:
                return found
            self._build(final, dataset, representation, progress, should_stop, on_clip)
        found = self._open(final)
        if found is None:
            raise LatentExplorerError(f"feature cache entry {final} could not be read back")
        return found

    def prune(self, keep: set[str] | None = None) -> int:
        """Delete every entry whose key is not in ``keep``; returns how many were deleted."""
        keep = keep or set()
        n = 0
        if self.dir.is_dir():
            for entry in self.dir.iterdir():
                if entry.is_dir() and not entry.name.startswith(".") and entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        (self.dir / f".{entry.name}.lock").unlink()
                    n += 1
        return n

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f".{key}.lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _open(self, path: Path) -> FeatureSet | None:
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("format") != FORMAT_VERSION:
                return None
            if (path / "features.f32").stat().st_size != 4 * int(manifest["total_values"]):
                return None
            if (path / "side.f32").stat().st_size != 4 * int(manifest["total_side_values"]):
                return None
            return FeatureSet(path, manifest)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _build(
        self,
        final: Path,
        dataset: Dataset,
        representation: _Representation,
        progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
        on_clip: Callable[[int, np.ndarray | None], None] | None = None,
    ) -> None:
        # Under the lock no other builder can be writing this key: build beside it, swap in.
        with atomic_dir(final) as tmp:
            manifest = self._compute(tmp, dataset, representation, progress, should_stop, on_clip)
            manifest["key_inputs"] = self._key_inputs(dataset, representation)
            (tmp / "manifest.json").write_text(json.dumps(manifest) + "\n", encoding="utf-8")

    def _compute(
        self,
        tmp: Path,
        dataset: Dataset,
        representation: _Representation,
        progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
        on_clip: Callable[[int, np.ndarray | None], None] | None = None,
    ) -> dict[str, Any]:
        sr = int(representation.sample_rate)
        analyze = _analyzer(representation)
        records: list[dict[str, Any]] = []
        rejected: list[list[str]] = []
        offset = side_offset = 0
        total = len(dataset.clips)
        with open(tmp / "features.f32", "wb") as out, open(tmp / "side.f32", "wb") as side_out:
            for i, clip in enumerate(dataset.clips):
                if should_stop is not None and should_stop():
                    raise BuildCancelled("feature computation cancelled")
                try:
                    analysis = analyze(dataset.load(i, sr=sr))
                    feats = np.asarray(analysis.features, dtype="<f4")
                    if not np.all(np.isfinite(feats)):
                        raise LatentExplorerError("features contain NaN or infinite values")
                except LatentExplorerError as exc:  # AudioLoadError, ConfigError, ...
                    rejected.append([str(clip.path), rejection_reason(exc, clip.path)])
                    if on_clip is not None:
                        on_clip(i, None)
                else:
                    out.write(np.ascontiguousarray(feats).tobytes())
                    side_shapes, side_offsets = {}, {}
                    for k, v in (analysis.side or {}).items():
                        if k in UNCACHED_SIDE:
                            continue
                        arr = np.ascontiguousarray(v, dtype="<f4")
                        side_out.write(arr.tobytes())
                        side_shapes[k] = list(arr.shape)
                        side_offsets[k] = side_offset
                        side_offset += arr.size
                    records.append({
                        "index": i, "name": clip.name, "shape": list(feats.shape), "offset": offset,
                        "side_shapes": side_shapes, "side_offsets": side_offsets,
                        "n_samples": int(analysis.n_samples),
                    })
                    offset += feats.size
                    if on_clip is not None:
                        on_clip(i, feats)
                if progress is not None:
                    progress(i + 1, total)
        return {"format": FORMAT_VERSION, "total_values": offset, "total_side_values": side_offset,
                "clips": records, "rejected": rejected}


def _analyzer(representation: _Representation) -> Callable[[np.ndarray], _Analysis]:
    # Ask a representation that can keep the phase not to: computing it only to drop it would
    # cost an angle per coefficient and the memory of a second spectrogram per clip.
    if "phase" in getattr(representation, "side_keys", frozenset()):
        return lambda y: representation.analyze(y, keep_phase=False)  # type: ignore[call-arg]
    return representation.analyze


def _mapped(path: Path, n_values: int) -> np.ndarray:
    """``n_values`` little-endian float32 of ``path``, memory-mapped read-only (np.memmap refuses 0)."""
    if n_values == 0:
        return np.zeros(0, dtype="<f4")
    return np.memmap(path, dtype="<f4", mode="r", shape=(n_values,))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot put {type(obj).__name__} in a feature-cache key")
