"""How many cores compute may use here, and torch's intra-op threads chosen by measurement.

``os.cpu_count()`` counts the machine; a process pinned to fewer cores (``taskset``, a
container's cpuset) must not start more threads than it may run, or they wait on each other.

Torch's thread count is one setting for the whole process, and the best value depends on what
else the machine runs: on two cores shared with other work, a small encoder's forward pass of
512 frames was measured at 1.2 ms on one thread and about 120 ms on two (each parallel region
waits for the descheduled thread), while on idle cores two threads halve it. So encoding does
not guess: :class:`BatchThreads` times its first batches on one thread and on every core and
runs the rest on the faster, trying again now and then. :func:`torch_threads` changes the
setting under one process-wide lock, so a decoding that fixes its threads for bit-exact output
(``models.inference.decode.fixed_threads``) is never switched in the middle by an encoding.

:func:`realtime_switching` shortens the interpreter's GIL switch interval while a real-time
stream plays: a sound-card callback written in Python needs the GIL, and at the default 5 ms a
thread that holds it (the producer decoding, the GUI) keeps the callback waiting most of a
256-sample block at 48 kHz.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

__all__ = ["NICE_ENV", "TORCH_THREADS_LOCK", "BatchThreads", "apply_nice_from_env", "cpu_count",
           "lower_thread_priority", "realtime_switching", "single_torch_thread", "torch_threads"]

#: held while torch's global thread count is changed and used; re-entrant
TORCH_THREADS_LOCK = threading.RLock()


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows have no affinity call
        return max(1, os.cpu_count() or 1)


#: the GIL switch interval while a real-time stream plays (s); Python's default is 0.005
REALTIME_SWITCH_INTERVAL = 0.0005
_switching_lock = threading.Lock()
_switching_users = 0
_switching_before = 0.005


@contextlib.contextmanager
def realtime_switching() -> Iterator[None]:
    """Hold the GIL switch interval at :data:`REALTIME_SWITCH_INTERVAL` inside the block.

    The interval is one setting for the process: the first of nested or concurrent users
    lowers it, the last one out restores what was there. Measured by ``bench/bench_scrub.py``
    here: at 5 ms the simulated card's thread read 15-35 blocks a minute late and 15-111 of them
    underran; at 0.5 ms, on a quiet host, none in 30 s (1 late read and no underrun in 60 s with
    the ring's stall margin). The cost is more frequent GIL hand-offs between busy threads, a few
    per cent of pure-Python throughput, only while something plays.
    """
    global _switching_users, _switching_before
    with _switching_lock:
        if _switching_users == 0:
            _switching_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switching_before, REALTIME_SWITCH_INTERVAL))
        _switching_users += 1
    try:
        yield
    finally:
        with _switching_lock:
            _switching_users -= 1
            if _switching_users == 0:
                sys.setswitchinterval(_switching_before)


def lower_thread_priority(nice: int = 5) -> bool:
    """Make the calling thread yield the CPU to the sound (Linux: its own nice value, raised by ``nice``).

    For work a stream waits on but can wait for (a grain synth's decodings, pitch estimates):
    on two cores it competes with the producer and the card's callback, and the OS then lets
    the callback wait. Raising a nice value needs no privilege; other threads keep theirs.
    Returns whether it took (False where the OS has no per-thread priority).
    """
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(nice)))
        return True
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return False


#: a nice value a background process adds to its own at start: the app sets it for the training
#: runs it starts (``latent-trainer`` applies it), so they leave the window the CPU it needs
NICE_ENV = "LATENT_TRAINER_NICE"


def apply_nice_from_env() -> None:
    """Add :data:`NICE_ENV`'s value (0-19) to this thread's nice value; unset or bad: nothing.

    Call it first thing in a process: threads started afterwards inherit it.
    """
    raw = os.environ.get(NICE_ENV, "").strip()
    if not raw:
        return
    try:
        os.nice(max(0, min(19, int(raw))))
    except (ValueError, OSError, AttributeError):  # not a number, or no nice() here: run as is
        pass


def single_torch_thread() -> None:
    """Run torch on one intra-op thread from now on, on the calling thread only.

    For a thread that decodes while sound plays (a play producer, a grain synth's decoder):
    OpenMP's thread count is a per-thread setting, so other threads keep theirs, and a parallel
    region on cores the sound card's thread shares waits for whichever of its threads was
    descheduled (the 1.2 ms against 120 ms above). Taken under :data:`TORCH_THREADS_LOCK`, so it
    never lands inside another thread's fixed-thread decoding.
    """
    import torch

    with TORCH_THREADS_LOCK:
        torch.set_num_threads(1)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads inside the block, then restore the previous count.

    Holds :data:`TORCH_THREADS_LOCK` for the block: keep blocks short (one batch), since other
    threads that want to set torch's threads wait for it.
    """
    import torch

    if n < 1:
        raise ValueError(f"torch needs at least one thread, got {n}")
    with TORCH_THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(before)


class BatchThreads:
    """Torch threads for a run of like batches (an encoding), chosen by timing them.

    The first batch warms up on the first candidate, untimed; the next ones try each candidate
    in turn; then every batch runs on the candidate with the lowest time per item, and every
    ``retry_every`` batches the others are timed once more (the machine's load changes).

    Parameters
    ----------
    candidates : sequence of int or None
        Thread counts to choose from; one thread and every core (:func:`cpu_count`) when None.
    retry_every : int
        Batches between two new trials of the other candidates.
    clock : callable
        Seconds, monotonic (``time.perf_counter``); a test passes its own.

    Examples
    --------
    >>> threads = BatchThreads()
    >>> for items in batches:                      # doctest: +SKIP
    ...     with threads.batch(len(items)):
    ...         codes.append(model.encode(items))
    """

    def __init__(self, candidates: Sequence[int] | None = None, *, retry_every: int = 32,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        cands = sorted({1, cpu_count()}) if candidates is None else sorted({int(c) for c in candidates})
        if not cands or cands[0] < 1:
            raise ValueError(f"candidates must be thread counts >= 1, got {candidates}")
        if retry_every < 1:
            raise ValueError(f"retry_every must be >= 1, got {retry_every}")
        self.candidates = tuple(cands)
        self.retry_every = int(retry_every)
        self._clock = clock
        self._per_item: dict[int, float] = {}
        self._batches = 0
        self._trial: list[int] = []

    @property
    def chosen(self) -> int:
        """The thread count the next settled batch uses (the first candidate before any timing)."""
        if not self._per_item:
            return self.candidates[0]
        return min(self._per_item, key=lambda n: (self._per_item[n], n))

    def _next(self) -> tuple[int, bool]:
        """(threads for this batch, whether to time it)."""
        if self._batches == 0:
            return self.candidates[0], False  # warm-up: first calls allocate and compile
        if not self._trial:
            if len(self._per_item) < len(self.candidates):
                self._trial = [c for c in self.candidates if c not in self._per_item]
            elif self._batches % self.retry_every == 0:
                self._trial = [c for c in self.candidates if c != self.chosen]
        if self._trial:
            return self._trial.pop(0), True
        return self.chosen, True

    @contextlib.contextmanager
    def batch(self, n_items: int) -> Iterator[int]:
        """Run one batch of ``n_items`` on the threads chosen for it (yielded), timing it."""
        n, timed = self._next()
        self._batches += 1
        with torch_threads(n):
            t0 = self._clock()
            yield n
            dt = self._clock() - t0
        if timed:
            self._per_item[n] = dt / max(int(n_items), 1)
