"""The models folder's LoRAs: name, family and preview; a weight and "Add to prompt", which puts
`<lora:NAME:WEIGHT>` into the prompt box (or changes the weight of the tag already there)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.adapters.info import lora_family, preview_image
from sdstudio.core.conditioning.lora_tags import set_lora_tag
from sdstudio.core.models import discovery
from sdstudio.ui.model_picker import ModelPicker
from sdstudio.ui.tasks import PoolTasks

ICON = 64
HAS_PREVIEW = Qt.ItemDataRole.UserRole + 1
STEPS_PER_UNIT = 20  # the slider moves by 0.05


class LoraPanel(QWidget):
    def __init__(self, prompt: QPlainTextEdit, picker: ModelPicker,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt, self.picker = prompt, picker
        self._scanned_folder: Path | None = None
        self._files: list[Path] = []
        self._tasks = PoolTasks(1, self)  # reads the files' headers for their family
        self.list = QListWidget()
        self.list.setObjectName("lora_list")
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setMinimumHeight(ICON // 2)  # the gallery dock it sits in stays as small as before
        self.list.itemDoubleClicked.connect(lambda _item: self.add_to_prompt())
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("lora_weight_slider")
        self.slider.setRange(-1 * STEPS_PER_UNIT, 2 * STEPS_PER_UNIT)
        self.weight = QDoubleSpinBox()
        self.weight.setObjectName("lora_weight")
        self.weight.setRange(-1.0, 2.0)
        self.weight.setSingleStep(1 / STEPS_PER_UNIT)
        self.weight.setDecimals(2)
        self.slider.valueChanged.connect(lambda v: self.weight.setValue(v / STEPS_PER_UNIT))
        self.weight.valueChanged.connect(
            lambda w: self.slider.setValue(round(w * STEPS_PER_UNIT)))
        self.weight.setValue(1.0)
        self.add_button = QPushButton("Add to prompt")
        self.add_button.setObjectName("lora_add")
        self.add_button.setToolTip("Insert <lora:NAME:WEIGHT> into the prompt, or set the weight "
                                   "of the tag already there (double-click does the same)")
        self.add_button.clicked.connect(self.add_to_prompt)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.rescan(force=True))

        row = QHBoxLayout()
        row.addWidget(QLabel("Weight"))
        row.addWidget(self.slider, 1)
        row.addWidget(self.weight)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button, 2)
        buttons.addWidget(refresh, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addLayout(buttons)
        picker.folderChosen.connect(lambda _f: self.rescan(force=True))
        if hasattr(prompt, "set_lora_names"):  # the prompt box completes `<lora:` with these
            prompt.set_lora_names(self.names)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        self.rescan()
        super().showEvent(event)

    def names(self) -> list[str]:
        self.rescan()
        return [p.stem for p in self._files]

    def rescan(self, force: bool = False) -> None:
        """List the models folder's LoRAs (again when the folder changed, or when forced)."""
        folder = self.picker.models_folder()
        if not force and folder == self._scanned_folder:
            return
        self._scanned_folder = folder
        self._files = [p for p in discovery.scan(folder).loras
                       if p.suffix.lower() == ".safetensors"]  # only those are applied
        self.list.clear()
        for path in self._files:
            item = QListWidgetItem(path.stem)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(str(path))
            preview = preview_image(path)
            picture = QPixmap(str(preview)) if preview is not None else QPixmap()
            if picture.isNull():  # none (or unreadable): a blank square keeps the names aligned
                picture = QPixmap(ICON, ICON)
                picture.fill(Qt.GlobalColor.transparent)
            else:
                item.setData(HAS_PREVIEW, True)
            item.setIcon(QIcon(picture.scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation)))
            self.list.addItem(item)
        if not self._files:  # a hint in the list itself: no extra row in a small dock
            where = discovery.kind_folders(folder, "loras")[0]
            hint = QListWidgetItem(f"No LoRAs yet: put .safetensors files in\n{where}")
            hint.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(hint)
        files = list(self._files)
        self._tasks.start(lambda: [lora_family(p) for p in files],
                          lambda families: self._show_families(files, families))

    def _show_families(self, files: list[Path], families: list[str]) -> None:
        if files != self._files:
            return  # rescanned meanwhile
        for row, family in enumerate(families):
            item = self.list.item(row)
            if item is not None and family:
                item.setText(f"{files[row].stem}  ·  {family}")

    def add_to_prompt(self) -> None:
        item = self.list.currentItem()
        if item is None or not item.data(Qt.ItemDataRole.UserRole):
            return
        name = Path(item.data(Qt.ItemDataRole.UserRole)).stem
        text = set_lora_tag(self.prompt.toPlainText(), name, self.weight.value())
        self.prompt.setPlainText(text)
        self.prompt.moveCursor(self.prompt.textCursor().MoveOperation.End)
        self.prompt.setFocus()
