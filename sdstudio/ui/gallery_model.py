"""The gallery's list model and delegate: rows from the index, thumbnails fetched on demand.

The model holds only row ids; records are read from the index a page at a time, and only rows
the view paints ask for a thumbnail (`data(DecorationRole)`): 10,000 images cost 10,000 ints, a
few pages of records and a few dozen thumbnails.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
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
from sdstudio.core.gallery.thumbnails import THUMB_SIDE
from sdstudio.ui.thumbnails import ThumbnailLoader

IMAGE_ROLE = Qt.ItemDataRole.UserRole  # the row's GalleryImage
CELL = QSize(120, 120)  # default cell; the panel zooms it with Ctrl+wheel
MIN_CELL, MAX_CELL = 64, THUMB_SIDE + 8
_Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    """Rows are index ids; their records are fetched a page at a time when first needed."""

    thumbnailShown = Signal(int)  # row whose thumbnail just arrived
    PAGE = 200

    def __init__(self, loader: ThumbnailLoader | None = None, cache_size: int = 800,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.loader = loader or ThumbnailLoader(parent=self)
        self.loader.ready.connect(self._on_ready)
        self.loader.failed.connect(self._on_failed)
        self._fetch: Callable[[list[int]], list[GalleryImage]] = lambda ids: []
        self._ids: list[int] = []
        self._row_of_id: dict[int, int] = {}
        self._records: dict[int, GalleryImage] = {}
        self._id_of_file: dict[str, int] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._broken: set[str] = set()
        self._cache_size = cache_size

    # --- contents -------------------------------------------------------------------------------
    def set_ids(self, ids: list[int], fetch: Callable[[list[int]], list[GalleryImage]]) -> None:
        self.beginResetModel()
        self.loader.cancel_pending()
        self._fetch = fetch
        self._ids = ids
        if len(self._records) > 20_000:
            self._records.clear()
            self._id_of_file.clear()
        self._reindex()
        self.endResetModel()

    def set_rows(self, rows: list[GalleryImage]) -> None:
        """Fixed rows (no fetching): for small lists and tests."""
        for r in rows:
            self._remember(r)
        self.set_ids([r.id for r in rows], lambda ids: [])

    def insert_first(self, row: GalleryImage) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._remember(row)
        self._ids.insert(0, row.id)
        self._reindex()
        self.endInsertRows()

    def replace(self, row: GalleryImage) -> None:
        self._remember(row)
        i = self._row_of_id.get(row.id)
        if i is not None:
            idx = self.index(i)
            self.dataChanged.emit(idx, idx)

    def remove(self, image_id: int) -> None:
        i = self._row_of_id.get(image_id)
        if i is None:
            return
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._ids[i]
        self._reindex()
        self.endRemoveRows()

    def image_at(self, row: int) -> GalleryImage | None:
        if not 0 <= row < len(self._ids):
            return None
        rec = self._records.get(self._ids[row])
        if rec is None:
            start = row - row % self.PAGE
            for r in self._fetch(self._ids[start:start + self.PAGE]):
                self._remember(r)
            rec = self._records.get(self._ids[row])
        return rec

    def row_of(self, image_id: int) -> int | None:
        return self._row_of_id.get(image_id)

    def _remember(self, row: GalleryImage) -> None:
        self._records[row.id] = row
        self._id_of_file[row.file] = row.id

    def _reindex(self) -> None:
        self._row_of_id = {image_id: i for i, image_id in enumerate(self._ids)}

    # --- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 (Qt API)
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        img = self.image_at(index.row())
        if img is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.pixmap(img.file)
        if role == Qt.ItemDataRole.ToolTipRole:
            seed = f"seed {img.seed}" if img.seed is not None else "no parameters"
            return f"{img.prompt[:300]}\n{seed} · {img.path.name}"
        if role == IMAGE_ROLE:
            return img
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return img.prompt[:300] or img.path.name
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
        image_id = self._id_of_file.get(path)
        row = self._row_of_id.get(image_id) if image_id is not None else None
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
            self.thumbnailShown.emit(row)

    def is_broken(self, path: str) -> bool:
        return path in self._broken


class ThumbnailDelegate(QStyledItemDelegate):
    """A square cell: the thumbnail centred, a star on favourites, a frame when selected."""

    cell = CELL

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        return self.cell

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
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, pm)
        else:
            model = index.model()
            broken = img is not None and hasattr(model, "is_broken") and model.is_broken(img.file)
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
