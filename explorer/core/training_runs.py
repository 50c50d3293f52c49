"""Training runs as the app sees them: what to start, and what the events said. No Qt here.

A :class:`TrainSpec` is what the trainer panel's form produces; :func:`train_args` turns it into
the ``latent-trainer train`` arguments. A :class:`RunRecord` folds the run's events (from the
child's stdout or a watched ``events.jsonl``) into the status, progress, curves and best
metrics the panel shows, so all of that is testable without a window.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.events import (
    CheckpointWritten,
    Error,
    Event,
    Evaluation,
    Finished,
    Progress,
    Started,
    Stopped,
    Validation,
)

#: statuses a run goes through; the last four are final
STATUSES = ("starting", "running", "stopping", "finished", "stopped", "failed", "ended")
FINAL = ("finished", "stopped", "failed", "ended")
#: lines of the trainer's log kept for the panel (and quoted when it crashes)
LOG_LINES = 400
CRASH_TAIL = 12
#: a curve longer than this drops every other point: long runs keep their shape in bounded memory
MAX_CURVE_POINTS = 4000
#: the ETA's step time is an exponential moving average whose weight halves every this many steps,
#: so one slow window (a validation, features being computed) moves it a little, not threefold
ETA_HALF_LIFE_STEPS = 200
#: one window's step time counts as at most this many times the running average
ETA_OUTLIER = 4.0


class StepTimer:
    """Seconds per step, smoothed over recent steps (an EMA weighted by steps, not by events).

    The trainer reports the speed of the window since its last progress event; windows that
    include a validation or a checkpoint are many times slower than the rest, and a raw
    ``remaining / speed`` jumps (6 min, 21 min, 1 min). Each window moves the average by
    ``1 - 0.5 ** (steps / half_life)``, and is clipped to :data:`ETA_OUTLIER` times it first.
    """

    def __init__(self, *, half_life: float = ETA_HALF_LIFE_STEPS) -> None:
        self.half_life = float(half_life)
        self.seconds_per_step: float | None = None
        self._last_step: int | None = None

    def reset(self, step: int | None = None) -> None:
        """Forget the average (a resumed run may run on another machine)."""
        self.seconds_per_step, self._last_step = None, step

    def update(self, step: int, steps_per_sec: float | None) -> None:
        """Take in one progress report: the run is at ``step``, going at ``steps_per_sec``."""
        n = step - self._last_step if self._last_step is not None else 1
        self._last_step = step
        if not steps_per_sec or steps_per_sec <= 0 or steps_per_sec != steps_per_sec or n <= 0:
            return
        sample = 1.0 / float(steps_per_sec)
        if self.seconds_per_step is None:
            self.seconds_per_step = sample
            return
        avg = self.seconds_per_step
        sample = min(max(sample, avg / ETA_OUTLIER), avg * ETA_OUTLIER)
        w = 1.0 - 0.5 ** (n / self.half_life)
        self.seconds_per_step = avg + w * (sample - avg)

    def eta(self, remaining_steps: int) -> float | None:
        """Seconds left for ``remaining_steps``, or None before the first report."""
        if self.seconds_per_step is None:
            return None
        return max(0, int(remaining_steps)) * self.seconds_per_step


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """A run to start: a preset (or a checkpoint to fine-tune), a dataset, and options.

    ``overrides`` are ``--set key=value`` strings (``train.lr=0.0005``); ``None`` leaves the
    trainer's default.
    """

    run_dir: str
    data: str
    preset: str = ""
    init_from: str = ""
    overrides: tuple[str, ...] = ()
    device: str = "auto"
    tiny: bool = False
    max_steps: int | None = None
    seed: int | None = None
    threads: int | None = None
    cache_dir: str | None = None


def train_args(spec: TrainSpec, *, resume: bool = False) -> list[str]:
    """``latent-trainer`` arguments (after the program) for ``spec``, events on stdout.

    ``resume`` continues ``spec.run_dir`` (``--resume``): the preset, model and data come from
    its ``config.json``; only the options that are not saved there are repeated.
    """
    args = ["train", "--run-dir", spec.run_dir, "--events", "--stdin-commands", "--device", spec.device]
    if resume:
        args.append("--resume")
    else:
        args += ["--data", spec.data]
        if spec.preset:
            args += ["--preset", spec.preset]
        if spec.init_from:
            args += ["--init-from", spec.init_from]
        if spec.tiny and not spec.init_from:
            args.append("--tiny")
        if spec.seed is not None:
            args += ["--seed", str(spec.seed)]
        for o in spec.overrides:
            args += ["--set", o]
    if spec.max_steps is not None:
        args += ["--max-steps", str(spec.max_steps)]
    if spec.threads:
        args += ["--threads", str(spec.threads)]
    if spec.cache_dir:
        args += ["--cache-dir", spec.cache_dir]
    return args


def default_run_dir(root: str | Path, name: str) -> Path:
    """A fresh folder under ``root`` named after the preset and the time, never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def format_eta(seconds: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12 s"``, or ``""`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


@dataclass
class RunRecord:
    """One run's state, folded from its events.

    Attributes
    ----------
    train, val : dict[str, list[tuple[int, float]]]
        Loss curves by loss name: (step, value) per progress / validation event.
    best_checkpoint : str | None
        Path of the latest ``best`` checkpoint written (what a hot reload loads).
    """

    run_dir: str
    spec: TrainSpec | None = None
    #: "app" (a child of this app), "watched" (an outside run followed through its folder)
    source: str = "app"
    status: str = "starting"
    preset: str = ""
    device: str = ""
    step: int = 0
    epoch: int = 0
    total_steps: int | None = None
    eta_s: float | None = None
    steps_per_sec: float | None = None
    train: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    val: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    best_metrics: dict[str, Any] = field(default_factory=dict)
    best_step: int | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    end_reason: str = ""
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    #: epochs completed, from the last validation / end event (``epoch`` is the one under way)
    epochs_done: int = 0
    timer: StepTimer = field(default_factory=StepTimer)

    @property
    def name(self) -> str:
        return Path(self.run_dir).name

    @property
    def epoch_number(self) -> int:
        """The epoch under way, counted from 1 (the trainer's events count from 0)."""
        return int(self.epoch) + 1

    def epoch_text(self) -> str:
        """``"epoch 3"`` while running; ``"2 epochs"`` once the run ended."""
        if self.active:
            return f"epoch {self.epoch_number}"
        return f"{self.epochs_done} epoch{'s' if self.epochs_done != 1 else ''}"

    def model_label(self) -> str:
        """A name for this run's best model, distinct between runs: run, step, validation loss."""
        return run_model_label(f"{self.name} best", self.best_step, self.best_metrics.get("val_loss"))

    @property
    def active(self) -> bool:
        return self.status not in FINAL

    def fraction(self) -> float | None:
        """Share of the planned steps done, or None when the total is unknown."""
        if not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)

    def apply(self, ev: Event) -> None:
        """Fold one event into the record."""
        if isinstance(ev, Started):
            self.status = "running"
            self.preset, self.device = ev.preset, ev.device
            self.step, self.epoch, self.total_steps = ev.step, ev.epoch, ev.total_steps
            self.epochs_done = ev.epoch
            self.error, self.end_reason = None, ""
            self.timer.reset(ev.step)
        elif isinstance(ev, Progress):
            if self.status == "starting":
                self.status = "running"
            self.step, self.epoch = ev.step, ev.epoch
            self.total_steps = ev.total_steps if ev.total_steps is not None else self.total_steps
            self.steps_per_sec = ev.steps_per_sec
            self.timer.update(ev.step, ev.steps_per_sec)
            smoothed = self.timer.eta(self.total_steps - ev.step) if self.total_steps else None
            self.eta_s = smoothed if smoothed is not None else ev.eta_s
            _append(self.train, ev.step, ev.losses)
        elif isinstance(ev, Validation):
            self.epochs_done = max(self.epochs_done, ev.epoch)
            _append(self.val, ev.step, ev.losses)
        elif isinstance(ev, CheckpointWritten):
            if ev.kind == "best":
                self.best_checkpoint, self.best_step = ev.path, ev.step
                self.best_metrics = dict(ev.metrics)
            else:
                self.last_checkpoint = ev.path
        elif isinstance(ev, Evaluation):
            self.evaluation = dict(ev.metrics)
        elif isinstance(ev, Finished):
            self.status, self.end_reason, self.eta_s = "finished", ev.reason, 0.0
            self.step, self.epochs_done = ev.step, ev.epoch
        elif isinstance(ev, Stopped):
            self.status, self.end_reason, self.eta_s = "stopped", ev.reason, None
            self.step, self.last_checkpoint, self.epochs_done = ev.step, ev.checkpoint, ev.epoch
        elif isinstance(ev, Error):
            self.status = "failed"
            self.error = ev.message

    def add_log(self, line: str) -> None:
        self.log.append(line)

    def process_ended(self, exit_code: int, crashed: bool) -> None:
        """The child is gone: a run that did not say how it ended failed; quote its log."""
        if self.status in ("finished", "stopped") and exit_code == 0 and not crashed:
            return
        self.status = "failed"
        how = "crashed" if crashed else f"exited with code {exit_code}"
        head = self.error or f"the trainer {how}"
        tail = list(self.log)[-CRASH_TAIL:]
        self.error = head + ("\n\nLast lines of its log:\n" + "\n".join(tail) if tail else "")

    def status_text(self) -> str:
        """One line for the runs list: status, step, best validation loss."""
        parts = [self.status]
        if self.end_reason:
            parts[0] += f" ({self.end_reason.replace('_', ' ')})"
        if self.total_steps:
            parts.append(f"step {self.step}/{self.total_steps}")
        elif self.step:
            parts.append(f"step {self.step}")
        best = self.best_metrics.get("val_loss")
        if isinstance(best, (int, float)):
            parts.append(f"best val {best:.4g}")
        return ", ".join(parts)


