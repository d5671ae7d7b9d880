"""File ▸ Settings…: the persisted settings a user looks for, in one dialog over `Settings`.

Apply and OK validate first (a bad value is one sentence in the dialog and nothing is written),
then write the settings and emit `applied(values)` for the window to take them live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core import defaults as d
from sdstudio.core.errors import UserError
from sdstudio.core.paths import default_models_dir
from sdstudio.ui.settings import Settings

ENGINE_KEYS = ("device", "dtype", "memory", "compile")  # generation params this dialog sets
PREVIEW_SOURCES = ("Predicted image (x₀)", "Noisy latent (x_t)")  # the preview's combo order


def check_values(values: dict[str, Any]) -> None:
    """Raise a UserError (one sentence) for the first value that cannot be used."""
    models = Path(values["models_folder"]).expanduser()
    made_on_apply = models == default_models_dir() and not models.exists()  # a first start
    if not made_on_apply and (not str(values["models_folder"]).strip() or not models.is_dir()):
        raise UserError(f"The models folder {models} does not exist: choose an existing folder.")
    gallery = Path(values["gallery_folder"]).expanduser()
    if not str(values["gallery_folder"]).strip():
        raise UserError("Choose a gallery folder.")
    if gallery.exists() and not gallery.is_dir():
        raise UserError(f"The gallery folder {gallery} is a file: choose a folder.")
    if not gallery.exists() and not gallery.parent.is_dir():
        raise UserError(f"The gallery folder {gallery} cannot be made: its parent folder "
                        "does not exist.")
    if values["device"] not in d.DEVICES or values["dtype"] not in d.DTYPES:
        raise UserError("Choose a device and a precision from the lists.")
    if values["memory"] not in d.MEMORY_MODES:
        raise UserError("Choose a GPU memory mode from the list.")


class SettingsDialog(QDialog):
    applied = Signal(dict)  # the values written: models_folder, gallery_folder, device, ...

    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 devices: list[str] | None = None) -> None:
        """`devices`: the device names to offer (the window's: those this machine has, once
        the engine knows); None offers every name sdstudio knows."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.settings = settings
        params = settings.params()
        self.models_folder = self._folder_row(str(settings.models_folder()), "Models folder")
        self.gallery_folder = self._folder_row(str(settings.gallery_folder()), "Gallery folder")
        self.device = QComboBox()
        offered = [n for n in d.DEVICES if devices is None or n == "auto" or n in devices]
        self.device.addItems(offered)
        self.device.setCurrentText(params["device"] if params["device"] in offered else "auto")
        self.device.setToolTip("Where models run; auto: the GPU when there is one")
        self.dtype = QComboBox()
        self.dtype.addItems(list(d.DTYPES))
        self.dtype.setCurrentText(params["dtype"])
        self.dtype.setToolTip("auto: fp16 on a GPU (bf16 for a model stored in bf16), "
                              "fp32 on the CPU")
        self.memory = QComboBox()
        self.memory.setObjectName("memory")
        for mode in d.MEMORY_MODES:
            self.memory.addItem(d.MEMORY_LABELS[mode], mode)
        self.memory.setCurrentIndex(max(0, self.memory.findData(params["memory"])))
        self.memory.setToolTip("Where the memory ladder starts. On out of memory a job is "
                               "retried one rung down, and the status line says what changed.")
        self.compile = QCheckBox("Compile the UNet and VAE (torch.compile): faster steps, "
                                 "a slow first run at each size")
        self.compile.setObjectName("compile")
        self.compile.setChecked(params["compile"] is True)
        self.preview_source = QComboBox()
        self.preview_source.addItems(list(PREVIEW_SOURCES))
        self.preview_source.setCurrentIndex(settings.preview_source())
        self.smooth = QCheckBox("Smooth scaling of small images (off: pixel-exact)")
        self.smooth.setChecked(settings.preview_smooth())
        self.error = QLabel("")
        self.error.setObjectName("settings_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #a40000;")  # dark red: 7:1 on a light window
        self.error.setVisible(False)

        form = QFormLayout()
        form.addRow("Models folder", _row_of(self.models_folder))
        form.addRow("Gallery folder", _row_of(self.gallery_folder))
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        form.addRow("GPU memory", self.memory)
        form.addRow("", self.compile)
        form.addRow("Preview shows", self.preview_source)
        form.addRow("", self.smooth)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _folder_row(self, value: str, title: str) -> QLineEdit:
        row = QWidget(self)
        edit = QLineEdit(value, row)
        browse = QPushButton("Browse…", row)

        def choose() -> None:
            folder = QFileDialog.getExistingDirectory(self, title, edit.text())
            if folder:
                edit.setText(folder)

        browse.clicked.connect(choose)
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(edit, 1)
        lay.addWidget(browse)
        return edit

    def values(self) -> dict[str, Any]:
        return {"models_folder": self.models_folder.text().strip(),
                "gallery_folder": self.gallery_folder.text().strip(),
                "device": self.device.currentText(), "dtype": self.dtype.currentText(),
                "memory": self.memory.currentData(), "compile": self.compile.isChecked(),
                "preview_source": self.preview_source.currentIndex(),
                "preview_smooth": self.smooth.isChecked()}

    def apply(self) -> bool:
        """Validate, write and announce the values; False (and the reason shown) if refused."""
        values = self.values()
        try:
            check_values(values)
        except UserError as err:
            self.error.setText(str(err))
            self.error.setVisible(True)
            return False
        self.error.setVisible(False)
        s = self.settings
        if Path(values["models_folder"]).expanduser() == default_models_dir():
            default_models_dir().mkdir(parents=True, exist_ok=True)  # a first start has none
        s.set_models_folder(values["models_folder"])
        s.set_gallery_folder(values["gallery_folder"])
        s.set_params({**s.params(), **{k: values[k] for k in ENGINE_KEYS}})
        s.set_preview_source(values["preview_source"])
        s.set_preview_smooth(values["preview_smooth"])
        s.sync()
        self.applied.emit(values)
        return True

    def accept(self) -> None:
        if self.apply():
            super().accept()


def _row_of(edit: QLineEdit) -> QWidget:
    """The row widget `_folder_row` put the line edit (and its Browse button) in."""
    row = edit.parentWidget()
    assert row is not None
    return row
