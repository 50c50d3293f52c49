"""Property-based tests of the parsers of files from anywhere: only our error types come out.

Hypothesis edits one field of a valid checkpoint, session, render spec or NSynth index into an
arbitrary JSON value (or the bytes into arbitrary bytes) and checks that reading it either works
or raises the one error type that parser promises. Deterministic (``derandomize``) and kept small.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checkpoint import METADATA_KEY, _join, _save, _split
from test_datasets import _nsynth_entry, _wav

from explorer.core.session import load_session
from models.checkpoints.checkpoint import load_checkpoint, read_checkpoint_info
from models.datasets import open_dataset
from models.errors import CheckpointError, ConfigError, DatasetError

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

#: any JSON value, a few levels deep, with the numbers and strings that break parsers
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["", "..", "../x", "/etc/passwd", "a\x00b", "\udce9"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# --- checkpoints -----------------------------------------------------------------------------------------
CHECKPOINT_FIELDS = ["model_name", "preset", "model_config", "representation", "dataset_fingerprint", "labels",
                     "training", "weights", "latent_stats", "package_version", "created", "latent_shape",
                     "schema_version", "format", "item_layout"]


@pytest.fixture(scope="module")
def good_checkpoint(workdir):
    path = _save(workdir / "good.safetensors")
    return _split(path)


@SETTINGS
@given(field=st.sampled_from(CHECKPOINT_FIELDS), value=JSON, nested=st.sampled_from([None, "model_config",
                                                                                      "representation"]))
def test_checkpoint_metadata_edits_give_only_checkpoint_errors(workdir, good_checkpoint, field, value, nested):
    header, data = json.loads(json.dumps(good_checkpoint[0])), good_checkpoint[1]
    meta = json.loads(header["__metadata__"][METADATA_KEY])
    if nested is not None and isinstance(meta.get(nested), dict):
        meta[nested][field] = value
    else:
        meta[field] = value
    header["__metadata__"][METADATA_KEY] = json.dumps(meta)
    path = workdir / "edited.safetensors"
    _join(path, header, data)
    for read in (read_checkpoint_info, load_checkpoint):
        try:
            read(path)
        except CheckpointError:
            pass


@SETTINGS
@given(raw=st.binary(max_size=200), prefix=st.integers(min_value=0, max_value=300))
def test_checkpoint_bytes_give_only_checkpoint_errors(workdir, raw, prefix):
    path = workdir / "bytes.safetensors"
    path.write_bytes(prefix.to_bytes(8, "little") + raw)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


# --- sessions -------------------------------------------------------------------------------------------
SESSION_FIELDS = ["schema_version", "dataset", "models", "current_model", "projection", "point_mode",
                  "colour_field", "hidden_classes", "selection", "gains", "layout", "paths"]


@SETTINGS
@given(field=st.sampled_from(SESSION_FIELDS), value=JSON)
def test_session_edits_give_only_config_errors(workdir, field, value):
    session = {"schema_version": 2, "dataset": "/d", "models": [], "paths": [], field: value}
    path = workdir / "s.json"
    path.write_text(json.dumps(session))
    try:
        load_session(path)
    except ConfigError:
        pass


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_session_bytes_give_only_config_errors(workdir, raw):
    path = workdir / "s.json"
    path.write_bytes(raw)
    try:
        load_session(path)
    except ConfigError:
        pass


# --- render specs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from test_hardening_cli import make_spec_file

    return json.loads(make_spec_file(tmp_path_factory.mktemp("spec")).read_text())


SPEC_FIELDS = ["kind", "schema_version", "model", "representation", "dataset", "latent_shape", "layout", "output",
               "sound", "path", "template", "centre"]


@SETTINGS
@given(field=st.sampled_from(SPEC_FIELDS), value=JSON,
       inner=st.sampled_from([None, "output", "sound", "representation"]))
def test_render_spec_edits_give_only_our_errors(spec, field, value, inner):
    from models.errors import LatentExplorerError
    from models.morphing.export_audio import render_from_spec

    edited = json.loads(json.dumps(spec))
    if inner is not None and isinstance(edited.get(inner), dict):
        edited[inner][field] = value
    else:
        edited[field] = value
    try:
        render_from_spec(edited)
    except (ConfigError, CheckpointError, DatasetError, LatentExplorerError):
        pass


# --- NSynth -------------------------------------------------------------------------------------------
NSYNTH_FIELDS = ["note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
                 "qualities", "qualities_str", "instrument_family", "instrument_family_str", "instrument_source",
                 "instrument_source_str"]


@pytest.fixture(scope="module")
def nsynth_root(workdir):
    root = workdir / "nsynth"
    _wav(root / "audio" / "brass_acoustic_002-060-100.wav")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENT_EXPLORER_CACHE", str(workdir / "cache"))
        yield root


@SETTINGS
@given(field=st.sampled_from(NSYNTH_FIELDS), value=JSON, key=st.sampled_from(
    ["brass_acoustic_002-060-100", "../brass_acoustic_002-060-100", "/x", "a/b", ""]))
def test_nsynth_entries_give_only_dataset_errors(nsynth_root, field, value, key):
    entry = {**_nsynth_entry(1, "brass", 1, "acoustic", 0, 2, 60, 100), field: value}
    (nsynth_root / "examples.json").write_text(json.dumps({key: entry}))
    try:
        ds = open_dataset(nsynth_root)
        _ = ds.fingerprint, ds.counts(ds.default_label)
    except DatasetError:
        pass
