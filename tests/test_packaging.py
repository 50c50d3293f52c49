"""The import rule and the entry points, checked so they cannot rot."""

import subprocess
import sys
import json

import pytest

from models.atomic import atomic_open, atomic_write_json
from models.config import config_from_dict, parse_override
from models.errors import ConfigError


def test_compute_packages_import_without_qt():
    # A fresh interpreter imports the compute side and must not have pulled in Qt.
    code = (
        "import sys, models, models.audio, models.config, models.atomic, trainer.cli;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','shiboken6')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_trainer_cli_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "dataset" in out


def test_atomic_open_keeps_old_file_on_crash(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write('{"v": 2')
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_config_rejects_unknown_keys_and_bad_types():
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class C:
        a: int = 1
        b: tuple[int, ...] = (1, 2)
        c: float = 0.5

    assert config_from_dict(C, {"a": 3, "b": [4, 5]}) == C(a=3, b=(4, 5))
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict(C, {"d": 1})
    with pytest.raises(ConfigError, match="expected an integer"):
        config_from_dict(C, {"a": "x"})
    assert parse_override("c=0.25") == ("c", 0.25)
    assert parse_override("name=abc") == ("name", "abc")
