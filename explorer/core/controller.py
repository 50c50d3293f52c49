"""The explorer's state and the intents views may ask for. No Qt here (tested without it).

The controller holds what the app shows (dataset, loaded models, encodings, the map layout,
colours, hidden classes, selection, gains) and hands out *task functions* ``fn(state)`` that
capture a snapshot of what they need, so the window can run them on a worker and give the
result back with a ``set_*`` method on the GUI thread. Nothing here blocks on a long job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.inference import engine
from models.inference.engine import Encoding, Sound
from models.errors import CheckpointError, DatasetError
from models.mapping.projection import Embedding, PCAProjector, TSNEProjector

#: the colour field that means "k-means clusters of the codes" rather than a dataset label
KMEANS = "k-means clusters"
#: Colonel's GUI: five dials over contiguous bands of latent units
N_BANDS = 5


@dataclass
class LoadedModel:
    """A model ready to encode and decode, with the representation it was trained on."""

    key: str
    label: str
    model: Any
    representation: Any
    checkpoint: Any = None


@dataclass
class Selection:
    """What the user last picked: a map point (index into the map's points) or a position."""

    kind: str  # "point" | "position"
    index: int | None = None
    xy: tuple[float, float] | None = None


@dataclass
class Decoded:
    original: Sound | None
    decoded: Sound
    metrics: dict[str, float] = field(default_factory=dict)


def load_model(path: str | Path, *, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint and build its representation (slow: run it on a worker)."""
    from models.checkpoints.checkpoint import load_checkpoint
    from models.representations import representation_from_dict

    ckpt = load_checkpoint(path, device=device)
    rep = representation_from_dict(dict(ckpt.representation))
    label = f"{Path(path).stem} ({ckpt.info.model_name}, {rep.kind})"
    return LoadedModel(key=str(Path(path).resolve()), label=label, model=ckpt.model, representation=rep, checkpoint=ckpt)


def check_fit(lm: LoadedModel, dataset: Any) -> None:
    """Refuse a model that cannot read this dataset, with a message a user understands.

    Raises
    ------
    CheckpointError
        Different sample rate, a representation the model does not consume, or features
        whose shape the model cannot take.
    """
    rep, model = lm.representation, lm.model
    if dataset.sample_rate and int(dataset.sample_rate) != int(rep.sample_rate):
        raise CheckpointError(
            f"{lm.label} was trained on {rep.sample_rate} Hz audio, this dataset is {dataset.sample_rate} Hz. "
            "Open a dataset recorded at the model's rate, or train a model on this one."
        )
    consumes = getattr(model, "consumes", "")
    if consumes and consumes != rep.kind and not (consumes == "stft_sequence" and rep.kind == "stft_frames"):
        raise CheckpointError(f"{lm.label} consumes {consumes!r} features but carries a {rep.kind!r} representation")
    if dataset.clips:
        n = int(dataset.clips[0].meta.get("frames") or 0)
        sr0 = int(dataset.clips[0].meta.get("sample_rate") or rep.sample_rate)
        n = int(round(n * rep.sample_rate / sr0)) if n else rep.sample_rate
        shape = tuple(rep.feature_shape(n))
        try:
            if engine.item_layout(shape, model.input_shape, time_first=rep.kind == "stft_frames") == "whole":
                engine.fit_axis(shape, model.input_shape)
        except DatasetError as exc:
            raise CheckpointError(f"{lm.label} does not fit this dataset's sounds: {exc}") from None


class Controller:
    """App state plus the questions and intents of the views."""

    def __init__(self, *, cache: Any = None) -> None:
        #: a models.datasets.feature_cache.FeatureCache, or None to analyse clips on every encode
        self.cache = cache
        self.dataset: Any = None
        self.dataset_path: str | None = None
        self.models: dict[str, LoadedModel] = {}
        self.current_key: str | None = None
        self.encodings: dict[str, Encoding] = {}
        self.method = "pca"
        self.point_mode = "clip"  # "clip" | "frame"
        self.tsne_params: dict[str, Any] = {}
        self.embedding: Embedding | None = None
        self.points: np.ndarray = np.zeros((0, 2))  # what the map shows, partial layouts included
        self.colour_field: str | None = None
        self.kmeans_k = 8
        self.cluster_labels: np.ndarray | None = None  # per map point, for KMEANS
        self.hidden: set[str] = set()
        self.selection: Selection | None = None
        self.gain_edges: list[float] = [k / N_BANDS for k in range(1, N_BANDS)]
        self.gain_values: list[float] = [1.0] * N_BANDS
        self.decoded: Decoded | None = None
        #: explorer.core.metrics_task.ClassDTWCache: class MFCCs for the MFCC-DTW deviation, made on first use
        self.class_dtw: Any = None

    # --- dataset ---------------------------------------------------------------------------------
    def set_dataset(self, dataset: Any, path: str | Path | None = None) -> None:
        self.dataset = dataset
        self.dataset_path = str(path if path is not None else dataset.root)
        self.encodings.clear()
        self.embedding, self.points, self.cluster_labels = None, np.zeros((0, 2)), None
        self.selection, self.decoded = None, None
        self.hidden.clear()
        fields = list(getattr(dataset, "label_fields", ()))
        if self.colour_field not in (*fields, KMEANS):
            self.colour_field = getattr(dataset, "default_label", None) or (fields[0] if fields else KMEANS)

    @staticmethod
    def open_dataset_task(path: str | Path) -> Callable[[Any], Any]:
        def task(state: Any) -> Any:
            from models.datasets import open_dataset

            state.report(0.0, f"opening {Path(path).name}")
            ds = open_dataset(path)
            if not ds.clips:
                raise DatasetError(f"{path} holds no usable sound" + (f" ({len(ds.rejected)} files refused)" if ds.rejected else ""))
            return ds

        return task

    # --- models ---------------------------------------------------------------------------------
    @property
    def current(self) -> LoadedModel | None:
        return self.models.get(self.current_key) if self.current_key else None

    def add_model(self, lm: LoadedModel, *, select: bool = True) -> None:
        """Keep a loaded model; refused (CheckpointError) when it does not fit the dataset."""
        if self.dataset is not None:
            check_fit(lm, self.dataset)
        self.models[lm.key] = lm
        self.encodings.pop(lm.key, None)
        if select or self.current_key is None:
            self.select_model(lm.key)

    def select_model(self, key: str) -> None:
        if key not in self.models:
            raise KeyError(key)
        if key != self.current_key:
            self.current_key = key
            self.embedding, self.points, self.cluster_labels, self.decoded = None, np.zeros((0, 2)), None, None

    @property
    def encoding(self) -> Encoding | None:
        return self.encodings.get(self.current_key) if self.current_key else None

    def encode_task(self, lm: LoadedModel | None = None) -> Callable[[Any], Encoding | None]:
        """Encode the dataset with ``lm`` (default: the current model); a hot reload passes its new one."""
        lm, ds = lm or self.current, self.dataset
        if lm is None or ds is None:
            raise DatasetError("open a dataset and a model first")
        cache = self.cache
        if cache is None:
            return lambda state: engine.encode_dataset(lm.model, lm.representation, ds, state=state)

        def task(state: Any) -> Encoding | None:
            from models.datasets.base import BuildCancelled

            try:
                fs = cache.features(ds, lm.representation, should_stop=state.should_stop,
                                    progress=lambda i, n: state.report(0.8 * i / max(n, 1), f"analysing {i}/{n}"))
            except BuildCancelled:
                return None
            feats: list[np.ndarray | None] = [None] * len(ds.clips)
            for j, i in enumerate(fs.indices):
                feats[int(i)] = fs[j]
            return engine.encode_dataset(lm.model, lm.representation, ds, state=state, features=feats)

        return task

    def set_encoding(self, key: str, enc: Encoding) -> None:
        self.encodings[key] = enc
        if enc.layout == "whole":
            self.point_mode = "clip"

    # --- the map -----------------------------------------------------------------------------------
    def map_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes [shape=(n, d)], clip of each point, frame of each point or -1)."""
        enc = self.encoding
        if enc is None:
            return np.zeros((0, 1)), np.zeros(0, int), np.zeros(0, int)
        if self.point_mode == "frame" and enc.layout != "whole":
            return enc.frame_codes, enc.frame_clip, enc.frame_index
        ok = np.flatnonzero(enc.ok)
        return enc.clip_codes[ok], ok, np.full(len(ok), -1)

    @property
    def point_clip(self) -> np.ndarray:
        return self.map_codes()[1]

    def project_task(self, method: str | None = None, *, init: np.ndarray | None = None) -> Callable[[Any], Embedding | None]:
        method = method or self.method
        codes = self.map_codes()[0]
        if len(codes) == 0:
            raise DatasetError("nothing to project yet: encode the dataset first")
        params = dict(self.tsne_params)

        def task(state: Any) -> Embedding | None:
            if method == "pca":
                return PCAProjector(align_to=init).fit(codes)
            n_iter = int(params.get("n_iter", 500))
            total = n_iter + int(params.get("early_exaggeration_iter", 250))

            def cb(iteration: int, points: np.ndarray) -> None:
                state.partial(points)
                state.report(min(1.0, iteration / total), f"t-SNE iteration {iteration}/{total}")

            emb = TSNEProjector(init=init, **params).fit(codes, callback=cb, should_stop=state.should_stop)
            return emb

        return task

    def set_partial_points(self, points: np.ndarray) -> None:
        self.points = np.asarray(points, dtype=np.float64)

    def set_embedding(self, emb: Embedding) -> None:
        self.embedding = emb
        self.method = emb.method
        self.points = emb.points
        if self.colour_field == KMEANS:
            self.cluster_labels = None  # recomputed for the new points by the window

    # --- colours and classes --------------------------------------------------------------------------
    def colour_fields(self) -> list[str]:
        return [*getattr(self.dataset, "label_fields", ()), KMEANS] if self.dataset is not None else []

    def set_colour_field(self, name: str) -> None:
        if name not in self.colour_fields():
            raise KeyError(name)
        if name != self.colour_field:
            self.colour_field = name
            self.hidden.clear()

    def kmeans_task(self) -> Callable[[Any], np.ndarray]:
        codes, k = self.map_codes()[0], self.kmeans_k
        return lambda state: engine.kmeans_labels(codes, k)

    def point_labels(self) -> np.ndarray:
        """The class (as text) of every map point, by the colour field [shape=(n,), dtype=object]."""
        clips = self.point_clip
        if self.colour_field == KMEANS:
            if self.cluster_labels is None or len(self.cluster_labels) != len(clips):
                return np.array(["…"] * len(clips), dtype=object)
            return np.array([f"cluster {c + 1}" for c in self.cluster_labels], dtype=object)
        values = self.dataset.labels(self.colour_field)
        return np.array([str(values[c]) for c in clips], dtype=object)

    def classes(self) -> list[str]:
        """Classes in a stable order: numbers numerically, names alphabetically."""
        labels = dict.fromkeys(self.point_labels())

        def key(s: str) -> tuple:
            try:
                return (0, float(s.replace("cluster ", "")), s)
            except ValueError:
                return (1, 0.0, s)

        return sorted(labels, key=key)

    def toggle_class(self, label: str) -> None:
        self.hidden.symmetric_difference_update({label})

    def visible_mask(self) -> np.ndarray:
        labels = self.point_labels()
        if not self.hidden:
            return np.ones(len(labels), bool)
        return ~np.isin(labels, list(self.hidden))

    def class_centres_2d(self) -> dict[str, np.ndarray]:
        """Where each visible class sits on the map: the median of its points (robust for t-SNE)."""
        labels, pts = self.point_labels(), self.points
        if len(pts) != len(labels):
            return {}
        return {c: np.median(pts[labels == c], axis=0) for c in self.classes() if c not in self.hidden}

    # --- picking ----------------------------------------------------------------------------------------
    def hit_test(self, x: float, y: float, *, pixel_size: tuple[float, float], radius_px: float = 6.0) -> int | None:
        """The visible point nearest to ``(x, y)`` within ``radius_px`` screen pixels, or None.

        ``pixel_size`` is the data size of one screen pixel along x and y (the view's scale),
        so the radius means the same on the screen at any zoom and aspect ratio.
        """
        pts = self.points
        if len(pts) == 0:
            return None
        sx, sy = (max(abs(float(s)), 1e-300) for s in pixel_size)
        d2 = ((pts[:, 0] - x) / sx) ** 2 + ((pts[:, 1] - y) / sy) ** 2
        d2[~self.visible_mask()] = np.inf
        i = int(np.argmin(d2))
        return i if d2[i] <= radius_px**2 else None

    def select_point(self, i: int) -> None:
        self.selection = Selection("point", index=int(i))

    def select_position(self, x: float, y: float) -> None:
        self.selection = Selection("position", xy=(float(x), float(y)))

    # --- gains ------------------------------------------------------------------------------------------
    def set_gains(self, values: list[float] | None = None, edges: list[float] | None = None) -> None:
        if values is not None:
            self.gain_values = [float(v) for v in values]
        if edges is not None:
            self.gain_edges = sorted(float(e) for e in edges)

    def gains_vector(self) -> np.ndarray | None:
        enc = self.encoding
        if enc is None or all(v == 1.0 for v in self.gain_values):
            return None
        return engine.band_gains(enc.frame_codes.shape[1], self.gain_edges, self.gain_values)

    # --- decoding -----------------------------------------------------------------------------------------
    def decode_task(self) -> Callable[[Any], Decoded]:
        """Decode the selection: a clip (with its original), a frame (held), or a position."""
        lm, ds, enc, sel, emb = self.current, self.dataset, self.encoding, self.selection, self.embedding
        if lm is None or enc is None or sel is None:
            raise DatasetError("nothing selected")
        gains = self.gains_vector()
        _, clips, frames = self.map_codes()
        if sel.kind == "point":
            i = int(sel.index)
            clip, frame = int(clips[i]), int(frames[i])

            def task(state: Any) -> Decoded:
                original = engine.render_original(lm.representation, ds, clip)
                if frame < 0:
                    dec = engine.render_clip(lm.model, lm.representation, ds, enc, clip, gains=gains)
                else:
                    code = enc.frame_codes[(enc.frame_clip == clip) & (enc.frame_index == frame)][0]
                    title = f"{ds.clips[clip].name}, frame {frame} held"
                    dec = engine.render_code(lm.model, lm.representation, ds, enc, code, template_clip=clip,
                                             gains=gains, title=title, estimated=False)
                    dec.clip_index = clip
                return Decoded(original, dec)

            return task
        if emb is None:
            raise DatasetError("the map is still being computed")
        xy = np.asarray(sel.xy, dtype=np.float64)

        def task_pos(state: Any) -> Decoded:
            code = emb.inverse(xy[None])[0]
            _, near = emb.nearest(xy[None], k=1)
            dec = engine.render_code(lm.model, lm.representation, ds, enc, code,
                                     template_clip=int(clips[int(near[0, 0])]), gains=gains)
            return Decoded(None, dec)

        return task_pos

    def set_decoded(self, decoded: Decoded) -> None:
        self.decoded = decoded

    # --- tooltips -------------------------------------------------------------------------------------------
    def describe_point(self, i: int) -> str:
        clip = int(self.point_clip[i])
        c = self.dataset.clips[clip]
        lines = [c.name]
        lines += [f"{k}: {v}" for k, v in list(c.labels.items())[:4]]
        if self.colour_field == KMEANS:
            lines.append(str(self.point_labels()[i]))
        frames = self.map_codes()[2]
        if frames[i] >= 0:
            lines.append(f"frame {int(frames[i])}")
        if self.decoded and self.decoded.decoded.clip_index == clip and self.decoded.metrics:
            lines += [f"{k}: {v:.3g}" for k, v in self.decoded.metrics.items()]
        return "\n".join(lines)
