"""The gallery's list model and delegate: rows from the index, thumbnails fetched on demand.

Only rows the view paints ask for a thumbnail (`data(DecorationRole)`), so 10,000 images cost
10,000 small records and a few dozen thumbnails.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from sdstudio.core.gallery import GalleryImage
from sdstudio.core.thumbnails import THUMB_SIDE
from sdstudio.ui.thumbnails import ThumbnailLoader

IMAGE_ROLE = Qt.ItemDataRole.UserRole  # the row's GalleryImage
CELL = QSize(THUMB_SIDE + 8, THUMB_SIDE + 8)
_Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    thumbnailShown = Signal(int)  # row whose thumbnail just arrived

    def __init__(self, loader: ThumbnailLoader | None = None, cache_size: int = 800,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.loader = loader or ThumbnailLoader(parent=self)
        self.loader.ready.connect(self._on_ready)
        self.loader.failed.connect(self._on_failed)
        self._rows: list[GalleryImage] = []
        self._row_of: dict[str, int] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._broken: set[str] = set()
        self._cache_size = cache_size

    # --- contents -------------------------------------------------------------------------------
    def set_rows(self, rows: list[GalleryImage]) -> None:
        self.beginResetModel()
        self.loader.cancel_pending()
        self._rows = rows
        self._reindex()
        self.endResetModel()

    def insert_first(self, row: GalleryImage) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, row)
        self._reindex()
        self.endInsertRows()

    def replace(self, row: GalleryImage) -> None:
        i = self._row_of.get(str(row.path))
        if i is not None:
            self._rows[i] = row
            idx = self.index(i)
            self.dataChanged.emit(idx, idx)

    def remove(self, path: str) -> None:
        i = self._row_of.get(path)
        if i is None:
            return
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        self._reindex()
        self.endRemoveRows()

    def image_at(self, row: int) -> GalleryImage | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, path: str) -> int | None:
        return self._row_of.get(path)

    def _reindex(self) -> None:
        self._row_of = {str(r.path): i for i, r in enumerate(self._rows)}

    # --- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 (Qt API)
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        img = self._rows[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap(str(img.path))
        if role == Qt.ItemDataRole.ToolTipRole:
            seed = f"seed {img.seed}" if img.seed is not None else "no parameters"
            return f"{img.prompt[:300]}\n{seed} · {img.path.name}"
        if role == IMAGE_ROLE:
            return img
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return img.prompt or img.path.name
        return None

    def pixmap(self, path: str) -> QPixmap | None:
        """The cached thumbnail, or None after asking the loader for it."""
        pm = self._pixmaps.get(path)
        if pm is not None:
            self._pixmaps.move_to_end(path)
            return pm
        if path not in self._broken:
            self.loader.request(path)
        return None

    def _on_ready(self, path: str, image: QImage) -> None:
        self._pixmaps[path] = QPixmap.fromImage(image)  # pixmaps only in the GUI thread
        while len(self._pixmaps) > self._cache_size:
            self._pixmaps.popitem(last=False)
        self._changed(path)

    def _on_failed(self, path: str) -> None:
        self._broken.add(path)
        self._changed(path)

    def _changed(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
            self.thumbnailShown.emit(row)

    def is_broken(self, path: str) -> bool:
        return path in self._broken


class ThumbnailDelegate(QStyledItemDelegate):
    """A square cell: the thumbnail centred, a star on favourites, a frame when selected."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        rect: QRect = option.rect.adjusted(2, 2, -2, -2)
        pal = option.palette
        painter.save()
        painter.fillRect(rect, pal.base().color().darker(115))
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        img: GalleryImage | None = index.data(IMAGE_ROLE)
        if isinstance(pm, QPixmap) and not pm.isNull():
            size = pm.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(rect.center())
            painter.drawPixmap(target, pm)
        else:
            model = index.model()
            broken = img is not None and hasattr(model, "is_broken") and model.is_broken(
                str(img.path))
            painter.setPen(pal.mid().color())
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "damaged" if broken else "…")
        if img is not None and img.favourite:
            painter.setPen(QColor("#f5c518"))
            f = painter.font()
            f.setPointSizeF(f.pointSizeF() * 1.4)
            painter.setFont(f)
            painter.drawText(rect.adjusted(4, 2, -4, -2),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, "★")
        if option.state & QStyle.StateFlag.State_Selected:
            pen = painter.pen()
            pen.setColor(pal.highlight().color())
            pen.setWidth(3)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        painter.restore()
