"""PIL -> QImage (safe in any thread) and a widget that draws an image scaled to fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

if TYPE_CHECKING:
    from PIL import Image


def pil_to_qimage(image: Image.Image) -> QImage:
    """Copy a PIL image into a QImage that owns its pixels (RGB, RGBA or L)."""
    if image.mode == "L":
        fmt, channels = QImage.Format.Format_Grayscale8, 1
    elif image.mode == "RGBA":
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        image = image.convert("RGB")
        fmt, channels = QImage.Format.Format_RGB888, 3
    data = image.tobytes()
    w, h = image.size
    return QImage(data, w, h, w * channels, fmt).copy()


class ImageView(QWidget):
    """Shows one image scaled to fit, keeping its aspect ratio; placeholder text when empty.

    Pixmaps are made here, in the GUI thread, from the QImages the worker sends.
    """

    def __init__(self, placeholder: str = "", smooth: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._scaled: QPixmap | None = None  # smooth upscaled copy for the current widget size
        self._placeholder = placeholder
        self._smooth = smooth
        self.setMinimumSize(48, 48)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._pixmap = None if image is None or image.isNull() else QPixmap.fromImage(image)
        self._scaled = None
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(256, 256)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().dark())
        if self._pixmap is None:
            painter.setPen(self.palette().light().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._placeholder)
            return
        size = self._pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(self.rect().center())
        if not self._smooth:
            painter.drawPixmap(target, self._pixmap)
            return
        if self._scaled is None or self._scaled.size() != target.size():
            self._scaled = self._pixmap.scaled(target.size(), Qt.AspectRatioMode.IgnoreAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)
        painter.drawPixmap(target.topLeft(), self._scaled)
