"""explorer.window.workers.TaskRunner: partial results are coalesced so a fast task cannot flood the GUI."""

from __future__ import annotations

import threading

from explorer.window.workers import TaskRunner


def test_partials_are_coalesced_to_the_latest(qtbot):
    runner = TaskRunner(partial_interval_ms=200)
    seen: list[int] = []
    results: list[str] = []
    emitted, release = threading.Event(), threading.Event()

    def task(state):
        for i in range(50):
            state.partial(i)
        emitted.set()
        release.wait(5.0)  # hold the result back until the coalesced partial is out
        return "done"

    runner.start("t", task, on_partial=seen.append, on_result=results.append)
    # the GUI thread takes no event until all 50 partials are queued, so however the worker is
    # scheduled they arrive together: the first is shown at once, the other 49 wait for the
    # interval and collapse into the latest one
    assert emitted.wait(5.0)
    qtbot.waitUntil(lambda: seen[-1:] == [49], timeout=5000)
    release.set()
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)
    assert seen == [0, 49]
    runner.wait(2000)


def test_a_result_supersedes_a_waiting_partial(qtbot):
    runner = TaskRunner(partial_interval_ms=10_000)
    seen: list[int] = []
    results: list[str] = []

    def task(state):
        for i in range(5):
            state.partial(i)
        return "done"

    runner.start("t", task, on_partial=seen.append, on_result=results.append)
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)
    assert seen == [0]  # partials 1-4 were waiting for the interval when the result came
    runner.wait(2000)
