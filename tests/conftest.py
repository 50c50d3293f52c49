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
