"""The explorer's state and the intents views may ask for. No Qt here (tested without it).

The controller holds what the app shows (dataset, loaded models, encodings, the map layout,
colours, hidden classes, selection, gains, morph paths, decoded sound and its metrics) and hands
out *task functions* ``fn(state)`` that capture a snapshot of what they need, so the window can
run them on a worker and give the result back with a ``set_*`` method on the GUI thread. Nothing
here blocks on a long job.

It is the one owner of that state and announces every change itself, through the
:class:`psygnal.Signal` attributes of :class:`Controller` (as napari's evented models do): a view
connects to ``controller.selection_changed`` and redraws, nobody has to remember to emit after a
setter. psygnal calls the slots synchronously in the thread that changed the state, so state
changes only on the thread that made the controller (the GUI thread): a worker returns its
result, which a ``set_*`` method then commits there; a change from another thread raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal

from explorer.core.metrics_task import ClassDTWCache
from explorer.core.own_data import DESCRIPTORS, MapFilter, originals_task
from explorer.core.progressive import FillingMap, encoding_task
from explorer.core.point_info import KMEANS, PointClasses, PointInfo, class_centres, describe_point
from explorer.core.records import Decoded, LoadedModel, Selection, load_model  # noqa: F401 - load_model re-exported
from models.datasets import open_dataset
from models.datasets.skipped import SkippedFiles
from models.inference import engine
from models.inference.fit import check_fit
from models.inference.decode import envelope_context, streaming
from models.inference.engine import Encoding
from models.errors import DatasetError, LatentExplorerError
from models.mapping.projection import Embedding, PCAProjector, TSNEProjector
from models.mapping.tsne_job import TSNEInterrupted
from models.morphing import render, sources

if TYPE_CHECKING:  # type names only
    from models.morphing.morph import MorphPath

#: Colonel's GUI: five dials over contiguous bands of latent units
N_BANDS = 5


class Controller:
    """App state plus the questions and intents of the views.

    Every attribute below is read freely; it is changed only through the methods, each of which
    announces what it changed through the signals (payloads are small: views read the rest from
    the controller). Change it on the thread that made it (see the module docstring).

    Signals
    -------
    dataset_changed()
        A new dataset: encodings, map, selection and hidden classes were reset.
    models_changed()
        A model was added, replaced or dropped (``models``).
    model_changed()
        Another current model (``current_key``); its map is still to be computed.
    encoding_changed()
        A model's encoding arrived (``encodings``).
    mapping_changed()
        The projection method or the point mode changed (``method``, ``point_mode``).
    embedding_changed(bool)
        New map points (``points``); the bool says whether the layout is final (an ``embedding``)
        rather than a partial t-SNE iteration.
    colours_changed()
        The colour field or the k-means clusters changed (the classes did).
    hidden_classes_changed()
        Classes were hidden or shown (``hidden``).
    selection_changed()
        ``selection`` changed (or was cleared).
    gains_changed()
        ``gain_values`` or ``gain_edges`` changed.
    decoded_changed()
        ``decoded`` holds another sound (or None).
    metrics_changed()
        ``decoded.metrics`` were (partly) computed.
    paths_changed()
        The session's morph paths (``paths``) were replaced as a whole (a session, undo); the
        path book edits single paths and tells its panel itself.
    phase_changed()
        ``clip_phase`` changed: how a click on a clip is decoded (the selection wants decoding again).
    """

    dataset_changed = Signal()
    models_changed = Signal()
    model_changed = Signal()
    encoding_changed = Signal()
    mapping_changed = Signal()
    embedding_changed = Signal(bool)
    colours_changed = Signal()
    hidden_classes_changed = Signal()
    selection_changed = Signal()
    gains_changed = Signal()
    decoded_changed = Signal()
    metrics_changed = Signal()
    paths_changed = Signal()
    phase_changed = Signal()

    def __init__(self, *, cache: Any = None) -> None:
        self._owner = threading.get_ident()
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
        #: the phase of a clip's own decoding: estimated, as every other decoded sound (so a path's
        #: end step is the click on its end point), or "original" (a labelled reference)
        self.clip_phase: str = engine.ESTIMATED_PHASE
        #: the session's morph paths (saved with it); edited through explorer.core.path_book.PathBook
        self.paths: list[MorphPath] = []
        #: class MFCCs and DTW matrices for the MFCC-DTW deviation, shared by metrics tasks
        self.class_dtw = ClassDTWCache()
        #: which sounds the map shows, by any field (announces its own changes)
        self.map_filter = MapFilter()
        #: every file of the dataset left out, with its reason (at open, and when encoding)
        self.skipped = SkippedFiles()
        #: the map of an encoding still arriving (set_partial_encoding)
        self.filling = FillingMap()
        #: each map point's codes, clip, frame and class, computed once per layout (hover, hit-test
        #: and t-SNE frames read arrays); it checks what it was computed from on every question
        self.point_info = PointInfo()

    def _changing(self) -> None:
        """Refuse a change from another thread: its slots (widgets) would run on that thread."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("the controller changes on the thread that made it (the GUI thread); "
                               "return the result from the worker and commit it there")

    # --- dataset ---------------------------------------------------------------------------------
    def set_dataset(self, dataset: Any, path: str | Path | None = None) -> list[str]:
        """Show ``dataset``; models that cannot read it stay loaded but not current. Returns why.

        With no current model left, the window shows the descriptor map (:meth:`show_descriptors`).
        """
        self._changing()
        self.dataset = dataset
        self.point_info.invalidate()  # the same dataset opened again may carry other labels
        self.dataset_path = str(path if path is not None else dataset.root)
        self.encodings.clear()
        self.embedding, self.points, self.cluster_labels = None, np.zeros((0, 2)), None
        had_selection, had_sound = self.selection is not None, self.decoded is not None
        self.selection, self.decoded = None, None
        self.hidden.clear()
        self.skipped = SkippedFiles(dataset)
        self.map_filter.clear()
        fields = list(getattr(dataset, "label_fields", ()))
        if self.colour_field not in (*fields, KMEANS):
            self.colour_field = getattr(dataset, "default_label", None) or (fields[0] if fields else KMEANS)
        refused, fitting = [], []
        for key, lm in self.models.items():
            try:
                check_fit(lm, dataset)
                fitting.append(key)
            except LatentExplorerError as exc:  # kept for another dataset, never unloaded
                refused.append(f"{exc} ({lm.label} stays loaded)")
        if self.current_key not in fitting:
            self.current_key = fitting[0] if fitting else None
        self.dataset_changed.emit()
        if had_selection:
            self.selection_changed.emit()
        if had_sound:
            self.decoded_changed.emit()
        return refused

    @staticmethod
    def open_dataset_task(path: str | Path) -> Callable[[Any], Any]:
        def task(state: Any) -> Any:
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
        self._changing()
        if self.dataset is not None:
            check_fit(lm, self.dataset)
        self.models[lm.key] = lm
        self.encodings.pop(lm.key, None)
        if lm.key == self.current_key:  # the current file opened again: its map starts afresh
            self.current_key = None
        self.models_changed.emit()
        if select or self.current_key is None:
            self.select_model(lm.key)

    def clear_models(self) -> None:
        """Forget every model (a session is about to bring its own)."""
        self._changing()
        if self.models or self.current_key is not None:
            self.models.clear()
            self.encodings.clear()
            self.current_key = None
            self.models_changed.emit()

    def select_model(self, key: str) -> None:
        """Make ``key`` current; its map, clusters and decoded sound start afresh."""
        self._changing()
        if key not in self.models:
            raise KeyError(key)
        if self.dataset is not None and key != self.current_key:
            check_fit(self.models[key], self.dataset)  # CheckpointError: this dataset stays on its map
        if key != self.current_key:
            had_sound = self.decoded is not None
            self.current_key = key
            self.embedding, self.points, self.cluster_labels, self.decoded = None, np.zeros((0, 2)), None, None
            self.model_changed.emit()
            if had_sound:
                self.decoded_changed.emit()

    def replace_model(self, lm: LoadedModel, encoding: Encoding, embedding: Embedding) -> bool:
        """Swap in a retrained model with its encoding and map at once (a hot reload; ``lm`` fits).

        ``lm`` replaces the model with the same key (or is added) and becomes current. The map's
        points follow the dataset's clips, so a selected point stays when their count did not
        change, a selected position always does. Returns whether the selection was kept."""
        self._changing()
        selection, n_before = self.selection, len(self.points)
        self.models[lm.key] = lm
        self.current_key = lm.key
        self.encodings[lm.key] = encoding
        if not encoding.has_time:
            self.point_mode = "clip"
        self.embedding, self.method, self.points = embedding, embedding.method, embedding.points
        self.cluster_labels, self.decoded = None, None
        kept = selection is not None and (selection.kind == "position" or (
            len(embedding.points) == n_before and selection.index is not None and selection.index < n_before))
        self.selection = selection if kept else None
        if self.colour_field is not None and self.colour_field not in self.colour_fields():
            self.colour_field = None
        for sig in (self.models_changed, self.model_changed, self.encoding_changed, self.mapping_changed):
            sig.emit()
        self.embedding_changed.emit(True)
        self.selection_changed.emit()
        self.decoded_changed.emit()
        return bool(kept)

    @property
    def encoding(self) -> Encoding | None:
        return self.encodings.get(self.current_key) if self.current_key else None

    def encode_task(self, lm: LoadedModel | None = None, *, dataset: Any = None) -> Callable[[Any], Encoding | None]:
        """Encode ``dataset`` (default: the open one) with ``lm`` (default: the current model); a hot reload passes its own.

        The task hands partial encodings (the clips done so far) to ``state.partial``, for
        :meth:`set_partial_encoding` (:func:`explorer.core.progressive.encoding_task`)."""
        lm, ds = lm or self.current, dataset or self.dataset
        if lm is None or ds is None:
            raise DatasetError("open a dataset and a model first")
        return encoding_task(lm, ds, self.cache)

    def set_partial_encoding(self, key: str, enc: Encoding) -> bool:
        """The clips of ``key`` encoded so far, shown at once (:class:`FillingMap`: a PCA that does
        not jump as more arrive). Ignored, returning False, unless ``key`` is current."""
        self._changing()
        if key != self.current_key or (self.encodings.get(key) is not None and not self.filling.filling):
            return False
        if self.encodings.get(key) is None:
            self.filling.reset()  # a new encoding: nothing shown before belongs to it
        self.encodings[key] = enc
        self.embedding = None
        self.points = self.filling.place(key, *self.map_codes())
        self.embedding_changed.emit(False)
        return True

    def end_filling(self, key: str) -> None:
        """An encoding of ``key`` ended without its result (cancelled, failed): its partial map
        goes, and the state is what it was before it started (no encoding, an empty map)."""
        self._changing()
        if self.filling.key != key or not self.filling.filling:
            return
        self.filling.reset()
        self.encodings.pop(key, None)
        if key == self.current_key:
            had_sound = self.decoded is not None or self.selection is not None
            self.embedding, self.points, self.cluster_labels = None, np.zeros((0, 2)), None
            self.selection, self.decoded = None, None
            self.encoding_changed.emit()
            self.embedding_changed.emit(False)
            if had_sound:
                self.selection_changed.emit()
                self.decoded_changed.emit()

    def fill_layout(self) -> np.ndarray | None:
        """The current map's codes placed as its filled-in map placed them, once after its encoding
        ended (else None): what the final projection aligns to or starts from."""
        return self.filling.final_layout(self.current_key, *self.map_codes()) if self.current_key else None

    def set_encoding(self, key: str, enc: Encoding) -> None:
        self._changing()
        self.encodings[key] = enc
        if self.filling.key == key:
            self.filling.complete = True
        self.skipped.add_failed(self.dataset, enc.failed)
        if not enc.has_time and self.point_mode != "clip":
            self.point_mode = "clip"
            self.mapping_changed.emit()
        self.encoding_changed.emit()

    def show_descriptors(self, enc: Encoding) -> None:
        """Map the dataset by audio descriptors (no model: clicks play the originals).

        ``enc`` is :func:`models.mapping.descriptors.describe_dataset`'s; a model added later
        becomes current and its latent map replaces this one.
        """
        self._changing()
        self.current_key = DESCRIPTORS
        self.embedding, self.points, self.cluster_labels, self.selection = None, np.zeros((0, 2)), None, None
        self.model_changed.emit()
        self.set_encoding(DESCRIPTORS, enc)

    # --- the map -----------------------------------------------------------------------------------
    def map_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes [shape=(n, d)], clip of each point, frame of each point or -1).

        Cached (:mod:`explorer.core.point_info`): the encoding's own arrays where no clip is left
        out, so a hover or a tooltip copies no code matrix. Do not write into them.
        """
        mp = self.point_info.points(self.encoding, self.point_mode)
        return mp.codes, mp.clips, mp.frames

    @property
    def point_clip(self) -> np.ndarray:
        return self.map_codes()[1]

    def project_task(self, method: str | None = None, *, init: np.ndarray | None = None) -> Callable[[Any], Embedding | None]:
        """Project the map's codes; a t-SNE stopped before its first iteration returns the map before it."""
        method = method or self.method
        codes = self.map_codes()[0]
        if len(codes) == 0:
            raise DatasetError("nothing to project yet: encode the dataset first")
        params, previous = dict(self.tsne_params), self.embedding

        def task(state: Any) -> Embedding | None:
            if method == "pca":
                return PCAProjector(align_to=init).fit(codes)
            n_iter = int(params.get("n_iter", 500))
            total = n_iter + int(params.get("early_exaggeration_iter", 250))

            def cb(iteration: int, points: np.ndarray) -> None:
                state.partial(points)
                state.report(min(1.0, iteration / total), f"t-SNE iteration {iteration}/{total}")

            try:
                return TSNEProjector(init=init, **params).fit(codes, callback=cb, should_stop=state.should_stop)
            except TSNEInterrupted:
                return previous

        return task

    def set_method(self, method: str) -> None:
        """The projection the map is (to be) computed with: "pca" or "tsne"."""
        self._changing()
        if method != self.method:
            self.method = method
            self.mapping_changed.emit()

    def set_point_mode(self, mode: str) -> bool:
        """One point per clip or per frame; the map and the selection start afresh.

        Returns whether the mode changed (frames of a whole-clip model are refused).
        """
        self._changing()
        enc = self.encoding
        if mode == self.point_mode or enc is None or (mode == "frame" and not enc.has_time):
            return False
        self.point_mode = mode
        self.selection, self.cluster_labels = None, None
        self.mapping_changed.emit()
        self.selection_changed.emit()
        return True

    def set_partial_points(self, points: np.ndarray) -> None:
        self._changing()
        self.points = np.asarray(points, dtype=np.float64)
        self.embedding_changed.emit(False)

    def set_embedding(self, emb: Embedding) -> None:
        self._changing()
        self.embedding = emb
        method_changed = emb.method != self.method
        self.method = emb.method
        self.points = emb.points
        if self.colour_field == KMEANS:
            self.cluster_labels = None  # recomputed for the new points by the window
        if method_changed:
            self.mapping_changed.emit()
        self.embedding_changed.emit(True)

    # --- colours and classes --------------------------------------------------------------------------
    def colour_fields(self) -> list[str]:
        return [*getattr(self.dataset, "label_fields", ()), KMEANS] if self.dataset is not None else []

    def set_colour_field(self, name: str) -> None:
        self._changing()
        if name not in self.colour_fields():
            raise KeyError(name)
        if name != self.colour_field:
            self.colour_field = name
            self.hidden.clear()
            self.colours_changed.emit()

    def set_cluster_labels(self, labels: np.ndarray) -> None:
        """k-means clusters of the map's points [shape=(n,)], for the KMEANS colour field."""
        self._changing()
        self.cluster_labels = np.asarray(labels)
        self.colours_changed.emit()

    def restore_view(self, *, colour_field: str | None = None, hidden: set[str] | None = None,
                     method: str | None = None, point_mode: str | None = None,
                     gains: dict[str, list[float]] | None = None) -> None:
        """A session's view of the dataset, before its models and map arrive."""
        self._changing()
        if colour_field in self.colour_fields() and colour_field != self.colour_field:
            self.colour_field = colour_field
            self.colours_changed.emit()
        if hidden is not None and set(hidden) != self.hidden:
            self.hidden = set(hidden)
            self.hidden_classes_changed.emit()
        if (method or self.method) != self.method or (point_mode or "clip") != self.point_mode:
            self.method, self.point_mode = method or self.method, point_mode or "clip"
            self.mapping_changed.emit()
        if gains:
            self.set_gains(gains.get("values"), gains.get("edges"))

    def kmeans_task(self) -> Callable[[Any], np.ndarray]:
        codes, k = self.map_codes()[0], self.kmeans_k
        return lambda state: engine.kmeans_labels(codes, k)

    def point_classes(self) -> PointClasses:
        """Every map point's class as integers into the class names (cached; see :mod:`explorer.core.point_info`)."""
        return self.point_info.classes(self.dataset, self.point_clip, self.colour_field, self.cluster_labels)

    def point_labels(self) -> np.ndarray:
        """The class (as text) of every map point, by the colour field [shape=(n,), dtype=object], read-only."""
        return self.point_classes().text

    def classes(self) -> list[str]:
        """Classes in a stable order: numbers numerically, names alphabetically (:func:`explorer.core.point_info.class_sort_key`)."""
        return list(self.point_classes().names)

    def class_counts(self) -> dict[str, int]:
        """How many map points each class has."""
        pc = self.point_classes()
        return {n: int(k) for n, k in zip(pc.names, pc.counts)}

    def toggle_class(self, label: str) -> None:
        self._changing()
        self.hidden.symmetric_difference_update({label})
        self.hidden_classes_changed.emit()

    def visible_mask(self) -> np.ndarray:
        """Points of shown classes that pass the map filter [shape=(n,), dtype=bool], read-only (cached)."""
        return self.point_info.visible(self.point_classes(), self.hidden, self.map_filter, self.dataset,
                                       self.point_clip)

    def class_centres_2d(self) -> dict[str, np.ndarray]:
        """Where each visible class sits on the map: the median of its shown points (robust for t-SNE)."""
        pc = self.point_classes()
        return class_centres(self.points, pc, self.visible_mask()) if len(self.points) == len(pc.index) else {}

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
        self._changing()
        self.selection = Selection("point", index=int(i))
        self.selection_changed.emit()

    def select_position(self, x: float, y: float) -> None:
        self._changing()
        self.selection = Selection("position", xy=(float(x), float(y)))
        self.selection_changed.emit()

    # --- phase -----------------------------------------------------------------------------------------
    def set_clip_phase(self, phase: str) -> None:
        """Decode clicks on clips with ``phase``: ``engine.ESTIMATED_PHASE`` (the default, what
        every other decoded sound uses) or ``"original"`` (the clip's own phase, a reference)."""
        self._changing()
        if phase not in (engine.ESTIMATED_PHASE, "original"):
            raise ValueError(f"a click is decoded with the estimated or the original phase, not {phase!r}")
        if phase != self.clip_phase:
            self.clip_phase = phase
            self.phase_changed.emit()

    # --- gains ------------------------------------------------------------------------------------------
    def set_gains(self, values: list[float] | None = None, edges: list[float] | None = None) -> None:
        self._changing()
        before = (self.gain_values, self.gain_edges)
        if values is not None:
            self.gain_values = [float(v) for v in values]
        if edges is not None:
            self.gain_edges = sorted(float(e) for e in edges)
        if (self.gain_values, self.gain_edges) != before:
            self.gains_changed.emit()

    def gains_vector(self) -> np.ndarray | None:
        enc = self.encoding
        if enc is None or all(v == 1.0 for v in self.gain_values):
            return None
        return engine.band_gains(enc.frame_codes.shape[1], self.gain_edges, self.gain_values)

    # --- decoding -----------------------------------------------------------------------------------------
    def decode_task(self, *, stream: Callable[[int], Any] | None = None) -> Callable[[Any], Decoded]:
        """Decode the selection: a clip (with its original), a frame (held), or a position.

        stream : ``stream(sr)`` opens a sound stream on the output (``AudioOutput.stream``): the
            decoded sound's blocks go to it while it is being made, the first as soon as it
            exists, and it is closed when the task ends. Nothing is opened when the selection's
            sound is not a decoding (a descriptor map plays the recording itself).
        """
        lm, ds, enc, sel, emb = self.current, self.dataset, self.encoding, self.selection, self.embedding
        if self.current_key == DESCRIPTORS and enc is not None and sel is not None:
            near = sel.index if sel.kind == "point" else int(emb.nearest(np.asarray([sel.xy]), k=1)[1][0, 0])
            clip = int(self.point_clip[near])
            return lambda state: Decoded(*originals_task(ds, clip)(state))
        if lm is None or enc is None or sel is None:
            raise DatasetError("nothing selected")
        gains = self.gains_vector()
        _, clips, frames = self.map_codes()
        book = sources.TrajectoryBook(enc, lm.representation, ds, input_shape=lm.model.input_shape)
        if sel.kind == "point":
            i = int(sel.index)
            clip, frame = int(clips[i]), int(frames[i])
            phase = self.clip_phase

            cache = self.cache

            def task(state: Any) -> Decoded:
                # the sound first, streamed; its display spectrogram and the original after it
                with _streamed(stream, lm.representation.sample_rate) as hand_over:
                    if frame < 0:
                        # the clip's level and length from the feature cache; its phase only when asked for
                        ctx = None if phase == "original" else envelope_context(lm.representation, ds, clip, cache=cache)
                        dec = engine.render_clip(lm.model, lm.representation, ds, enc, clip, gains=gains, phase=phase,
                                                 spectrogram=False, on_block=hand_over, context=ctx)
                    else:  # one frame held over its clip, under the clip's envelope (Colonel's synthesiser)
                        dec = _decode_streamed(hand_over, lambda: render.decode_trajectory(
                            lm.model, lm.representation, book.point(clip, frame), latent_shape=enc.latent_shape,
                            gains=gains, title=f"{ds.clips[clip].name}, frame {frame} held", estimated=False))
                        dec.clip_index = clip
                dec.spectrogram = engine.display_spectrogram(dec.y, dec.sr)
                return Decoded(engine.render_original(lm.representation, ds, clip), dec)

            return task
        if emb is None:
            raise DatasetError("the map is still being computed")
        # empty space: the trajectories of the nearest visible sounds, blended by distance
        shown = self.visible_mask()  # all hidden: the nearest sounds all the same, not silence
        rows, w = sources.position_members(self.points, sel.xy, visible=shown if shown.any() else None)
        members = [(int(clips[r]), int(frames[r])) for r in rows]
        names = ", ".join(f"{ds.clips[c].name} {wt:.0%}" for (c, _), wt in sorted(zip(members, w), key=lambda m: -m[1])[:3])

        def task_pos(state: Any) -> Decoded:
            with _streamed(stream, lm.representation.sample_rate) as hand_over:
                dec = _decode_streamed(hand_over, lambda: render.decode_trajectory(
                    lm.model, lm.representation, book.blend(members, w), latent_shape=enc.latent_shape,
                    gains=gains, title=f"blend of the nearest sounds: {names}"))
            dec.spectrogram = engine.display_spectrogram(dec.y, dec.sr)
            return Decoded(None, dec)

        return task_pos

    def set_decoded(self, decoded: Decoded | None) -> None:
        self._changing()
        self.decoded = decoded
        self.decoded_changed.emit()

    def set_metrics(self, metrics: dict[str, float | str]) -> None:
        """Scores of the decoded sound (quick ones first, the class deviation later)."""
        self._changing()
        if self.decoded is not None:
            self.decoded.metrics = dict(metrics)
            self.metrics_changed.emit()

    # --- morph paths ------------------------------------------------------------------------------------
    def set_paths(self, paths: list[MorphPath]) -> None:
        """Replace the session's morph paths (the list object stays the same)."""
        self._changing()
        self.paths[:] = paths
        self.paths_changed.emit()

    # --- tooltips -------------------------------------------------------------------------------------------
    def describe_point(self, i: int) -> str:
        """Map point ``i``'s tooltip (:func:`explorer.core.point_info.describe_point`)."""
        return describe_point(i, dataset=self.dataset, points=self.point_info.points(self.encoding, self.point_mode),
                              colour_field=self.colour_field,
                              classes=self.point_classes() if self.colour_field == KMEANS else None,
                              decoded=self.decoded)


@contextlib.contextmanager
def _streamed(stream: Callable[[int], Any] | None, sr: int) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A block handler that opens ``stream(sr)`` at the first block (so the previous sound plays
    until there is a new one), and closes it on the way out; None without a stream."""
    if stream is None:
        yield None
        return
    opened: list[Any] = []

    def hand_over(block: np.ndarray) -> None:
        if not opened:
            opened.append(stream(sr))
        opened[0].append(block)

    try:
        yield hand_over
    finally:
        if opened:
            opened[0].close()


def _decode_streamed(hand_over: Callable[[np.ndarray], None] | None, decode_fn: Callable[[], Any]) -> Any:
    """``decode_fn()`` (one decoding through models.inference.decode), its blocks handed over as made."""
    if hand_over is None:
        return decode_fn()
    with streaming(hand_over) as sent:
        dec = decode_fn()
    if not sent:  # a method that does not stream
        hand_over(dec.y)
    return dec
