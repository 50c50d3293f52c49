"""openTSNE runs, in this process or in a child process that streams its partial layouts back.

Why a child process: openTSNE's neighbour search and affinities (and the first ``import
openTSNE``, which initialises C extensions) hold the GIL for 60-150 ms at a time, so a t-SNE on
a worker *thread* freezes the GUI thread that long (the app's target is < 50 ms). In a child the
caller's thread only waits in blocking ``poll``/``recv`` calls, which release the GIL.

The child comes from a **fork server** (POSIX) that has imported openTSNE once, so a t-SNE
starts in milliseconds instead of paying a fresh interpreter's imports; where there is no fork
server (Windows) a **spawned** interpreter is used. Never a plain ``fork``: the parent may hold
Qt and BLAS threads. :func:`prewarm` starts the server early (the app calls it at start-up).

Protocol on a duplex :func:`multiprocessing.Pipe` (our own objects between our own processes):
child -> parent ``("partial", iteration, points)``, ``("result", points, state)`` (``state``:
the pickled ``openTSNE.TSNEEmbedding``, unpickled lazily by the parent for ``transform``),
``("error", message, traceback)``; parent -> child ``"stop"`` (finish now, keep the layout) and
``("init", points)``: the starting layout, which the parent computes (and draws) while the
child searches the neighbours, so neither waits for the other.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from models.errors import LatentExplorerError
from models.threads import lower_thread_priority

#: modules the fork server imports once, so each t-SNE child starts with them loaded
PRELOAD = ["openTSNE", "models.mapping.tsne_job"]

_ctx_lock = threading.Lock()
_ctx: Any = None

#: ``init`` of a "fit" job whose starting layout the parent sends once the child has started
FROM_PARENT = "from parent"


class TSNEInterrupted(LatentExplorerError):
    """A t-SNE was stopped before its first iteration: there is no layout to keep."""


def context() -> Any:
    """The multiprocessing context for our jobs: ``forkserver`` where there is one, else ``spawn``."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                _ctx = multiprocessing.get_context("forkserver")
                # global to the (one) fork server: only effective before it starts
                _ctx.set_forkserver_preload(PRELOAD)
            else:
                _ctx = multiprocessing.get_context("spawn")
        return _ctx


def prewarm() -> None:
    """Start the fork server now (it imports openTSNE in its own process); returns at once."""
    ctx = context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


