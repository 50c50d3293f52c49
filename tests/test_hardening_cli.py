"""Hostile render specs and CLI failures: nothing written outside --out, no hang, one line each.

Each case here was an attack that worked: a spec naming "/../../x" replaced x, a name equal to
an existing outside path hung the free-name search, and malformed specs ended in tracebacks.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
from trainer_helpers import CLI, ENV

from models.morphing.export_audio import ExportOptions, export_names, sound_spec
from models.safe_paths import confined_path, display_name, free_stem, safe_name
from trainer.cli import EXIT_FILES, EXIT_INPUT, EXIT_INTERNAL, main


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    return make_spec_file(tmp_path_factory.mktemp("spec"))


def make_spec_file(root):
    """A real render spec of one decoded code (Colonel's hybrid, tiny, untrained), in ``root``."""
    from models.checkpoints.checkpoint import save_checkpoint
    from models.morphing.export_audio import model_record
    from models.checkpoints.checkpoint import load_checkpoint
    from models.nets.registry import build_model, get_preset
    from models.representations import representation_from_dict

    p = get_preset("colonel-hybrid")
    rep = representation_from_dict({**p.representation, **p.tiny_representation})
    model = build_model(p.model, {**p.model_config, **p.tiny_model})
    ckpt = save_checkpoint(root / "colonel.safetensors", model, preset="colonel-hybrid",
                           representation=rep.to_dict())
    n = rep.sample_rate // 10
    latent = tuple(int(v) for v in model.latent_shape)
    source = {"kind": "code", "code": [0.1] * int(np.prod(latent)),
              "template": {"n_samples": n, "feature_shape": list(rep.feature_shape(n)), "frame_max": None,
                           "clip": ""}}
    options = ExportOptions(what="sound", subtype="pcm16")
    spec = sound_spec(model=model_record(load_checkpoint(ckpt)), representation=rep, dataset={},
                      latent_shape=latent, layout="frames", source=source, options=options,
                      files=export_names(options, "sound_x"))
    path = root / "sound_x.json"
    path.write_text(json.dumps(spec))
    return path


def _write_spec(tmp_path, spec: dict, name: str = "edited.json"):
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("latent-trainer:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_spec_renders_into_out(spec_file, tmp_path, capsys):
    code, err = _cli(capsys, "render", str(spec_file), "--out", str(tmp_path / "out"))
    assert code == 0, err
    (wav,) = (tmp_path / "out").iterdir()
    assert wav.name == "sound_x.wav" and np.abs(sf.read(wav)[0]).max() > 0


@pytest.mark.parametrize("overwrite", [True, False])
def test_an_absolute_or_dotted_name_never_writes_outside_out(spec_file, tmp_path, capsys, overwrite):
    victim = tmp_path / "home" / ".profile"
    victim.parent.mkdir()
    victim.write_text("export PATH=/usr/bin\n")
    spec = json.loads(spec_file.read_text())
    out = tmp_path / "out"
    for name in ("/../../../../" + str(victim).lstrip("/"), "../home/.profile", str(victim), "sub/x.wav"):
        spec["output"]["files"] = [name]
        args = ["render", str(_write_spec(tmp_path, spec)), "--out", str(out)]
        code, err = _cli(capsys, *args, *(["--overwrite"] if overwrite else []))
        assert code == EXIT_INPUT and "plain file name" in _one_line(err)
    assert victim.read_text() == "export PATH=/usr/bin\n"
    assert not out.exists() or not list(out.rglob("*"))
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == []


def test_a_name_equal_to_an_existing_outside_path_does_not_hang(spec_file, tmp_path):
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"not yours")
    spec = json.loads(spec_file.read_text())
    spec["output"]["files"] = [str(outside)]
    path = _write_spec(tmp_path, spec)
    res = subprocess.run([*CLI, "render", str(path), "--out", str(tmp_path / "out")], capture_output=True,
                         text=True, env=ENV, timeout=120)
    assert res.returncode == EXIT_INPUT and "Traceback" not in res.stderr
    assert outside.read_bytes() == b"not yours"


def test_the_free_name_search_is_bounded(tmp_path):
    (tmp_path / "fixed.wav").write_bytes(b"x")
    from models.errors import ConfigError

    with pytest.raises(ConfigError, match="no free name"):
        free_stem(tmp_path, "stem", lambda s: ["fixed.wav"], limit=50)
    assert free_stem(tmp_path, "fixed", lambda s: [s + ".wav"]) == "fixed-2"


def test_renders_beside_an_earlier_render_get_new_names(spec_file, tmp_path, capsys):
    out = tmp_path / "out"
    spec = json.loads(spec_file.read_text())
    spec["output"]["files"] = ["take.wav"]  # a name that does not hold the spec's stem
    path = _write_spec(tmp_path, spec)
    for _ in range(3):
        code, err = _cli(capsys, "render", str(path), "--out", str(out))
        assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["take-2.wav", "take-3.wav", "take.wav"]


def _broken_specs(spec: dict) -> dict[str, dict]:
    cases: dict[str, dict] = {}

    def case(name: str, edit) -> None:
        s = copy.deepcopy(spec)
        edit(s)
        cases[name] = s

    case("nul byte", lambda s: s["output"].__setitem__("files", ["a\x00b.wav"]))
    case("no output", lambda s: s.pop("output"))
    case("output a list", lambda s: s.__setitem__("output", []))
    case("files a string", lambda s: s["output"].__setitem__("files", "a.wav"))
    case("no latent_shape", lambda s: s.pop("latent_shape"))
    case("absurd latent_shape", lambda s: s.__setitem__("latent_shape", [10**9, 10**9]))
    case("absurd n_samples", lambda s: s["sound"]["template"].__setitem__("n_samples", 10**12))
    case("absurd n_fft", lambda s: s["representation"].__setitem__("n_fft", 2**31))
    case("code too short", lambda s: s["sound"].__setitem__("code", [0.0]))
    case("code of strings", lambda s: s["sound"].__setitem__("code", ["x"]))
    case("template missing", lambda s: s["sound"].pop("template"))
    case("sound a list", lambda s: s.__setitem__("sound", [1]))
    case("model path a number", lambda s: s["model"].__setitem__("path", 3))
    case("neither path nor sound", lambda s: s.pop("sound"))
    case("unknown subtype", lambda s: s["output"].__setitem__("subtype", "mp3"))
    case("schema a string", lambda s: s.__setitem__("schema_version", "1"))
    return cases


def test_malformed_specs_fail_with_one_line_and_exit_2(spec_file, tmp_path, capsys):
    spec = json.loads(spec_file.read_text())
    for label, broken in _broken_specs(spec).items():
        code, err = _cli(capsys, "render", str(_write_spec(tmp_path, broken)), "--out", str(tmp_path / "o"))
        assert code == EXIT_INPUT, (label, err)
        _one_line(err)
    assert not (tmp_path / "o").exists()


def test_spec_files_that_are_not_json_or_nest_deeply(tmp_path, capsys):
    cases = {"deep.json": "[" * 100_000 + "]" * 100_000, "bytes.json": b"\xff\xfe{", "text.json": "not json",
             "empty.json": ""}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        code, err = _cli(capsys, "render", str(path))
        assert code == EXIT_INPUT, (name, err)
        _one_line(err)
    code, err = _cli(capsys, "render", str(tmp_path / "missing.json"))
    assert code == EXIT_INPUT and "cannot read" in _one_line(err)


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(spec_file, capsys, monkeypatch):
    import models.morphing.export_audio as ea

    def boom(*a, **k):
        raise RuntimeError("something\nwe did not expect")

    monkeypatch.setattr(ea, "render_from_spec", boom)
    code, err = _cli(capsys, "render", str(spec_file))
    line = _one_line(err)
    assert code == EXIT_INTERNAL and "internal error: RuntimeError: something we did not expect" in line
    assert "--debug" in line
    code, err = _cli(capsys, "--debug", "render", str(spec_file))
    assert code == EXIT_INTERNAL and "Traceback" in err


def test_a_full_disk_is_exit_3_with_the_folder_named(spec_file, tmp_path, capsys, monkeypatch):
    import errno

    import models.morphing.export_audio as ea

    def full(path, data):
        with open(path, "wb") as f:
            f.write(data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ea, "_write_file", full)
    out = tmp_path / "out"
    code, err = _cli(capsys, "render", str(spec_file), "--out", str(out))
    line = _one_line(err)
    assert code == EXIT_FILES and f"the disk is full (No space left on device): nothing was written to {out}" in line
    assert ".part" not in line and list(out.iterdir()) == []


def test_safe_name_rules():
    from models.errors import ConfigError

    assert safe_name("morph_a-to-b_8steps.wav") == "morph_a-to-b_8steps.wav"
    for bad in ("", ".", "..", "../x", "/abs", "a/b", "a\\b", "a\nb", "a\x00b", ".hidden", "x" * 300, 3, None):
        with pytest.raises(ConfigError):
            safe_name(bad)
    assert display_name(os.fsdecode(b"caf\xe9.wav")) == "caf\\xe9.wav"


def test_a_symlink_at_the_name_is_not_replaced(tmp_path):
    from models.errors import ConfigError

    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.wav").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        confined_path(tmp_path / "out", "a.wav")
