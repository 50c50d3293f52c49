"""models.threads: the cores we may use, torch's threads set and restored, chosen by timing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from models.threads import BatchThreads, cpu_count, torch_threads


def test_cpu_count_and_torch_threads_restore() -> None:
    assert 1 <= cpu_count() <= (__import__("os").cpu_count() or 1)
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


class FakeClock:
    """Each batch takes the time its thread count costs per item on an imagined machine."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.cost = cost
        self.now = 0.0
        self.threads = 0

    def __call__(self) -> float:
        return self.now

    def run(self, bt: BatchThreads, n_items: int) -> int:
        with bt.batch(n_items) as n:
            assert torch.get_num_threads() == n
            self.now += self.cost[n] * n_items
        return n


def test_batch_threads_tries_each_then_keeps_the_fastest_and_retries() -> None:
    clock = FakeClock({1: 1.0, 4: 0.1})  # idle cores: four threads are ten times faster
    bt = BatchThreads([1, 4], retry_every=8, clock=clock)
    used = [clock.run(bt, 100) for _ in range(12)]
    # warm-up on 1 (untimed), a trial of each, then the faster; at batch 8 the other again
    assert used[:3] == [1, 1, 4] and used[3:8] == [4] * 5
    assert used[8] == 1 and used[9:] == [4] * 3
    assert bt.chosen == 4
    # the machine gets loaded: four threads now cost far more; the next trial notices and switches
    clock.cost = {1: 1.0, 4: 30.0}
    used = [clock.run(bt, 100) for _ in range(12)]
    assert bt.chosen == 1 and used[-1] == 1


def test_batch_threads_defaults_and_errors() -> None:
    assert BatchThreads().candidates == tuple(sorted({1, cpu_count()}))
    assert BatchThreads([2, 2, 1]).candidates == (1, 2)
    with pytest.raises(ValueError):
        BatchThreads([0])
    with pytest.raises(ValueError):
        BatchThreads(retry_every=0)


def test_realtime_switching_lowers_the_interval_while_any_user_is_inside() -> None:
    import sys

    from models.threads import REALTIME_SWITCH_INTERVAL, realtime_switching

    before = sys.getswitchinterval()
    with realtime_switching():
        assert sys.getswitchinterval() == pytest.approx(min(before, REALTIME_SWITCH_INTERVAL))
        with realtime_switching():  # a second stream
            pass
        assert sys.getswitchinterval() == pytest.approx(min(before, REALTIME_SWITCH_INTERVAL))  # one still plays
    assert sys.getswitchinterval() == pytest.approx(before)


def test_a_producer_holds_the_realtime_interval_from_start_to_close() -> None:
    import sys

    from models.realtime.engine import EngineConfig, PlayEngine
    from models.realtime.producer import Producer
    from models.threads import REALTIME_SWITCH_INTERVAL

    class Silent:
        sr, hop, latent_dim = 8000, 64, 2

        def reset(self) -> None:
            pass

        def step(self, code, *, level=None, shift=0.0):
            return np.zeros(64, np.float32)

    before = sys.getswitchinterval()
    p = Producer(PlayEngine(Silent, sr=8000, config=EngineConfig()))
    p.start()
    try:
        assert sys.getswitchinterval() == pytest.approx(min(before, REALTIME_SWITCH_INTERVAL))
    finally:
        p.close()
    assert sys.getswitchinterval() == pytest.approx(before)
    p.close()  # twice: nothing left to restore
    assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread priority is Linux's")
def test_lower_thread_priority_changes_the_calling_thread_only() -> None:
    import threading

    from models.threads import lower_thread_priority

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def work() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["ok"] = lower_thread_priority(3)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["ok"] and seen["after"] == min(19, seen["before"] + 3)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # this thread keeps its own


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no nice() here")
def test_a_process_started_with_the_nice_variable_runs_nicer() -> None:
    import subprocess
    import sys

    from models.threads import NICE_ENV

    code = ("import os; from models.threads import apply_nice_from_env; b = os.nice(0); "
            "apply_nice_from_env(); print(b, os.nice(0))")
    for value, added in (("4", 4), ("not a number", 0), ("", 0)):
        env = {**os.environ, NICE_ENV: value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        before, after = map(int, out.stdout.split())
        assert after == min(19, before + added), (value, out.stdout)
