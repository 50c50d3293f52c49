"""The trainer panel's form: what to train, on what, how long, where. Produces a TrainSpec.

The preset's own values fill the fields (so the user sees what the paper used); only the fields
the user changed become ``--set`` overrides, so the run's ``config.json`` stays the preset's
wherever nobody touched it. Two exceptions: the sample rate defaults to the dataset's (a model
trained at the rate of its sounds reads them without resampling), and fine-tuning proposes a
tenth of the loaded model's learning rate.

A value the user typed stays until the user changes it: picking another preset refills only the
fields nobody edited, and nothing the app does (a new model, a hot reload, the fine-tune entry
appearing above the current one) refills any field. The learning rate is shown in scientific
notation at any size (a fixed-decimals spin box rounds 5e-7 to 1e-6 and steps 1e-4 to zero).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QValidator
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
    "sample_rate": "The rate the model hears its sounds at; the dataset's own rate is filled in. Clips at "
                   "another rate are resampled once (and cached). The preset's rate is in brackets.",
}
#: rates offered in the sample-rate list (any other can be typed)
COMMON_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)


class ScientificSpinBox(QDoubleSpinBox):
    """A spin box for values spanning decades (learning rates): ``1e-04``, steps by factors of 2.

    Qt stores the value rounded to ``decimals()``; 15 decimals keep any learning rate exact.
    """

    def __init__(self, *, minimum: float, maximum: float) -> None:
        super().__init__()
        self.setDecimals(15)
        self.setRange(minimum, maximum)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        return f"{value:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt's name
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            # a number being typed ("1e", "5e-", ".") is fine for now
            ok = t == "" or all(c in "0123456789.eE+-" for c in t)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        inside = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt's name
        self.setValue(self.value() * 2.0 ** steps)
        self.editingFinished.emit()


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
        self._fine_tune_training: dict[str, Any] = {}
        self._fine_tune_rate: int | None = None
        self._shown: dict[str, Any] = {}
        #: fields the user edited: never refilled by a preset, a model or the app
        self.edited: set[str] = set()
        self._filling = False
        self._source_data: Any = None
        self.dataset_rate: int | None = None
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
        self.lr = ScientificSpinBox(minimum=1e-9, maximum=1.0)
        self.batch_size = QSpinBox(minimum=1, maximum=65536)
        self.epochs = QSpinBox(minimum=1, maximum=100000)
        self.patience = QSpinBox(minimum=0, maximum=10000)
        self.latent_dim = QSpinBox(minimum=1, maximum=4096)
        self.sample_rate = QComboBox()
        self.sample_rate.setEditable(True)
        for r in COMMON_RATES:
            self.sample_rate.addItem(f"{r} Hz", r)
        self.max_steps = QSpinBox(minimum=0, maximum=10_000_000, specialValueText="no cap")
        self.tiny = QCheckBox("tiny model (smoke test)")
        self.device = QComboBox()
        self.device.addItem("auto", "auto")
        self.device.addItem("cpu", "cpu")
        if _cuda_available():  # never offer a device the trainer would refuse
            self.device.addItem("cuda", "cuda")
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        rows = (("Train", self.source, "source"), ("Dataset", data_row, "data"),
                ("Sample rate", self.sample_rate, "sample_rate"), ("Learning rate", self.lr, "lr"),
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
        for name, w in (("lr", self.lr), ("batch_size", self.batch_size), ("epochs", self.epochs),
                        ("patience", self.patience), ("latent_dim", self.latent_dim)):
            w.valueChanged.connect(lambda _v, n=name: self._on_field_edited(n))
        self.sample_rate.currentTextChanged.connect(lambda _t: self._on_field_edited("sample_rate"))
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self._on_source_changed()

    def _on_field_edited(self, name: str) -> None:
        if not self._filling:
            self.edited.add(name)

    # --- fine-tuning ----------------------------------------------------------------------------------
    def set_fine_tune_source(self, checkpoint: str | None, preset: str = "", training: dict | None = None,
                             *, rate: int | None = None, label: str = "") -> None:
        """Offer (or withdraw) fine-tuning the loaded model saved at ``checkpoint``.

        The fields are filled when the user picks the entry, not here: a hot reload while the
        entry is selected changes what is fine-tuned, never what the user sees in the form.
        """
        i = self.source.findData(FINE_TUNE)
        if checkpoint is None:
            if i >= 0:
                self.source.removeItem(i)
            self._fine_tune_from = None
            return
        self._fine_tune_from, self._fine_tune_preset = checkpoint, preset
        self._fine_tune_training = dict(training or {})
        self._fine_tune_rate = int(rate) if rate else None
        text = f"Fine-tune the loaded model ({label or Path(checkpoint).stem})"
        if i < 0:
            self.source.insertItem(0, text, FINE_TUNE)  # shifts the current index: not a new source
        else:
            self.source.setItemText(i, text)

    def set_dataset_rate(self, rate: int | None) -> None:
        """The sample rate of the dataset to train on; filled in unless the user chose one."""
        self.dataset_rate = int(rate) if rate else None
        if self.source.currentData() != FINE_TUNE:
            self._fill_rate(self._preset_rate())

    def _preset_rate(self) -> int | None:
        preset = _presets().get(self.source.currentData()) if self.source.currentData() != FINE_TUNE else None
        rate = preset.representation.get("sample_rate") if preset is not None else None
        return int(rate) if rate else None

    def _fill_rate(self, preset_rate: int | None) -> None:
        fine = self.source.currentData() == FINE_TUNE
        self._shown["sample_rate"] = preset_rate
        self.sample_rate.setEnabled(not fine)
        self.sample_rate.setToolTip(TIPS["sample_rate"] + (f" (preset: {preset_rate} Hz)" if preset_rate else ""))
        if "sample_rate" in self.edited and not fine:
            return
        rate = self._fine_tune_rate if fine else (self.dataset_rate or preset_rate)
        self._filling = True
        try:
            self._set_rate_text(rate)
        finally:
            self._filling = False

    def _set_rate_text(self, rate: int | None) -> None:
        if rate is None:
            self.sample_rate.setCurrentIndex(-1)
            return
        i = self.sample_rate.findData(int(rate))
        if i < 0:
            self.sample_rate.addItem(f"{int(rate)} Hz", int(rate))
            i = self.sample_rate.count() - 1
        self.sample_rate.setCurrentIndex(i)

    def chosen_rate(self) -> int | None:
        """The rate in the field (typed or picked), or None when it is not a positive number."""
        text = self.sample_rate.currentText().lower().replace("hz", "").strip()
        try:
            rate = int(float(text))
        except ValueError:
            return None
        return rate if rate > 0 else None

    def _on_source_changed(self, *_: Any) -> None:
        if self.source.currentData() == self._source_data:
            return  # an entry inserted or removed above the current one moved it, nothing else
        self._source_data = self.source.currentData()
        fine = self._source_data == FINE_TUNE
        name = self._fine_tune_preset if fine else self._source_data
        preset = _presets().get(name) if name else None
        training = dict(TRAIN_DEFAULTS)
        if preset is not None:
            training.update({k: v for k, v in preset.training.items() if k in TRAIN_DEFAULTS})
        if fine:
            training.update({k: v for k, v in self._fine_tune_training.items() if k in TRAIN_DEFAULTS})
            training["lr"] = float(training["lr"]) / 10
        latent = (preset.model_config.get("latent_dim") if preset is not None else None)
        self._shown = {**{k: training[k] for k in TRAIN_DEFAULTS}, "latent_dim": latent}
        self._filling = True
        try:
            for k, w in (("lr", self.lr), ("batch_size", self.batch_size), ("epochs", self.epochs),
                         ("patience", self.patience)):
                if k not in self.edited or fine:
                    w.setValue(float(training[k]) if k == "lr" else int(training[k]))
            if "latent_dim" not in self.edited or fine:
                self.latent_dim.setValue(int(latent or 1))
        finally:
            self._filling = False
        self.latent_dim.setEnabled(latent is not None and not fine)
        self.tiny.setEnabled(not fine)
        self._fill_rate(None if fine else self._preset_rate())

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
            if (fine and k == "lr") or abs(float(v) - float(self._shown[k])) > 1e-12 * max(1.0, abs(float(v))):
                out.append(f"train.{k}={v:.6g}" if k == "lr" else f"train.{k}={int(v)}")
        if self.latent_dim.isEnabled() and self.latent_dim.value() != self._shown["latent_dim"]:
            out.append(f"model.latent_dim={self.latent_dim.value()}")
        rate = self.chosen_rate()
        if not fine and rate and rate != self._shown.get("sample_rate"):
            out.append(f"rep.sample_rate={rate}")
        return tuple(out)

    def spec(self, run_dir: str | Path, **extra: Any) -> TrainSpec:
        fine = self.source.currentData() == FINE_TUNE
        return TrainSpec(
            run_dir=str(run_dir), data=self.data.text().strip(),
            preset="" if fine else str(self.source.currentData()),
            init_from=(self._fine_tune_from or "") if fine else "",
            overrides=self.overrides(), device=str(self.device.currentData() or "auto"),
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