# --- the openTSNE calls (run in whichever process does the work) ----------------------------------------
def tsne_fit(
    X: np.ndarray,
    *,
    perplexity: float,
    n_iter: int,
    early_exaggeration_iter: int,
    init: np.ndarray | Callable[[], np.ndarray] | None,
    callbacks_every_iters: int,
    random_state: int,
    n_jobs: int,
    callback: Callable[[int, np.ndarray], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Any:
    """openTSNE's fit of X [shape=(n, d)] -> ``openTSNE.TSNEEmbedding`` [shape=(n, 2)].

    ``init`` is the starting layout used as it is (the caller has scaled it, see
    :func:`models.mapping.projection.tsne_start`, and may already have drawn it), or a function
    returning it, called once the neighbours are found; openTSNE's own "pca" when None. The
    affinities are those ``openTSNE.TSNE.fit`` computes, so the layout is the one openTSNE's
    own fit reaches from that start. ``callback(iteration, points)`` counts iterations over
    both phases (openTSNE restarts its count in each); once ``should_stop()`` says so, the
    layout reached is returned.
    """
    import openTSNE
    from openTSNE.affinity import MultiscaleMixture
    every = max(1, int(callbacks_every_iters))
    calls = [0]
    stopped = [False]

    def _cb(iteration: int, error: float, embedding: np.ndarray) -> bool:
        calls[0] += 1
        if callback is not None:
            callback(calls[0] * every, np.array(embedding, dtype=np.float64))
        stopped[0] = stopped[0] or bool(should_stop is not None and should_stop())
        return stopped[0]

    tsne = openTSNE.TSNE(
        perplexity=perplexity,
        n_iter=n_iter,
        early_exaggeration_iter=early_exaggeration_iter,
        initialization="pca",
        callbacks=_cb if (callback or should_stop) else None,
        callbacks_every_iters=every,
        random_state=random_state,
        n_jobs=n_jobs,
        # exact neighbours for small maps: Annoy's approximate search is slower and needs
        # more points than a demo has
        neighbors="exact" if len(X) < 1000 else "auto",
    )
    if init is None:
        return tsne.fit(X)
    # openTSNE.TSNE.prepare_initial's affinities, argument for argument
    aff = MultiscaleMixture(X, tsne.perplexity, method=tsne.neighbors, metric=tsne.metric,
                            metric_params=tsne.metric_params, n_jobs=tsne.n_jobs,
                            random_state=tsne.random_state, verbose=tsne.verbose, knn_kwargs=tsne.knn_kwargs)
    start = np.array(init() if callable(init) else init, dtype=np.float64)
    if start.shape != (len(X), 2):
        raise ValueError(f"starting layout has shape {start.shape}, expected ({len(X)}, 2)")
    return tsne.fit(X, affinities=aff, initialization=start)


def tsne_restore(X: np.ndarray, points: np.ndarray, *, perplexity: float, random_state: int, n_jobs: int) -> Any:
    """An ``openTSNE.TSNEEmbedding`` at ``points`` [shape=(n, 2)] with X's affinities (no optimisation)."""
    import openTSNE
    from openTSNE.affinity import PerplexityBasedNN

    aff = PerplexityBasedNN(X, perplexity=perplexity, method="exact" if len(X) < 1000 else "auto",
                            random_state=random_state, n_jobs=n_jobs)
    return openTSNE.TSNEEmbedding(np.array(points, dtype=np.float64), aff, random_state=random_state)


def dumps_embedding(emb: Any) -> bytes:
    """Pickle an openTSNE embedding for the parent, with what ``transform`` needs and no more.

    Dropped: the fit's callback (a closure) and the fit's own affinity matrix and neighbour
    lists (two thirds of the bytes at 10,000 points); placing new points queries the
    neighbour index and computes their own affinities. Changes ``emb``: call it last.
    """
    params = getattr(emb, "gradient_descent_params", None)
    if isinstance(params, dict):
        params.pop("callbacks", None)
    aff = getattr(emb, "affinities", None)
    if aff is not None and getattr(aff, "knn_index", None) is not None:
        aff.P = None
        for name in [k for k in vars(aff) if k.endswith(("__neighbors", "__distances"))]:
            delattr(aff, name)
    return pickle.dumps(emb, protocol=pickle.HIGHEST_PROTOCOL)


def loads_embedding(state: bytes) -> Any:
    """The openTSNE embedding a child of ours pickled (never a user's file)."""
    return pickle.loads(state)  # noqa: S301 - our own child's bytes, through our own pipe


# --- the child's side ----------------------------------------------------------------------------------
def _child_main(conn: Any, job: str, kwargs: dict[str, Any]) -> None:
    """Entry point of the child process: run ``job``, stream partials, send the result or the error."""
    lower_thread_priority(10)  # before openTSNE starts its threads (they inherit it): the window first
    try:
        stop = [False]
        start: list[np.ndarray] = []

        def take(msg: Any) -> None:
            if isinstance(msg, tuple) and msg[0] == "init":
                start.append(msg[1])
            else:
                stop[0] = stop[0] or msg == "stop"

        def should_stop() -> bool:
            while not stop[0] and conn.poll():
                take(conn.recv())
            return stop[0]

        def wait_start() -> np.ndarray:
            # the parent sends it right after starting us; it ends us itself if it stops first
            while not start:
                take(conn.recv())
            return start[0]

        if job == "fit":
            if isinstance(kwargs.get("init"), str) and kwargs["init"] == FROM_PARENT:
                kwargs["init"] = wait_start
            want_points = kwargs.pop("partials")
            # every callback says "an iteration is done" (a stop then keeps a layout); points only if wanted
            emb = tsne_fit(callback=lambda it, pts: conn.send(("partial", it, pts if want_points else None)),
                           should_stop=should_stop, **kwargs)
        elif job == "restore":
            emb = tsne_restore(**kwargs)
        else:
            raise ValueError(f"unknown job {job!r}")
        conn.send(("result", np.asarray(emb, dtype=np.float64), dumps_embedding(emb)))
    except Exception as exc:  # noqa: BLE001 - the parent shows it; a child must not die silently
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        except OSError:
            pass  # the parent has gone (cancelled): nobody to tell
    finally:
        conn.close()


# --- the parent's side ---------------------------------------------------------------------------------
def run_in_child(
    job: str,
    kwargs: dict[str, Any],
    *,
    on_partial: Callable[[int, np.ndarray], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    start: Callable[[], np.ndarray] | None = None,
    poll_s: float = 0.05,
    stop_grace_s: float = 10.0,
) -> tuple[np.ndarray, bytes]:
    """Run ``job`` ("fit" | "restore") in a child; returns (points [shape=(n, 2)], pickled embedding).

    ``start`` (a "fit" whose ``kwargs["init"]`` is :data:`FROM_PARENT`) is called here once the
    child runs, and its layout sent to the child, which needs it only after its neighbour search.

    Blocks the calling thread in GIL-free waits. ``on_partial`` is called in the calling thread;
    after ``should_stop()`` first says so, partials are dropped and the child is asked to stop
    (it answers at its next callback). A stop before the first partial layout terminates the
    child at once (affinities cannot be interrupted) and raises :class:`TSNEInterrupted`; so
    does a child that does not answer within ``stop_grace_s``. The child is always terminated
    and reaped before returning.
    """
    ctx = context()
    parent, child = ctx.Pipe(duplex=True)
    if job == "fit":
        kwargs = {**kwargs, "partials": on_partial is not None}
    proc = ctx.Process(target=_child_main, args=(child, job, kwargs), daemon=True, name=f"latent-explorer-tsne-{job}")
    proc.start()
    child.close()
    stop_at: float | None = None
    seen_partial = False
    try:
        if start is not None:
            parent.send(("init", start()))
        while True:
            if stop_at is None and should_stop is not None and should_stop():
                if not seen_partial:
                    raise TSNEInterrupted("t-SNE was stopped before its first iteration")
                stop_at = time.monotonic()
                try:
                    parent.send("stop")
                except OSError:
                    pass  # it has just finished: its result is in the pipe
            elif stop_at is not None and time.monotonic() - stop_at > stop_grace_s:
                raise TSNEInterrupted(f"t-SNE did not stop within {stop_grace_s:.0f} s")
            if parent.poll(poll_s):
                try:
                    msg = parent.recv()
                except EOFError:
                    proc.join(1.0)
                    raise LatentExplorerError(f"the t-SNE process ended unexpectedly (exit code {proc.exitcode})") from None
                if msg[0] == "partial":
                    seen_partial = True
                    if stop_at is None and on_partial is not None and msg[2] is not None:
                        on_partial(msg[1], msg[2])
                elif msg[0] == "result":
                    return msg[1], msg[2]
                else:
                    raise LatentExplorerError(f"t-SNE failed in its process: {msg[1]}")
    finally:
        parent.close()
        if proc.is_alive():
            proc.terminate()
        proc.join(5.0)
