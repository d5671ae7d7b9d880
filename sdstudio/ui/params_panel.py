"""Generation parameters: model, scheduler, steps, guidance, seed, size, batch, img2img, device."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core import defaults as d
from sdstudio.core.models.discovery import kind_folders
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.image_slot import ImageSlot
from sdstudio.ui.model_picker import ModelPicker
from sdstudio.ui.panels.canvas import CanvasOptions

SIZE_PRESETS: tuple[tuple[int, int], ...] = (  # before a model is loaded (the demo model's 128)
    (64, 64), (96, 96), (128, 128), (192, 192), (256, 256), (128, 192), (192, 128),
)
NATIVE_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)  # the sizes a model can make without tiling its shapes
TOO_BIG_FACTOR = 2.0  # more than this times the native side: the model repeats its shapes
SD_MAX_PIXELS = 2048 * 2048  # for SD-sized models (native >= 512): over this, warn


def presets_for(native: int) -> list[tuple[int, int]]:
    """Square sizes from 0.5x to 2x the model's native side, then 2:3 and 3:2 at native area."""
    sizes = [(_round8(native * f),) * 2 for f in NATIVE_FACTORS]
    long, short = _round8(native * 1.22), _round8(native * 0.82)
    sizes += [(short, long), (long, short)]
    return list(dict.fromkeys(s for s in sizes if s[0] >= 8 and s[1] >= 8))


def size_warning(width: int, height: int, native: int) -> str | None:
    """One sentence when a size is far above what the model was trained at, else None."""
    if native <= 0:
        return None
    if native < 512:
        too_big = max(width, height) > TOO_BIG_FACTOR * native
    else:
        too_big = width * height > SD_MAX_PIXELS
    if not too_big:
        return None
    return (f"{width}×{height} is far above this model's native {native}×{native}: it will "
            f"repeat (tile) its shapes across the image and each step takes much longer.")


def random_seed() -> int:
    return random.randrange(2**32)


