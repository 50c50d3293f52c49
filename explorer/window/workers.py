"""Run plain ``fn(state, *args)`` off the GUI thread, Orange3-style.

``state.report(progress, message)``, ``state.partial(result)`` and ``state.should_stop()`` are
all the compute function sees of Qt. Results, partial results, progress and errors come back to
the GUI thread through queued signals. Each task has a *key* ("encode", "project", "decode"...);
starting a task cancels the running one with the same key, and a generation counter drops
whatever the stale one still delivers, so a fast second click always wins.

Partial results are coalesced: a task's ``on_partial`` sees at most one result per
``partial_interval_ms`` (the latest), so a t-SNE in a child process that outruns the map's
redraws cannot queue a backlog of redraws on the GUI thread (the target: no stall over 50 ms).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from models.mapping.tsne_job import prewarm


def warm_up() -> None:
    """Start-up work that keeps later stalls off the GUI thread; call before the window shows.

    Starts the fork server that runs t-SNE in child processes (:mod:`models.mapping.tsne_job`; it
    imports openTSNE in its own process, so the first t-SNE starts at once). Returns at once.
    """
    try:
        prewarm()
    except OSError:
        pass  # no fork server here: each t-SNE then starts its own child, only slower


class TaskState:
    """What the compute function gets: progress, partial results, and whether to stop."""

    def __init__(self, relay: "_Relay", key: str, generation: int) -> None:
        self._relay = relay
        self._key = key
        self._generation = generation
        self._stop = threading.Event()

    def report(self, progress: float, message: str = "") -> None:
        self._relay.progressed.emit(self._key, self._generation, float(progress), str(message))

    def partial(self, result: Any) -> None:
        self._relay.partial.emit(self._key, self._generation, result)

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()


class _Relay(QObject):
    """Lives in the GUI thread; signals emitted from a worker arrive there queued."""

    progressed = Signal(str, int, float, str)
    partial = Signal(str, int, object)
    finished = Signal(str, int, object)
    failed = Signal(str, int, object, str)


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[..., Any], state: TaskState, args: tuple) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._fn, self._state, self._args = fn, state, args

    def run(self) -> None:
        relay, key, gen = self._state._relay, self._state._key, self._state._generation
        try:
            result = self._fn(self._state, *self._args)
        except Exception as exc:  # noqa: BLE001 - every error must reach the user, not kill a thread
            relay.failed.emit(key, gen, exc, traceback.format_exc())
            return
        relay.finished.emit(key, gen, result)


@dataclass
class _Task:
    state: TaskState
    on_result: Callable[[Any], None] | None
    on_partial: Callable[[Any], None] | None
    on_progress: Callable[[float, str], None] | None
    on_error: Callable[[BaseException, str], None] | None


class TaskRunner(QObject):
    """Starts keyed tasks on a thread pool and routes their signals to callbacks.

    Signals
    -------
    task_started(key), task_finished(key), task_failed(key, message)
        For the status bar and progress bar; ``task_finished`` also fires on cancel.
    """

    task_started = Signal(str)
    task_finished = Signal(str)
    task_failed = Signal(str, str)
    task_progressed = Signal(str, float, str)

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 2, partial_interval_ms: int = 66) -> None:
        super().__init__(parent)
        self._pending_partials: dict[str, tuple[int, Any]] = {}
        self._partial_timer = QTimer(self)
        self._partial_timer.setSingleShot(True)
        self._partial_timer.setInterval(partial_interval_ms)
        self._partial_timer.timeout.connect(self._flush_partials)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._relay.partial.connect(self._on_relay_partial)
        self._relay.finished.connect(self._on_relay_finished)
        self._relay.failed.connect(self._on_relay_failed)
        self._generation: dict[str, int] = {}
        self._tasks: dict[str, _Task] = {}

    # --- API ----------------------------------------------------------------------------------
    def start(
        self,
        key: str,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        on_error: Callable[[BaseException, str], None] | None = None,
    ) -> int:
        """Run ``fn(state, *args)``; cancels the previous ``key`` task. Returns the generation."""
        self.cancel(key, quiet=True)
        gen = self._generation.get(key, 0) + 1
        self._generation[key] = gen
        state = TaskState(self._relay, key, gen)
        self._tasks[key] = _Task(state, on_result, on_partial, on_progress, on_error)
        self._pool.start(_Runnable(fn, state, args))
        self.task_started.emit(key)
        return gen

    def cancel(self, key: str, *, quiet: bool = False) -> bool:
        """Ask the ``key`` task to stop and forget it: whatever it delivers later is dropped."""
        task = self._tasks.pop(key, None)
        if task is None:
            return False
        task.state.cancel()
        self._generation[key] = self._generation.get(key, 0) + 1
        if not quiet:
            self.task_finished.emit(key)
        return True

    def stop(self, key: str) -> bool:
        """Ask the ``key`` task to finish early but keep its result (a t-SNE stopped by the user)."""
        task = self._tasks.get(key)
        if task is None:
            return False
        task.state.cancel()
        return True

    def cancel_all(self) -> None:
        for key in list(self._tasks):
            self.cancel(key)

    def is_running(self, key: str) -> bool:
        return key in self._tasks

    def running(self) -> list[str]:
        return list(self._tasks)

    def wait(self, msecs: int = 5000) -> bool:
        """Block until the pool is idle (closing the app, tests)."""
        return self._pool.waitForDone(msecs)

    # --- relay slots (GUI thread) ----------------------------------------------------------------
    def _current(self, key: str, gen: int) -> _Task | None:
        return self._tasks.get(key) if self._generation.get(key) == gen else None

    def _on_relay_progressed(self, key: str, gen: int, progress: float, message: str) -> None:
        task = self._current(key, gen)
        if task is None:
            return
        if task.on_progress:
            task.on_progress(progress, message)
        self.task_progressed.emit(key, progress, message)

    def _on_relay_partial(self, key: str, gen: int, result: Any) -> None:
        task = self._current(key, gen)
        if task is None or task.on_partial is None:
            return
        if self._partial_timer.isActive():
            self._pending_partials[key] = (gen, result)  # superseded by the next one, if any
            return
        task.on_partial(result)
        self._partial_timer.start()

    def _flush_partials(self) -> None:
        pending, self._pending_partials = self._pending_partials, {}
        delivered = False
        for key, (gen, result) in pending.items():
            task = self._current(key, gen)
            if task is not None and task.on_partial:
                task.on_partial(result)
                delivered = True
        if delivered:
            self._partial_timer.start()

    def _on_relay_finished(self, key: str, gen: int, result: Any) -> None:
        task = self._current(key, gen)
        if task is None:
            return
        del self._tasks[key]
        self._pending_partials.pop(key, None)  # the result supersedes any partial still waiting
        try:
            if task.on_result is not None:
                task.on_result(result)
        except Exception as exc:  # noqa: BLE001 - a failing result handler is a task error too
            self._fail(key, task, exc, traceback.format_exc())
            return
        self.task_finished.emit(key)

    def _on_relay_failed(self, key: str, gen: int, exc: object, tb: str) -> None:
        task = self._current(key, gen)
        if task is None:
            return
        del self._tasks[key]
        self._pending_partials.pop(key, None)
        self._fail(key, task, exc, tb)

    def _fail(self, key: str, task: _Task, exc: object, tb: str) -> None:
        message = f"{exc}" if str(exc) else type(exc).__name__
        if task.on_error:
            task.on_error(exc, tb)  # type: ignore[arg-type]
        self.task_failed.emit(key, message)
        self.task_finished.emit(key)
