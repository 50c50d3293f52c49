"""docs/architecture.md stays true: the modules it names exist, and it names every package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
#: a path into one of our packages, as the page writes them: `explorer/core/controller.py`, `models/nets/`
PATH = re.compile(r"\b((?:explorer|models|trainer)(?:/[A-Za-z_][A-Za-z0-9_]*)*(?:\.py|/))")


def named_paths(text: str) -> set[str]:
    return set(PATH.findall(text))


def packages(top: str) -> list[str]:
    """Every package under ``top`` (a folder with ``__init__.py``), as ``top/sub/``."""
    return sorted(f"{p.parent.relative_to(ROOT).as_posix()}/" for p in (ROOT / top).rglob("__init__.py")
                  if "__pycache__" not in p.parts and p.parent != ROOT / top)


def test_every_module_the_page_names_exists():
    names = named_paths(DOC.read_text())
    assert len(names) > 40  # the page is read, not an empty match
    missing = sorted(n for n in names if not (ROOT / n).exists() or (n.endswith("/") and not (ROOT / n).is_dir()))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_package_is_on_the_page():
    text = DOC.read_text()
    names = named_paths(text)
    pkgs = packages("explorer") + packages("models")
    assert "explorer/core/" in pkgs and "models/inference/" in pkgs
    # a package is named by its folder or by a module inside it
    unnamed = [p for p in pkgs if not any(n == p or n.startswith(p) for n in names)]
    assert not unnamed, f"docs/architecture.md does not say where these packages fit: {unnamed}"


def test_the_path_pattern_reads_the_page_as_written():
    assert named_paths("see `explorer/core/controller.py` and `models/nets/`, not explorer.core") == {
        "explorer/core/controller.py", "models/nets/"}
