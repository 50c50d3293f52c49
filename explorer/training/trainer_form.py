"""The trainer panel's form: what to train, on what, how long, where. Produces a TrainSpec.

The preset's own values fill the fields (so the user sees what the paper used); only the fields
the user changed become ``--set`` overrides, so the run's ``config.json`` stays the preset's
wherever nobody touched it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from explorer.core.training_runs import TrainSpec

#: item data of the "fine-tune the loaded model" entry in the source list
FINE_TUNE = "<fine-tune>"
#: shown where a preset says nothing: the trainer's TrainConfig defaults (docs/trainer.md)
TRAIN_DEFAULTS = {"lr": 1e-3, "batch_size": 64, "epochs": 100, "patience": 10}

TIPS = {
    "source": "A preset trains a new model from scratch, as in its paper. 'Fine-tune the loaded model' "
              "starts from the current model's weights, keeping its architecture and representation, "
              "and adapts it to this dataset.",
    "data": "The sounds to train on: a folder of audio files, NSynth, FSDD or a Hydrogen kit. "
            "It is split 80/10/10 into training, validation and test sets, grouped by speaker, "
            "instrument or kit so none is on both sides.",
    "lr": "Adam's learning rate: the size of each step. Too high and the loss jumps or diverges; too "
          "low and it creeps. The papers use 1e-3 (Lionello's VAEs 5e-4); for fine-tuning a tenth "
          "of the preset's is filled in, so the model adapts without forgetting.",
    "batch_size": "Items (frames, windows or clips) averaged in one step. Larger batches give smoother "
                  "steps and run faster on a GPU, but need more memory.",
    "epochs": "The most passes over the training set. Early stopping usually ends the run sooner.",
    "patience": "Early stopping: end the run after this many validations without a better validation "
                "loss (0: never). Natsiou uses 10.",
    "latent_dim": "Size of the code each sound (or frame) is squeezed into; the map is drawn from it. "
                  "Smaller codes are easier to explore, larger ones reconstruct better.",
    "max_steps": "Stop after this many optimizer steps in all (0: no cap): a quick try before a long run. "
                 "A stopped or capped run can be resumed.",
    "tiny": "The preset's tiny size (a few dozen bins, small layers): trains in seconds and sounds poor. "
            "For trying the panel out.",
    "device": "Where to train. 'auto' uses a CUDA GPU when there is one (with mixed precision), else the CPU.",
}


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # the explorer runs without torch only in stripped-down installs
        return False


class TrainerForm(QWidget):
    """Source (preset or fine-tune), dataset, main hyper-parameters, device."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fine_tune_from: str | None = None
        self._fine_tune_preset: str = ""
        self._shown: dict[str, Any] = {}
        self.source = QComboBox()
        self.source.setToolTip(TIPS["source"])
        for name, preset in _presets().items():
            self.source.addItem(name, name)
            self.source.setItemData(self.source.count() - 1, preset.description or preset.paper, 3)  # ToolTipRole
        self.data = QLineEdit()
        self.data.setPlaceholderText("dataset folder")
        self.data.setToolTip(TIPS["data"])
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(self._on_browse_clicked)
        data_row = QHBoxLayout()
        data_row.setContentsMargins(0, 0, 0, 0)
        data_row.addWidget(self.data, 1)
        data_row.addWidget(browse)
        self.lr = QDoubleSpinBox(decimals=6, minimum=1e-6, maximum=1.0, singleStep=1e-4)
        self.batch_size = QSpinBox(minimum=1, maximum=65536)
        self.epochs = QSpinBox(minimum=1, maximum=100000)
        self.patience = QSpinBox(minimum=0, maximum=10000)
        self.latent_dim = QSpinBox(minimum=1, maximum=4096)
        self.max_steps = QSpinBox(minimum=0, maximum=10_000_000, specialValueText="no cap")
        self.tiny = QCheckBox("tiny model (smoke test)")
        self.device = QComboBox()
        for d in ("auto", "cpu", "cuda"):
            self.device.addItem(d, d)
        if not _cuda_available():
            self.device.model().item(2).setEnabled(False)
            self.device.setItemData(2, "No CUDA GPU found", 3)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        rows = (("Train", self.source, "source"), ("Dataset", data_row, "data"), ("Learning rate", self.lr, "lr"),
                ("Batch size", self.batch_size, "batch_size"), ("Epochs", self.epochs, "epochs"),
                ("Patience", self.patience, "patience"), ("Latent size", self.latent_dim, "latent_dim"),
                ("Max steps", self.max_steps, "max_steps"), ("", self.tiny, "tiny"), ("Device", self.device, "device"))
        for label, w, tip in rows:
            form.addRow(label, w)
            if isinstance(w, QWidget):
                w.setToolTip(TIPS[tip])
            lab = form.labelForField(w)
            if lab is not None:
                lab.setToolTip(TIPS[tip])
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self._on_source_changed()

    # --- fine-tuning ----------------------------------------------------------------------------------
    def set_fine_tune_source(self, checkpoint: str | None, preset: str = "", training: dict | None = None) -> None:
        """Offer (or withdraw) fine-tuning the loaded model saved at ``checkpoint``."""
        i = self.source.findData(FINE_TUNE)
        if checkpoint is None:
            if i >= 0:
                self.source.removeItem(i)
            self._fine_tune_from = None
            return
        self._fine_tune_from, self._fine_tune_preset = checkpoint, preset
        self._fine_tune_training = dict(training or {})
        text = f"Fine-tune the loaded model ({Path(checkpoint).stem})"
        if i < 0:
            self.source.insertItem(0, text, FINE_TUNE)
        else:
            self.source.setItemText(i, text)
        if self.source.currentData() == FINE_TUNE:
            self._on_source_changed()

    def _on_source_changed(self, *_: Any) -> None:
        fine = self.source.currentData() == FINE_TUNE
        name = self._fine_tune_preset if fine else self.source.currentData()
        preset = _presets().get(name) if name else None
        training = dict(TRAIN_DEFAULTS)
        if preset is not None:
            training.update({k: v for k, v in preset.training.items() if k in TRAIN_DEFAULTS})
        if fine:
            training.update({k: v for k, v in getattr(self, "_fine_tune_training", {}).items() if k in TRAIN_DEFAULTS})
            training["lr"] = float(training["lr"]) / 10
        latent = (preset.model_config.get("latent_dim") if preset is not None else None)
        self._shown = {**{k: training[k] for k in TRAIN_DEFAULTS}, "latent_dim": latent}
        self.lr.setValue(float(training["lr"]))
        self.batch_size.setValue(int(training["batch_size"]))
        self.epochs.setValue(int(training["epochs"]))
        self.patience.setValue(int(training["patience"]))
        self.latent_dim.setEnabled(latent is not None and not fine)
        self.latent_dim.setValue(int(latent or 1))
        self.tiny.setEnabled(not fine)

    def _on_browse_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset to train on", self.data.text() or str(Path.home()))
        if path:
            self.data.setText(path)

    # --- the spec -----------------------------------------------------------------------------------------
    def set_preset(self, name: str) -> None:
        i = self.source.findData(name)
        if i < 0:
            raise KeyError(name)
        self.source.setCurrentIndex(i)

    def overrides(self) -> tuple[str, ...]:
        """``--set`` strings for the fields that differ from what the preset filled in."""
        out = []
        now = {"lr": self.lr.value(), "batch_size": self.batch_size.value(), "epochs": self.epochs.value(),
               "patience": self.patience.value()}
        fine = self.source.currentData() == FINE_TUNE
        for k, v in now.items():
            # fine-tuning shows a lower lr than the preset's, which the trainer would otherwise use
            if (fine and k == "lr") or abs(float(v) - float(self._shown[k])) > 1e-12:
                out.append(f"train.{k}={v:g}" if k == "lr" else f"train.{k}={int(v)}")
        if self.latent_dim.isEnabled() and self.latent_dim.value() != self._shown["latent_dim"]:
            out.append(f"model.latent_dim={self.latent_dim.value()}")
        return tuple(out)

    def spec(self, run_dir: str | Path, **extra: Any) -> TrainSpec:
        fine = self.source.currentData() == FINE_TUNE
        return TrainSpec(
            run_dir=str(run_dir), data=self.data.text().strip(),
            preset="" if fine else str(self.source.currentData()),
            init_from=(self._fine_tune_from or "") if fine else "",
            overrides=self.overrides(), device=str(self.device.currentData()),
            tiny=self.tiny.isChecked() and not fine, max_steps=self.max_steps.value() or None, **extra,
        )

    def run_name(self) -> str:
        if self.source.currentData() == FINE_TUNE:
            return f"finetune-{Path(self._fine_tune_from or 'model').stem}"
        return str(self.source.currentData())


def _presets() -> dict[str, Any]:
    import models.nets.catalog  # noqa: F401  (registers every preset)
    from models.nets.registry import PRESETS

    return dict(PRESETS)
