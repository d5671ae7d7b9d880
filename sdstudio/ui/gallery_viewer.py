"""One gallery image full size, its parameters beside it, and the actions on it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.gallery import GalleryImage
from sdstudio.core.png import MetadataError, Parameters, read_png
from sdstudio.ui.imaging import ImageView


def parameters_text(p: Parameters | None) -> str:
    if p is None:
        return "This image has no generation parameters."
    text = p.prompt
    if p.negative_prompt:
        text += f"\n\nNegative prompt: {p.negative_prompt}"
    text += "\n\n" + "\n".join(f"{k}: {v}" for k, v in p.settings.items())
    if p.source != "sdstudio":
        text += f"\n\n(read from {p.source} metadata)"
    return text


class GalleryViewer(QDialog):
    """Non-modal. Its buttons emit `action(name, path)`: the panel carries them out."""

    action = Signal(str, str)  # the panel's do_action names: reuse | img2img | inpaint | ...

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_viewer")
        self.setWindowTitle("Image")
        self.resize(1000, 640)
        self.image: GalleryImage | None = None
        self.view = ImageView("")
        self.info = QPlainTextEdit()
        self.info.setReadOnly(True)
        self.info.setObjectName("gallery_viewer_parameters")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        self.error.hide()
        self.buttons: dict[str, QPushButton] = {}
        side = QWidget()
        col = QVBoxLayout(side)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.error)
        col.addWidget(self.info, 1)
        for name, label in (("copy_prompt", "Copy prompt"), ("copy_seed", "Copy seed"),
                            ("reuse", "Reuse parameters"), ("img2img", "Send to img2img"),
                            ("inpaint", "Send to inpaint"), ("upscale", "Upscale 2×"),
                            ("favourite", "☆ Favourite"), ("folder", "Open containing folder"),
                            ("delete", "Delete…")):
            b = QPushButton(label)
            b.setObjectName(f"viewer_{name}")
            b.clicked.connect(lambda _=False, n=name: self._emit(n))
            self.buttons[name] = b
        grid = QVBoxLayout()
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for n in ("copy_prompt", "copy_seed", "favourite"):
            row1.addWidget(self.buttons[n])
        for n in ("reuse", "img2img", "inpaint", "upscale"):
            row2.addWidget(self.buttons[n])
        grid.addLayout(row1)
        grid.addLayout(row2)
        row3 = QHBoxLayout()
        row3.addWidget(self.buttons["folder"])
        row3.addWidget(self.buttons["delete"])
        grid.addLayout(row3)
        col.addLayout(grid)
        split = QSplitter()
        split.addWidget(self.view)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

    def show_image(self, image: GalleryImage) -> None:
        self.image = image
        self.setWindowTitle(image.path.name)
        reader = QImageReader(str(image.path))
        qimg: QImage = reader.read()
        problems = []
        if qimg.isNull():
            problems.append(f"{image.path.name} could not be opened: {reader.errorString()}.")
        self.view.set_image(qimg if not qimg.isNull() else None)
        self.view.set_placeholder("The image file is damaged or missing.")
        try:
            params = read_png(image.path)
        except MetadataError as exc:
            params = None
            problems.append(str(exc))
        self.info.setPlainText(parameters_text(params))
        self.error.setText(" ".join(problems))
        self.error.setVisible(bool(problems))
        has_params = params is not None
        self.buttons["reuse"].setEnabled(has_params)
        self.buttons["copy_prompt"].setEnabled(has_params)
        self.buttons["copy_seed"].setEnabled(image.seed is not None)
        self.set_favourite(image.favourite)

    def set_favourite(self, on: bool) -> None:
        self.buttons["favourite"].setText("★ Favourite" if on else "☆ Favourite")

    def _emit(self, name: str) -> None:
        if self.image is not None:
            self.action.emit(name, str(self.image.path))