def run_model_label(run: str, step: int | None = None, val_loss: Any = None, detail: str = "") -> str:
    """``"colonel-20261201-1638 best · step 1200 · val 0.0123 (deep_ae)"``: names that tell runs apart.

    Every run writes ``best.safetensors``; a list of "best (deep_ae)" entries says nothing, so a
    model from a run is named by its run folder, the step of the checkpoint and its validation
    loss, as the trainer panel and the model list both show it.
    """
    parts = [run]
    if step is not None:
        parts.append(f"step {int(step)}")
    if isinstance(val_loss, (int, float)) and val_loss == val_loss:
        parts.append(f"val {float(val_loss):.4g}")
    return " · ".join(parts) + (f" ({detail})" if detail else "")


def checkpoint_label(path: str | Path, *, model_name: str = "", rep_kind: str = "", training: Any = None) -> str:
    """The name of a loaded checkpoint in the model list (see :func:`run_model_label`).

    ``best``/``last`` checkpoints are named after their run folder; any other file by its name.
    ``training`` is the checkpoint's ``TrainingSummary`` (steps, best validation loss), or None.
    """
    p = Path(path)
    run = f"{p.parent.name} {p.stem}" if p.stem in ("best", "last") and p.parent.name else p.stem
    step = getattr(training, "steps", None) or None
    loss = getattr(training, "best_val_loss", None)
    detail = ", ".join(x for x in (model_name, rep_kind) if x)
    return run_model_label(run, step, loss, detail)


def _append(series: dict[str, list[tuple[int, float]]], step: int, losses: dict[str, float | None]) -> None:
    for name, value in losses.items():
        if value is not None:
            pts = series.setdefault(name, [])
            pts.append((int(step), float(value)))
            if len(pts) > MAX_CURVE_POINTS:
                pts[:] = pts[::2]
