"""The session's morph paths and the tasks that render and export them (no Qt).

Paths live in ``controller.paths`` (so sessions save them); this class edits them, builds
waypoints from what the user clicked (a point, a class centre, a map position), and hands out
task functions ``fn(state)`` for the window's TaskRunner, like the controller does.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.inference import engine
from models.morphing import morph
from models.errors import DatasetError
from models.morphing.export_audio import (
    ExportOptions,
    export_names,
    export_stem,
    finish_signals,
    free_stem,
    model_record,
    morph_spec,
    sound_spec,
    write_export,
)
from models.morphing import render, sources
from models.morphing.morph import MorphParams, MorphPath, Template, Waypoint
from models.morphing.render import MorphRender
from models.morphing.trajectory import Trajectory

if TYPE_CHECKING:  # type names only
    from explorer.core.controller import Controller


class PathBook:
    """Paths of the current session, the selected one, and their latest renders."""

    def __init__(self, controller: Controller) -> None:
        self.c = controller
        self.current: int | None = None
        #: what a click on a class centre adds: "barycentre" or "medoid" (the morph panel's choice)
        self.centre_statistic = "barycentre"
        #: id(path) -> (render, the path's to_dict() it was made from)
        self.renders: dict[int, tuple[MorphRender, dict]] = {}

    # --- state ---------------------------------------------------------------------------------
    @property
    def paths(self) -> list[MorphPath]:
        return self.c.paths

    @property
    def path(self) -> MorphPath | None:
        if self.current is None or not 0 <= self.current < len(self.paths):
            return None
        return self.paths[self.current]

    def snapshot(self) -> tuple[list[dict], int | None]:
        """What undo needs: every path as a dict, and the selection."""
        return [p.to_dict() for p in self.paths], self.current

    def restore(self, snap: tuple[list[dict], int | None]) -> None:
        dicts, current = snap
        old: dict[str, list[MorphPath]] = {}
        for p in self.paths:
            old.setdefault(json_key(p), []).append(p)
        # keep the same objects where nothing changed, so their renders stay valid
        self.c.set_paths([(old.get(json_key_d(d)) or [None]).pop(0) or MorphPath.from_dict(copy.deepcopy(d))
                          for d in dicts])
        self.current = current if current is None or current < len(self.paths) else len(self.paths) - 1
        live = {id(p) for p in self.paths}
        self.renders = {k: v for k, v in self.renders.items() if k in live}

    def visible_paths(self) -> list[tuple[int, MorphPath]]:
        """Paths drawn with the current model (another model's codes mean nothing here)."""
        return [(i, p) for i, p in enumerate(self.paths) if p.model_key in (None, self.c.current_key)]

    def new_name(self) -> str:
        names = {p.name for p in self.paths}
        k = len(self.paths) + 1
        while f"path {k}" in names:
            k += 1
        return f"path {k}"

    def render_of(self, path: MorphPath | None) -> MorphRender | None:
        """The latest render of ``path``, if it still matches the path (not stale)."""
        if path is None or id(path) not in self.renders:
            return None
        r, made_from = self.renders[id(path)]
        return r if made_from == path.to_dict() else None

    # --- waypoints from the map ------------------------------------------------------------------
    def _label_of_point(self, i: int) -> str:
        labels = self.c.point_labels()
        return str(labels[i]) if 0 <= i < len(labels) else ""

    def waypoint_at_point(self, i: int) -> Waypoint:
        codes, clips, frames = self.c.map_codes()
        return Waypoint.make("point", codes[i], self.c.points[i], label=self._label_of_point(i),
                             clip=int(clips[i]), frame=int(frames[i]))

    def centre_members(self, label: str) -> list[tuple[int, int]]:
        """The (clip, frame) points a class centre is taken over: the class's visible points."""
        _, clips, frames = self.c.map_codes()
        rows = np.flatnonzero((self.c.point_labels() == label) & self.c.visible_mask())
        if not len(rows):
            raise DatasetError(f"no visible sound of {label}: show some to take its centre")
        return [(int(clips[i]), int(frames[i])) for i in rows]

    def waypoint_at_centre(self, label: str, *, statistic: str | None = None) -> Waypoint:
        """A class centre over the visible sounds of the class: their barycentre, or their medoid."""
        statistic = statistic or self.centre_statistic
        codes, clips, frames = self.c.map_codes()
        members = self.centre_members(label)
        rows = [int(np.flatnonzero((clips == c) & (frames == f))[0]) for c, f in members]
        where = self.c.class_centres_2d().get(label, np.median(self.c.points[rows], axis=0))
        if statistic == "medoid":
            enc = self.c.encoding
            trajs = [enc.trajectory(c) if f < 0 else enc.trajectory(c)[f: f + 1] for c, f in members]
            k = sources.medoid_of_codes(trajs)
            c, f = members[k]
            return Waypoint.make("centre", codes[rows[k]], where, label=f"{label} medoid", clip=c, frame=f,
                                 members=members, statistic="medoid")
        return Waypoint.make("centre", codes[rows].mean(axis=0), where, label=str(label), members=members)

    def position_members(self, x: float, y: float) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
        """(members, weights, their map rows) an empty-space position blends: its nearest visible points."""
        _, clips, frames = self.c.map_codes()
        shown = self.c.visible_mask()  # all hidden: the nearest sounds all the same, not silence
        rows, w = sources.position_members(self.c.points, (x, y), visible=shown if shown.any() else None)
        return [(int(clips[i]), int(frames[i])) for i in rows], w, rows

    def waypoint_at_position(self, x: float, y: float) -> Waypoint:
        if self.c.embedding is None:
            raise DatasetError("the map is still being computed")
        members, w, rows = self.position_members(x, y)
        code = w @ self.c.map_codes()[0][rows]
        return Waypoint.make("position", code, (x, y), label=self._label_of_point(int(rows[int(np.argmax(w))])),
                             members=members, weights=w)

    def centre_near(self, x: float, y: float, *, pixel_size: tuple[float, float], radius_px: float) -> str | None:
        centres = self.c.class_centres_2d()
        if not centres or len(centres) > 24:  # the map draws no centres then
            return None
        sx, sy = (max(abs(float(s)), 1e-300) for s in pixel_size)
        best = min(centres, key=lambda k: ((centres[k][0] - x) / sx) ** 2 + ((centres[k][1] - y) / sy) ** 2)
        d2 = ((centres[best][0] - x) / sx) ** 2 + ((centres[best][1] - y) / sy) ** 2
        return best if d2 <= radius_px**2 else None

    def new_path(self, waypoints: list[Waypoint], *, params: MorphParams | None = None, drawn: bool = False) -> MorphPath:
        base = self.path.params if self.path is not None else MorphParams()
        p = MorphPath(waypoints=list(waypoints), params=params or base, name=self.new_name(),
                      model_key=self.c.current_key, drawn=drawn)
        self.paths.append(p)
        self.current = len(self.paths) - 1
        return p

    # --- following the map -------------------------------------------------------------------------
    def rebind_task(self) -> Callable[[Any], list[list[tuple[float, float]]]] | None:
        """New map positions of every waypoint of the current model's paths (a new layout).

        Points follow their clip, centres their class; free positions are placed where their
        code lands (``embedding.transform``).
        """
        c, emb = self.c, self.c.embedding
        if emb is None or len(c.points) != len(emb.points):
            return None
        _, clips, frames = c.map_codes()
        pts = c.points.copy()
        centres = c.class_centres_2d()
        targets = [(i, p.to_dict()) for i, p in self.visible_paths()]

        def task(state: Any) -> list:
            out = []
            for i, d in targets:
                xy = []
                for w in d["waypoints"]:
                    hit = np.flatnonzero((clips == w["clip"]) & (frames == w["frame"])) if w["kind"] == "point" else []
                    if len(hit):
                        xy.append(tuple(pts[hit[0]]))
                    elif w["kind"] == "centre" and w["label"] in centres:
                        xy.append(tuple(centres[w["label"]]))
                    else:
                        xy.append(tuple(emb.transform(np.asarray(w["code"])[None])[0]))
                out.append((i, xy))
            return out

        return task

    def apply_rebind(self, result: list) -> None:
        for i, xy in result:
            if i < len(self.paths):
                p = self.paths[i]
                p.waypoints = [w.moved(q, w.code) for w, q in zip(p.waypoints, xy)]
        self.renders.clear()

    # --- rendering ------------------------------------------------------------------------------------
    def resolved(self, w: Waypoint) -> Waypoint:
        """``w`` with the sounds it stands for; waypoints of older sessions name none, so a centre
        takes its class's visible points and a position its nearest points on this map."""
        if w.members or w.kind == "point" or (w.kind == "centre" and w.statistic == "medoid"):
            return w
        if w.kind == "centre":
            return replace(w, members=tuple(self.centre_members(w.label)))
        members, weights, _ = self.position_members(*w.xy)
        return replace(w, members=tuple(members), weights=tuple(float(v) for v in weights))

    def centre(self) -> np.ndarray:
        """Where slerp bends around: a VAE's prior origin, an autoencoder's mean code."""
        lm = self.c.current
        codes = self.c.map_codes()[0]
        if lm is not None and getattr(lm.model, "variational", False):
            return np.zeros(codes.shape[1])
        return np.nanmean(codes, axis=0)

    def trajectory_book(self) -> sources.TrajectoryBook:
        """A fresh builder of the current encoding's trajectories (one per task: it caches clip analyses)."""
        c = self.c
        return sources.TrajectoryBook(c.encoding, c.current.representation, c.dataset,
                                      input_shape=c.current.model.input_shape)

    def render_task(self, path: MorphPath) -> Callable[[Any], tuple[MorphPath, dict, MorphRender | None]]:
        c = self.c
        lm, enc, emb = c.current, c.encoding, c.embedding
        if lm is None or enc is None or emb is None:
            raise DatasetError("open a dataset and a model, and wait for the map")
        if len(path.waypoints) < 2:
            raise DatasetError("a path needs at least two waypoints")
        frozen = copy.deepcopy(path)
        frozen.waypoints = [self.resolved(w) for w in frozen.waypoints]
        made_from = path.to_dict()
        centre, book = self.centre(), self.trajectory_book()

        def task(state: Any) -> tuple:
            state.report(0.0, "reading the waypoints' sounds")
            trajectories = [sources.waypoint_trajectory(book, w) for w in frozen.waypoints]
            r = render.render_path(lm.model, lm.representation, frozen, latent_shape=enc.latent_shape,
                                   layout=enc.layout, trajectories=trajectories, centre=centre, embedding=emb,
                                   state=state)
            return path, made_from, r

        return task

    def set_render(self, path: MorphPath, made_from: dict, r: MorphRender | None) -> None:
        if r is not None:
            self.renders[id(path)] = (r, made_from)

    # --- export ------------------------------------------------------------------------------------------
    def _records(self) -> tuple[dict, dict]:
        lm = self.c.current
        if lm is None:
            raise DatasetError("load a model first: only a model's sounds are exported")
        model = model_record(lm.checkpoint, label=lm.label)
        dataset = {"path": self.c.dataset_path, "fingerprint": None}
        return model, dataset

    def model_short_name(self) -> str:
        lm = self.c.current
        if lm is None:
            return "model"
        return Path(str(lm.key)).stem if lm.checkpoint is not None else lm.label.split(" ")[0]

    def export_path_task(self, path: MorphPath, out_dir: str | Path, options: ExportOptions) -> Callable[[Any], list[Path]]:
        """Write the path's render (morph or steps) and its spec; all or nothing."""
        r = self.render_of(path)
        if r is None:
            raise DatasetError("render the path first (it changed since)")
        lm, ds, enc = self.c.current, self.c.dataset, self.c.encoding
        model, dataset = self._records()
        frozen, centre, short = copy.deepcopy(path), self.centre(), self.model_short_name()

        def task(state: Any) -> list[Path]:
            state.report(0.1, "preparing the export")
            dataset["fingerprint"] = getattr(ds, "fingerprint", None)
            signals, sr = finish_signals([r.morph] if options.what == "morph" else r.steps, r.sr, options)
            stem = export_stem(options, title=frozen.title(), model=short, n_steps=frozen.params.n_steps)
            stem = free_stem(out_dir, stem, lambda s: export_names(options, s, frozen.params.n_steps)) \
                if Path(out_dir).is_dir() else stem
            names = export_names(options, stem, frozen.params.n_steps)
            spec = morph_spec(model=model, representation=lm.representation, dataset=dataset,
                              latent_shape=enc.latent_shape, layout=enc.layout, path=frozen,
                              trajectories=r.waypoints, centre=centre, options=options, files=names)
            state.report(0.5, f"writing {len(names)} file(s)")
            return write_export(out_dir, list(zip(names, signals)), sr=sr, subtype=options.subtype,
                                spec=spec, spec_name=stem + ".json")

        return task

    def export_sound_task(self, source: dict[str, Any], title: str, out_dir: str | Path,
                          options: ExportOptions) -> Callable[[Any], list[Path]]:
        """Write one decoded sound (see :func:`models.morphing.export_audio.sound_spec` for ``source``)."""
        lm, ds, enc = self.c.current, self.c.dataset, self.c.encoding
        model, dataset = self._records()
        short = self.model_short_name()
        book = self.trajectory_book()

        def task(state: Any) -> list[Path]:
            dataset["fingerprint"] = getattr(ds, "fingerprint", None)
            src = dict(source)
            if src["kind"] == "members":  # a held frame or an empty-space blend: made self-contained here
                t = book.blend(src.pop("members"), src.pop("weights"))
                if src.get("gains") is not None:
                    t = Trajectory(t.codes * np.asarray(src["gains"]), t.n_samples, t.side)
                src = {"kind": "trajectory", "trajectory": t.to_dict(), "phase": src.get("phase", engine.ESTIMATED_PHASE)}
            if src["kind"] == "code" and "template" not in src:
                src["template"] = morph.template_from_clip(lm.representation, ds, src.pop("template_clip"),
                                                          layout=enc.layout).to_dict()
            src.pop("template_clip", None)
            with morph.fixed_threads():
                if src["kind"] == "trajectory":
                    y = render.decode_trajectory(lm.model, lm.representation, Trajectory.from_dict(src["trajectory"]),
                                                 latent_shape=enc.latent_shape, phase=src["phase"]).y
                elif src["kind"] == "code":
                    phase = src.setdefault("phase", engine.ESTIMATED_PHASE)
                    y = morph.decode_step(lm.model, lm.representation, np.asarray(src["code"]),
                                          latent_shape=enc.latent_shape, template=Template.from_dict(src["template"]),
                                          phase=phase)
                else:
                    phase = src.setdefault("phase", engine.CLIP_PHASE)
                    gains = None if src.get("gains") is None else np.asarray(src["gains"])
                    y = engine.decode_clip(lm.model, lm.representation, ds, int(src["clip"]), np.asarray(src["codes"]),
                                           latent_shape=enc.latent_shape, gains=gains, phase=phase).y
            signals, sr = finish_signals([y], lm.representation.sample_rate, options)
            stem = export_stem(options, title=title, model=short)
            stem = free_stem(out_dir, stem, lambda s: export_names(options, s)) if Path(out_dir).is_dir() else stem
            names = export_names(options, stem)
            spec = sound_spec(model=model, representation=lm.representation, dataset=dataset,
                              latent_shape=enc.latent_shape, layout=enc.layout, source=src, options=options, files=names)
            return write_export(out_dir, list(zip(names, signals)), sr=sr, subtype=options.subtype,
                                spec=spec, spec_name=stem + ".json")

        return task

    def selected_sound_source(self) -> tuple[dict[str, Any], str] | None:
        """What the selected decoded sound is, as a spec source, plus a title (None: nothing)."""
        c = self.c
        d, sel, enc = c.decoded, c.selection, c.encoding
        if d is None or enc is None or c.current is None:  # no model (descriptor map): nothing decoded
            return None
        step = d.morph_step
        phase = d.decoded.phase or engine.ESTIMATED_PHASE
        if step is not None:  # a step of a path, chosen in the path panel: its trajectory
            return {"kind": "trajectory", "trajectory": step.to_dict(), "phase": phase}, d.decoded.title
        if sel is None:
            return None
        gains = c.gains_vector()
        g = None if gains is None else [float(v) for v in gains]
        _, clips, frames = c.map_codes()
        if sel.kind == "point" and frames[sel.index] < 0:
            clip = int(clips[sel.index])
            return ({"kind": "clip", "clip": clip, "codes": enc.trajectory(clip).tolist(), "gains": g, "phase": phase},
                    c.dataset.clips[clip].name + " decoded")
        if sel.kind == "point":
            clip, frame = int(clips[sel.index]), int(frames[sel.index])
            members, weights, title = [(clip, frame)], [1.0], f"{c.dataset.clips[clip].name} frame {frame}"
        else:
            members, w, rows = self.position_members(*sel.xy)
            weights, title = [float(v) for v in w], f"{self._label_of_point(int(rows[int(np.argmax(w))]))} estimate"
        return {"kind": "members", "members": members, "weights": weights, "gains": g, "phase": phase}, title


def json_key(p: MorphPath) -> str:
    return json_key_d(p.to_dict())


def json_key_d(d: dict) -> str:
    return json.dumps(d, sort_keys=True)
