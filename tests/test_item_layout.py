"""models.inference.layout: one item layout for the trainer and the app, and the layout a checkpoint records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch

from models.checkpoints.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from models.checkpoints.format import METADATA_KEY, SCHEMA_VERSION
from models.errors import CheckpointError, ConfigError, DatasetError
from models.inference import layout
from models.inference.encode import encode_dataset
from models.nets.base import LatentCode, LatentModel
from models.nets.registry import build_model
from models.representations import LogMel, StftFrames, Waveform
from trainer.data import build_items, input_shape_for, item_mode

DEMO = "resources/demo/notes/checkpoints"


@dataclass(frozen=True, kw_only=True)
class SpyConfig:
    input_shape: tuple[int, ...] = (9,)


class FrameSpy(LatentModel):
    """Encodes an item as its mean and keeps every batch it was given."""

    name = "frame_spy"
    config_class = SpyConfig

    def __init__(self, config: SpyConfig) -> None:
        super().__init__(config)
        self.seen: list[np.ndarray] = []

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (1,)

    def encode(self, x: torch.Tensor) -> LatentCode:
        self.seen.append(x.numpy().copy())
        return LatentCode(mean=x.flatten(1).mean(1, keepdim=True))


class SequenceSpy(FrameSpy):
    name = "sequence_spy"
    sequence = True


def _app_items(model: FrameSpy, rep: object, feats: list[np.ndarray]) -> np.ndarray:
    ds = SimpleNamespace(clips=[None] * len(feats))
    encode_dataset(model, rep, ds, features=feats)
    return np.concatenate(model.seen)


CASES = [
    # (model class, representation class, input_shape, features of two clips)
    (FrameSpy, StftFrames, (9,), [(13, 9), (5, 9)]),
    (SequenceSpy, StftFrames, (4, 9), [(13, 9), (2, 9)]),
    (FrameSpy, LogMel, (6, 8), [(6, 10), (6, 5)]),
    (FrameSpy, Waveform, (32,), [(40,), (32,)]),
]


@pytest.mark.parametrize("model_cls, rep_cls, input_shape, shapes", CASES, ids=["frames", "windows", "logmel", "waveform"])
def test_training_items_equal_app_items(model_cls, rep_cls, input_shape, shapes):
    rng = np.random.default_rng(0)
    feats = [rng.random(s).astype(np.float32) for s in shapes]
    mode = item_mode(model_cls, rep_cls.kind)
    assert mode == layout.layout_for(model_cls, rep_cls)
    # what trainer.run_setup.prepare builds with the default train.seq_hop (0: one window length)
    train = build_items(feats, np.arange(len(feats)), np.zeros(len(feats), np.int64), mode=mode,
                        seq_len=input_shape[0] if mode == layout.WINDOWS else 0, seq_hop=0,
                        clip_length=input_shape[-1] if mode == layout.CLIPS else None)
    app = _app_items(model_cls(SpyConfig(input_shape=input_shape)), rep_cls, feats)
    assert app.shape[1:] == input_shape
    assert np.array_equal(train.x, app)
    assert train.clip.tolist() == sum(([i] * len(layout.to_items(f, mode, input_shape)) for i, f in enumerate(feats)), [])


def test_layouts_of_the_papers_models():
    deep = build_model("deep_ae", {"input_shape": [9], "hidden": [6], "latent_dim": 3})
    lstm = build_model("lstm_ae", {"input_shape": [4, 9], "latent_dim": 3, "hidden_size": 5})
    assert layout.layout_for(deep, StftFrames()) == layout.FRAMES
    assert layout.layout_for(lstm, StftFrames()) == layout.WINDOWS
    assert layout.layout_for(deep, LogMel()) == layout.CLIPS == layout.layout_for(type(lstm), Waveform)


def test_frames_and_windows_round_trip_and_hold_one_code():
    f = np.arange(13 * 3, dtype=np.float32).reshape(13, 3)
    assert np.array_equal(layout.from_items(layout.to_items(f, "frames", (3,)), "frames", f.shape), f)
    windows = layout.to_items(f, "windows", (4, 3))
    assert windows.shape == (4, 4, 3) and not windows[-1, 1:].any()  # 13 frames: the last window padded
    assert np.array_equal(layout.from_items(windows, "windows", f.shape), f)
    held = layout.from_items(f[5:6], "frames", f.shape)  # one decoded frame held over the clip
    assert held.shape == f.shape and (held == f[5]).all()
    overlapping = layout.to_items(f, "windows", (4, 3), hop=2)  # training's seq_hop
    assert [w[0, 0] for w in overlapping] == [0, 6, 12, 18, 24, 30]
    assert overlapping[-1, -2].any() and not overlapping[-1, -1].any()  # padded only past the clip's end


def test_clips_pad_and_crop_along_time_only():
    f = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)  # (n_mels, n_frames)
    items = layout.to_items(f, "clips", (1, 10, 9))  # a leading channel axis is added
    assert items.shape == (1, 1, 10, 9) and np.all(items[0, 0, :, 7:] == 0)
    assert np.array_equal(layout.from_items(items, "clips", f.shape), f)
    cropped = layout.to_items(f, "clips", (10, 5))
    assert np.array_equal(cropped[0], f[:, :5])
    back = layout.from_items(cropped, "clips", f.shape)
    assert np.array_equal(back[:, :5], f[:, :5]) and not back[:, 5:].any()
    with pytest.raises(DatasetError, match="differ on more than the time axis"):
        layout.to_items(f, "clips", (8, 9))
    with pytest.raises(DatasetError, match="cannot feed"):
        layout.to_items(f, "frames", (8,))


def test_layout_names_and_shapes():
    assert layout.parse_layout("whole") == "clips" and layout.parse_layout("chunks") == "windows"
    with pytest.raises(ConfigError, match="unknown item layout"):
        layout.parse_layout("rows")
    feats = [np.ones((2, 4)), np.ones((2, 6)), np.ones((2, 6))]
    assert layout.input_shape_for(feats, "clips") == (2, 6)
    assert layout.input_shape_for([np.ones((7, 5))], "windows", seq_len=3) == (3, 5)
    assert input_shape_for([np.ones((7, 5))], np.array([0]), mode="frames", seq_len=0) == (5,)
    assert layout.window_starts(5, 2, 2) == [0, 2, 4] and layout.window_starts(1, 4, 4) == [0]


# --- the layout a checkpoint records --------------------------------------------------------------
def _save(path, model, rep):
    return save_checkpoint(path, model, representation=rep.to_dict())


def _as_schema_2(path) -> None:
    """The file as schema 2 wrote it: the same, without ``item_layout``."""
    with safetensors.safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    tensors = safetensors.torch.load_file(path)
    meta = json.loads(metadata[METADATA_KEY])
    del meta["item_layout"]
    meta["schema_version"] = 2
    metadata[METADATA_KEY] = json.dumps(meta)
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("name, config, rep, expected", [
    ("deep_ae", {"input_shape": [9], "hidden": [6], "latent_dim": 3}, StftFrames(n_fft=16, hop_length=4), "frames"),
    ("lstm_ae", {"input_shape": [4, 9], "latent_dim": 3, "hidden_size": 5}, StftFrames(n_fft=16, hop_length=4), "windows"),
    ("natsiou_conv_ae", {"input_shape": [64, 64], "channels": [4, 8, 16]}, LogMel(n_mels=64, n_frames=64), "clips"),
])
def test_checkpoint_records_its_layout_and_old_ones_migrate(tmp_path, name, config, rep, expected):
    torch.manual_seed(0)
    model = build_model(name, config)
    path = _save(tmp_path / "m.safetensors", model, rep)
    info = read_checkpoint_info(path)
    assert info.item_layout == expected == info.meta["item_layout"] and info.meta["schema_version"] == SCHEMA_VERSION == 3
    _as_schema_2(path)
    old = load_checkpoint(path)
    assert old.info.stored_schema_version == 2 and old.info.item_layout == expected


def test_a_wrong_layout_is_refused(tmp_path):
    model = build_model("deep_ae", {"input_shape": [9], "hidden": [6], "latent_dim": 3})
    with pytest.raises(CheckpointError, match="takes frames, not windows"):
        save_checkpoint(tmp_path / "m.safetensors", model, representation=StftFrames(n_fft=16, hop_length=4).to_dict(),
                        item_layout="windows")


def test_shipped_demo_checkpoints_migrate_to_their_layouts():
    assert read_checkpoint_info(f"{DEMO}/colonel-notes.safetensors").item_layout == "frames"
    assert read_checkpoint_info(f"{DEMO}/natsiou-notes.safetensors").item_layout == "clips"


def test_a_checkpoint_whose_layout_the_app_would_not_use_is_refused(tmp_path):
    model = build_model("deep_ae", {"input_shape": [9], "hidden": [6], "latent_dim": 3})
    path = _save(tmp_path / "m.safetensors", model, StftFrames(n_fft=16, hop_length=4))
    with safetensors.safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    meta = json.loads(metadata[METADATA_KEY])
    meta["item_layout"] = "windows"
    metadata[METADATA_KEY] = json.dumps(meta)
    safetensors.torch.save_file(safetensors.torch.load_file(path), str(path), metadata=metadata)
    assert read_checkpoint_info(path).item_layout == "windows"  # the header alone is readable
    with pytest.raises(CheckpointError, match="trained on windows of its features.*feeds a deep_ae frames"):
        load_checkpoint(path)