def _round8(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


class ParamsPanel(QWidget):
    """All knobs of a request except the prompts. `params()` / `set_params()` use the field names
    of GenerationRequest (plus `seed_random`, a UI-only choice); `request()` builds the request."""

    modelChosen = Signal(str)  # the user picked another model: preload it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ModelPicker()
        self.model.modelChosen.connect(self.modelChosen)
        self.scheduler = QComboBox()
        self.scheduler.setObjectName("scheduler")
        self.steps = self._spin(1, d.MAX_STEPS, d.DEFAULT_STEPS, "steps")
        self.guidance = QDoubleSpinBox()
        self.guidance.setObjectName("guidance")
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setToolTip("Classifier-free guidance scale; 1 or less skips the negative pass")

        self.seed = QLineEdit("0")
        self.seed.setObjectName("seed")
        self.seed.setValidator(QRegularExpressionValidator(r"\d{1,19}"))
        self.seed_random = QCheckBox("random")
        self.seed_random.setToolTip("Pick a new seed for every Generate; the field shows the last one")
        self.dice = QToolButton()
        self.dice.setText("Dice")
        self.dice.setToolTip("Roll a new fixed seed")
        self.dice.clicked.connect(self._roll)

        self.width_ = self._spin(8, d.MAX_SIDE, d.DEFAULT_SIZE, "width", step=8)
        self.height_ = self._spin(8, d.MAX_SIDE, d.DEFAULT_SIZE, "height", step=8)
        for box in (self.width_, self.height_):
            box.editingFinished.connect(lambda b=box: b.setValue(_round8(b.value())))
        self.size_preset = QComboBox()
        self.size_preset.setObjectName("size_preset")
        self._fill_presets(list(SIZE_PRESETS), 0)
        self.size_preset.activated.connect(self._apply_preset)
        self.swap = QToolButton()
        self.swap.setText("⇄")
        self.swap.setToolTip("Swap width and height")
        self.swap.clicked.connect(self._swap)
        self.batch = self._spin(1, d.MAX_BATCH, 1, "batch_size")
        self.clip_skip = self._spin(1, 12, 1, "clip_skip")
        self.clip_skip.setToolTip("A1111's Clip skip: 1 = the text encoder's last layer, "
                                  "2 = the one before (anime models), …")

        self.init_image = ImageSlot("init image")
        self.init_image.setObjectName("init_image")
        self.strength = QDoubleSpinBox()
        self.strength.setObjectName("strength")
        self.strength.setRange(0.01, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setToolTip("How much of the init image is repainted (1 = all)")
        self.mask_slot = ImageSlot("mask")  # not `mask`: that would hide QWidget.mask()
        self.mask_slot.setObjectName("mask")
        self.mask_slot.setToolTip("White = repaint, black = keep; needs an init image")
        self.canvas = CanvasOptions(self.init_image, self.mask_slot)  # painter, inpaint, hires

        self.device = QComboBox()
        self.device.setObjectName("device")
        self.device.addItems(["auto", "cpu"])  # + cuda/mps once the engine says they exist
        # Set in File ▸ Settings… (not shown here), carried into every request.
        self.memory = "auto"  # the memory ladder's first rung (defaults.MEMORY_MODES)
        self.compile = False  # torch.compile of the UNet and VAE decoder
        self.dtype = QComboBox()
        self.dtype.setObjectName("dtype")
        self.dtype.setToolTip("Precision of the weights: fp16 halves GPU memory (GPU only)")
        self.dtype.addItems(list(d.DTYPES))
        self._build_layout()

    def _spin(self, lo: int, hi: int, value: int, name: str, step: int = 1) -> QSpinBox:
        box = QSpinBox()
        box.setObjectName(name)
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setValue(value)
        return box

    def _build_layout(self) -> None:
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_random)
        seed_row.addWidget(self.dice)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_)
        size_row.addWidget(self.swap)
        size_row.addWidget(self.height_)
        size_row.addWidget(self.size_preset)
        dev_row = QHBoxLayout()
        dev_row.addWidget(self.device)
        dev_row.addWidget(QLabel("Precision"))
        dev_row.addWidget(self.dtype)

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Scheduler", self.scheduler)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Seed", self._wrap(seed_row))
        form.addRow("Size", self._wrap(size_row))
        form.addRow("Batch", self.batch)
        form.addRow("Clip skip", self.clip_skip)
        form.addRow("Device", self._wrap(dev_row))

        img = QGroupBox("Image to image / inpaint")
        img_form = QFormLayout(img)
        img_form.addRow("Init", self.init_image)
        img_form.addRow("Strength", self.strength)
        img_form.addRow("Mask", self.mask_slot)
        img_form.addRow("", self.canvas.buttons)
        img_form.addRow("Inpaint", self.canvas.inpaint)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(img)
        layout.addWidget(self.canvas.hires)
        layout.addStretch(1)

    @staticmethod
    def _wrap(row: QHBoxLayout) -> QWidget:
        w = QWidget()
        row.setContentsMargins(0, 0, 0, 0)
        w.setLayout(row)
        return w

    def set_devices(self, names: list[str]) -> None:
        """Offer only the devices this machine has (known once the engine has imported torch)."""
        wanted = getattr(self, "_wanted_device", self.device.currentText())
        self.device.clear()
        self.device.addItems(["auto", *names])
        self.device.setCurrentText(wanted if wanted in names else "auto")

    # --- scheduler names arrive once the engine is imported --------------------------------
    def set_scheduler_names(self, names: list[str]) -> None:
        current = self.scheduler.currentText()
        self.scheduler.clear()
        self.scheduler.addItems(names)
        if current and current not in names:
            current = names[0] if names else current
        self.scheduler.setCurrentText(current)

    def _set_scheduler(self, name: str) -> None:
        if self.scheduler.findText(name) < 0:
            self.scheduler.addItem(name)
        self.scheduler.setCurrentText(name)

    # --- seed -------------------------------------------------------------------------------
    def _roll(self) -> None:
        self.seed_random.setChecked(False)
        self.seed.setText(str(random_seed()))

    def next_seed(self) -> int:
        """The seed for the next job: a new random one (shown in the field) or the fixed one."""
        if self.seed_random.isChecked():
            self.seed.setText(str(random_seed()))
        return min(int(self.seed.text() or 0), d.MAX_SEED)

    # --- size -------------------------------------------------------------------------------
    def set_native_size(self, size: int) -> None:
        """Offer sizes around the loaded model's native size (0.5x to 2x, and 2:3 / 3:2)."""
        if size > 0:
            self._fill_presets(presets_for(size), size)
        self.width_.setToolTip(f"Multiple of 8; this model was trained at {size}×{size}")
        self.height_.setToolTip(self.width_.toolTip())

    def _fill_presets(self, sizes: list[tuple[int, int]], native: int) -> None:
        self.size_preset.clear()
        self.size_preset.addItem("Presets…")
        for w, h in sizes:
            label = f"{w}×{h}" + (" (native)" if (w, h) == (native, native) else "")
            self.size_preset.addItem(label, (w, h))

    def _apply_preset(self, index: int) -> None:
        data = self.size_preset.itemData(index)
        if data:
            self.width_.setValue(data[0])
            self.height_.setValue(data[1])
        self.size_preset.setCurrentIndex(0)

    def _swap(self) -> None:
        w, h = self.width_.value(), self.height_.value()
        self.width_.setValue(h)
        self.height_.setValue(w)

    # --- whole parameter set ----------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {
            "model": self.model.current_model(),
            "scheduler": self.scheduler.currentText(),
            "steps": self.steps.value(),
            "guidance": round(self.guidance.value(), 2),
            "seed": min(int(self.seed.text() or 0), d.MAX_SEED),
            "seed_random": self.seed_random.isChecked(),
            "width": _round8(self.width_.value()),
            "height": _round8(self.height_.value()),
            "batch_size": self.batch.value(),
            "clip_skip": self.clip_skip.value(),
            "init_image": self.init_image.path(),
            "strength": round(self.strength.value(), 2),
            "mask": self.mask_slot.path(),
            "device": self.device.currentText(),
            "dtype": self.dtype.currentText(),
            "memory": self.memory,
            "compile": self.compile,
            **self.canvas.params(),
        }

    def request(self, prompt: str, negative_prompt: str = "") -> GenerationRequest:
        """The request these fields describe, with the next seed (not validated yet)."""
        p = self.params()
        del p["seed_random"]
        p["seed"] = self.next_seed()
        folder = self.model.models_folder()  # where <lora:NAME> and embeddings are found
        p["lora_dir"] = str(kind_folders(folder, "loras")[0])
        p["embeddings_dir"] = str(kind_folders(folder, "embeddings")[0])
        return GenerationRequest(prompt=prompt, negative_prompt=negative_prompt, **p)

    def set_params(self, p: dict[str, Any]) -> None:
        """Fill the fields from `p` (missing keys are left alone)."""
        if "model" in p and p["model"]:
            self.model.set_current_model(str(p["model"]))
        if p.get("scheduler"):
            self._set_scheduler(str(p["scheduler"]))
        if "steps" in p:
            self.steps.setValue(int(p["steps"]))
        if "guidance" in p:
            self.guidance.setValue(float(p["guidance"]))
        if "seed" in p:
            self.seed.setText(str(int(p["seed"])))
        if "seed_random" in p:
            self.seed_random.setChecked(bool(p["seed_random"]))
        if "width" in p:
            self.width_.setValue(int(p["width"]))
        if "height" in p:
            self.height_.setValue(int(p["height"]))
        if "batch_size" in p:
            self.batch.setValue(int(p["batch_size"]))
        if "clip_skip" in p:
            self.clip_skip.setValue(int(p["clip_skip"]))
        if "init_image" in p:
            self.init_image.set_path(p["init_image"] if _exists(p["init_image"]) else None)
        if "strength" in p:
            self.strength.setValue(float(p["strength"]))
        if "mask" in p:
            self.mask_slot.set_path(p["mask"] if _exists(p["mask"]) else None)
        if p.get("device"):
            self._wanted_device = str(p["device"])  # kept until set_devices knows it exists
            self.device.setCurrentText(self._wanted_device)
        if p.get("dtype"):
            self.dtype.setCurrentText(str(p["dtype"]))
        if p.get("memory") in d.MEMORY_MODES:
            self.memory = str(p["memory"])
        if isinstance(p.get("compile"), bool):
            self.compile = bool(p["compile"])
        self.canvas.set_params(p)


def _exists(path: object) -> bool:
    return isinstance(path, str) and bool(path) and Path(path).is_file()
