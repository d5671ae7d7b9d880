"""Thumbnails of the images generated in this session (the gallery panel replaces this later)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QWidget

THUMB = 112


class SessionGallery(QListWidget):
    """Emits `showRequested(QImage)` on double-click and `reuseRequested(request)` from the menu."""

    showRequested = Signal(QImage)
    reuseRequested = Signal(object)
    imagePicked = Signal(object)  # an image added with a key (job id, index) was picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("session_gallery")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setSpacing(4)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemDoubleClicked.connect(self._show)
        self.itemClicked.connect(self._show)

    def add_image(self, image: QImage, request: Any, seed: int,
                  notices: list[str] | None = None, key: object = None) -> None:
        thumb = QPixmap.fromImage(image).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        item = QListWidgetItem(QIcon(thumb), f"seed {seed}")
        prompt = getattr(request, "prompt", "")
        notes = "".join(f"\n⚠ {n}" for n in notices or [])
        item.setToolTip(f"{prompt}\nseed {seed}{notes}")
        item.setData(_IMAGE, image)
        item.setData(_REQUEST, request)
        item.setData(_KEY, key)
        self.insertItem(0, item)

    def _show(self, item: QListWidgetItem) -> None:
        key = item.data(_KEY)
        if key is not None:
            self.imagePicked.emit(key)
        else:
            self.showRequested.emit(item.data(_IMAGE))

    def _menu(self, pos: Any) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        menu.addAction("Show", lambda: self._show(item))
        menu.addAction("Reuse parameters", lambda: self.reuseRequested.emit(item.data(_REQUEST)))
        menu.exec(self.mapToGlobal(pos))


_IMAGE = Qt.ItemDataRole.UserRole
_REQUEST = Qt.ItemDataRole.UserRole + 1
_KEY = Qt.ItemDataRole.UserRole + 2
