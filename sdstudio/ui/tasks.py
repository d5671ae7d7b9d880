"""Running work off the UI thread: one helper for every pool (saving, syncing, thumbnails).

`PoolTasks.start(fn, done, failed)` runs `fn()` on a pool thread; `done(result)` or
`failed(sentence)` then runs in the thread that called start (the GUI thread), through a queued
signal. A UserError gives its own sentence; anything else "Unexpected error: ...": a pool thread
never dies silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sdstudio.core.errors import UserError


class _Relay(QObject):
    """Lives in the caller's thread, so its signals are delivered there (queued)."""

    done = Signal(object)
    failed = Signal(str)
    started = False  # set by the pool thread when the task begins


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        self.relay.started = True
        try:
            result = self.fn()
        except UserError as exc:
            self.relay.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - never let a pool thread die silently
            self.relay.failed.emit(f"Unexpected error: {exc}.")
        else:
            self.relay.done.emit(result)


class PoolTasks(QObject):
    """A QThreadPool whose results come back as calls in the owner's thread."""

    def __init__(self, threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._live: set[_Relay] = set()  # keeps each relay alive until its task reports

    def start(self, fn: Callable[[], Any], done: Callable[[Any], None],
              failed: Callable[[str], None] | None = None) -> None:
        relay = _Relay()
        self._live.add(relay)
        relay.done.connect(done)
        if failed is not None:
            relay.failed.connect(failed)
        relay.done.connect(lambda _r: self._live.discard(relay))
        relay.failed.connect(lambda _m: self._live.discard(relay))
        self.pool.start(_Task(fn, relay))

    def clear(self) -> None:
        """Drop tasks not yet started (their callbacks never come)."""
        self.pool.clear()
        self._live = {r for r in self._live if r.started}

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)
