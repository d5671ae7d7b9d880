"""A slot for one image file (img2img init image, inpaint mask): thumbnail, Open…, Clear, drop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImageReader, QPixmap, QResizeEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def dropped_image_path(event: QDragEnterEvent | QDropEvent) -> str | None:
    for url in event.mimeData().urls():
        if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES):
            return url.toLocalFile()
    return None


class AcceptsImageDrops:
    """Mixin for a QWidget (list it first: `class X(AcceptsImageDrops, QWidget)`): a dropped
    image file is accepted and its path handed to `image_dropped`."""

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            self.image_dropped(path)

    def image_dropped(self, path: str) -> None:
        raise NotImplementedError


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, with "…" (full text: tooltip)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = text
        self.setMinimumWidth(24)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        elided = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle,
                                               max(self.width(), 24))
        super().setText(elided)


class ImageSlot(AcceptsImageDrops, QWidget):
    changed = Signal(object)  # str path or None

    THUMB = QSize(40, 40)

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._path: str | None = None
        self.thumb = QLabel()
        self.thumb.setFixedSize(self.THUMB)
        self.thumb.setFrameShape(QLabel.Shape.StyledPanel)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = ElidedLabel()
        self.open_button = QPushButton("Open…")
        self.clear_button = QPushButton("Clear")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.thumb)
        layout.addWidget(self.name, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.clear_button)
        self.open_button.clicked.connect(self._browse)
        self.clear_button.clicked.connect(lambda: self.set_path(None))
        self.setAcceptDrops(True)
        self.set_path(None)

    def path(self) -> str | None:
        return self._path

    def set_path(self, path: str | None) -> None:
        path = path or None
        if path is not None and not QImageReader(path).canRead():
            self.name.setText(f"Cannot read {Path(path).name}")
            self.name.setToolTip(path)
            return
        changed = path != self._path
        self._path = path
        self.clear_button.setEnabled(path is not None)
        if path is None:
            self.thumb.clear()
            self.name.setText("none")
            self.name.setToolTip(f"Open or drop a {self._title} here")
        else:
            pix = QPixmap(path).scaled(self.THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self.thumb.setPixmap(pix)
            self.name.setText(Path(path).name)
            self.name.setToolTip(path)
        if changed:
            self.changed.emit(path)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Open {self._title}", "", IMAGE_FILTER)
        if path:
            self.set_path(path)

    def image_dropped(self, path: str) -> None:
        self.set_path(path)
