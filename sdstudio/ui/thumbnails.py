"""Thumbnails made off the UI thread and cached on disk by the core."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from sdstudio.core.errors import UserError
from sdstudio.core.gallery.thumbnails import THUMB_SIDE, ensure_thumbnail, thumbnails_dir
from sdstudio.ui.tasks import PoolTasks


class ThumbnailLoader(QObject):
    """`request(path)` -> later `ready(path, QImage)` (or `failed(path)`), in the GUI thread."""

    ready = Signal(str, QImage)
    failed = Signal(str)

    def __init__(self, side: int = THUMB_SIDE, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.side = side
        self.root = thumbnails_dir()  # read here, in the GUI thread, once
        self._tasks = PoolTasks(threads, self)
        self._pending: set[str] = set()

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self._tasks.start(lambda: self._load(path), lambda image: self._on_done(path, image),
                          lambda _why: self._on_failed(path))

    def _load(self, path: str) -> QImage:
        """Pool thread. A damaged, vanished or huge file: no thumbnail (a placeholder shows)."""
        try:
            image = QImage(str(ensure_thumbnail(path, self.side, self.root)))
        except Exception as exc:  # noqa: BLE001 - any file may be hostile
            raise UserError(str(exc)) from exc
        if image.isNull():
            raise UserError(f"{path} has no thumbnail.")
        return image

    def cancel_pending(self) -> None:
        """Drop queued work (e.g. the list changed); running tasks still report."""
        self._tasks.clear()
        self._pending.clear()

    def shutdown(self) -> None:
        self._tasks.clear()
        self._tasks.wait(5000)

    def _on_done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.ready.emit(path, image)

    def _on_failed(self, path: str) -> None:
        self._pending.discard(path)
        self.failed.emit(path)
