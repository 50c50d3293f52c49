"""models.threads: the cores we may use, torch's threads set and restored, chosen by timing."""

from __future__ import annotations

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
