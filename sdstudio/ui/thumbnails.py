"""Thumbnails made off the UI thread (QThreadPool) and cached on disk by the core."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from sdstudio.core.thumbnails import THUMB_SIDE, ensure_thumbnail, thumbnails_dir


class _Relay(QObject):
    """Carries results from pool threads to the GUI thread (queued connection)."""

    done = Signal(str, QImage)
    failed = Signal(str)


class _Task(QRunnable):
    def __init__(self, path: str, side: int, root: Path, relay: _Relay) -> None:
        super().__init__()
        self.path, self.side, self.root, self.relay = path, side, root, relay

    def run(self) -> None:
        try:
            image = QImage(str(ensure_thumbnail(self.path, self.side, self.root)))
        except Exception:  # a damaged or vanished file: show a placeholder, never crash
            image = QImage()
        if image.isNull():
            self.relay.failed.emit(self.path)
        else:
            self.relay.done.emit(self.path, image)


class ThumbnailLoader(QObject):
    """`request(path)` -> later `ready(path, QImage)` (or `failed(path)`), in the GUI thread."""

    ready = Signal(str, QImage)
    failed = Signal(str)

    def __init__(self, side: int = THUMB_SIDE, threads: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.side = side
        self.root = thumbnails_dir()  # read here, in the GUI thread, once
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._pending: set[str] = set()
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self._pool.start(_Task(path, self.side, self.root, self._relay))

    def cancel_pending(self) -> None:
        """Drop queued work (e.g. the list changed); running tasks still report."""
        self._pool.clear()
        self._pending.clear()

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone(5000)

    def _on_done(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.ready.emit(path, image)

    def _on_failed(self, path: str) -> None:
        self._pending.discard(path)
        self.failed.emit(path)
