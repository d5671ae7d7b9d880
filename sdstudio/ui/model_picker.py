"""Model combo box: the demo model, models found in the models folder, opened models, Open…."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from sdstudio.core.defaults import DEMO_MODEL as DEMO

_OPEN = "__open__"
_FOLDER = "__folder__"
MODEL_FILTER = "Stable Diffusion models (model_index.json *.safetensors);;All files (*)"


def scan_models(folder: Path) -> list[str]:
    """Diffusers folders (with model_index.json) and .safetensors files directly in `folder`."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if entry.is_dir() and (entry / "model_index.json").is_file():
            found.append(str(entry))
        elif entry.is_file() and entry.suffix.lower() == ".safetensors":
            found.append(str(entry))
    return found


def model_label(model: str) -> str:
    if model == DEMO:
        return "Demo model (shipped)"
    return Path(model).name or model


class ModelPicker(QComboBox):
    """Emits `modelChosen(model_id)` when the user picks a model; `folderChosen(path)` when the
    models folder changes. `current_model()` is what goes into the request."""

    modelChosen = Signal(str)
    folderChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model")
        self._folder = Path()
        self._opened: list[str] = []
        self._current = DEMO
        self.setToolTip("The demo model, models in your models folder, or Open model… for a "
                        "diffusers folder (pick its model_index.json) or a .safetensors file")
        self.activated.connect(self._on_activated)

    def set_models_folder(self, folder: Path) -> None:
        self._folder = folder
        self._rebuild()

    def models_folder(self) -> Path:
        return self._folder

    def opened(self) -> list[str]:
        return list(self._opened)

    def set_opened(self, models: list[str]) -> None:
        self._opened = list(models)
        self._rebuild()

    def current_model(self) -> str:
        return self._current

    def set_current_model(self, model: str) -> None:
        """Select `model`, adding it to the opened models when it is not listed."""
        if model != DEMO and self.findData(model) < 0:
            self._opened.append(model)
        self._current = model
        self._rebuild()

    def _rebuild(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem(model_label(DEMO), DEMO)
        listed = {DEMO}
        for model in scan_models(self._folder) + self._opened:
            if model not in listed:
                listed.add(model)
                self.addItem(model_label(model), model)
                self.setItemData(self.count() - 1, model, Qt.ItemDataRole.ToolTipRole)
        self.insertSeparator(self.count())
        self.addItem("Open model…", _OPEN)
        self.addItem("Set models folder…", _FOLDER)
        self.setCurrentIndex(max(0, self.findData(self._current)))
        self.blockSignals(False)

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == _OPEN:
            self._open_model()
        elif data == _FOLDER:
            self._choose_folder()
        elif isinstance(data, str) and data != self._current:
            self._current = data
            self.modelChosen.emit(data)
        self.setCurrentIndex(max(0, self.findData(self._current)))

    def _open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", str(self._folder), MODEL_FILTER)
        if not path:
            return
        p = Path(path)
        model = str(p.parent) if p.name == "model_index.json" else str(p)
        self.set_current_model(model)
        self.modelChosen.emit(model)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", str(self._folder))
        if folder:
            self.set_models_folder(Path(folder))
            self.folderChosen.emit(folder)
