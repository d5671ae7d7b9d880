"""PIL -> QImage (safe in any thread) and a widget that draws an image scaled to fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QImage, QPalette, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

if TYPE_CHECKING:
    from PIL import Image


VIEW_BACKGROUND, VIEW_TEXT = "#3b3b3b", "#f0f0f0"


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


class ImageView(QLabel):
    """Shows one image scaled to fit, keeping its aspect ratio; placeholder text when empty.

    Pixmaps are made here, in the GUI thread, from the QImages the worker sends. The image is
    scaled once per new image or resize and painted by QLabel in C++: painting never needs the
    Python GIL, which the worker thread holds much of the time while it generates.
    """

    def __init__(self, placeholder: str = "", smooth: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._placeholder = placeholder
        self._mode = (Qt.TransformationMode.SmoothTransformation if smooth
                      else Qt.TransformationMode.FastTransformation)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(48, 48)
        # Ignored: the pixmap's size must not feed back into the layout (it follows the widget).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        # Light text on dark grey (about 11:1; the palette's Light on Dark was 2.6:1).
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(VIEW_BACKGROUND))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(VIEW_TEXT))
        self.setPalette(palette)
        self.setAutoFillBackground(True)
        self.setText(placeholder)

    def set_image(self, image: QImage | None) -> None:
        self._pixmap = None if image is None or image.isNull() else QPixmap.fromImage(image)
        self._show()

    def set_smooth(self, smooth: bool) -> None:
        """Smooth (bilinear) or pixel-exact (nearest-neighbour) scaling."""
        self._mode = (Qt.TransformationMode.SmoothTransformation if smooth
                      else Qt.TransformationMode.FastTransformation)
        self._show()

    def has_image(self) -> bool:
        return self._pixmap is not None

    def image_pixmap(self) -> QPixmap | None:
        """The full-resolution pixmap (QLabel.pixmap() is the scaled copy on screen)."""
        return self._pixmap

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self._show()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(256, 256)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._show()

    def _show(self) -> None:
        if self._pixmap is None:
            self.setText(self._placeholder)
            return
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                           self._mode))
