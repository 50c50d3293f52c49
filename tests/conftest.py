"""Shared fixtures. Qt runs offscreen: CI has no display."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest


@pytest.fixture(autouse=True)
def _no_writes_to_the_users_folders(tmp_path_factory, monkeypatch):
    """Drag files and the nn~ trust store go to a temporary folder, never the tester's home."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("LATENT_EXPLORER_DRAG_DIR", str(base / "drag"))
    monkeypatch.setenv("LATENT_EXPLORER_CONFIG_DIR", str(base / "config"))


@pytest.fixture
def one_torch_thread():
    """Torch on one intra-op thread for the test: tiny nets run in milliseconds on one thread but
    crawl when threads fight on a busy 2-core machine, and sums come out in one order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
