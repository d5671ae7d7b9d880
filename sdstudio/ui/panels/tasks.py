"""Run panel work off the GUI thread, one task at a time.

By default each submitted callable computes everything from the state it was given, so a task
that was overtaken by a newer one before it started is dropped (dragging a slider queues one
decode, not fifty). Results come back through queued signals; what crosses threads is plain data and QImage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sdstudio.core.errors import describe, is_user_caused

log = logging.getLogger(__name__)


class LatestRunner(QObject):
    done = Signal(int, object)  # ticket, result
    failed = Signal(int, str)  # ticket, one sentence
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None, skip_overtaken: bool = True) -> None:
        """`skip_overtaken=False`: run every task in order (each builds on the last)."""
        super().__init__(parent)
        self.skip_overtaken = skip_overtaken
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._latest = 0
        self._pending = 0
        self.done.connect(self._finished)
        self.failed.connect(self._finished)

    def submit(self, fn: Callable[[], Any]) -> int:
        self._latest += 1
        self._pending += 1
        if self._pending == 1:
            self.busyChanged.emit(True)
        self._pool.start(_Task(self, self._latest, fn))
        return self._latest

    def latest(self) -> int:
        return self._latest

    def busy(self) -> bool:
        return self._pending > 0

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _finished(self, *_args: Any) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.busyChanged.emit(False)


class _Task(QRunnable):
    def __init__(self, runner: LatestRunner, ticket: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self._runner, self._ticket, self._fn = runner, ticket, fn

    def run(self) -> None:
        r = self._runner
        if r.skip_overtaken and self._ticket < r._latest:  # overtaken before it started
            r.done.emit(self._ticket, None)
            return
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
            if not is_user_caused(exc):
                log.error("panel task failed", exc_info=exc)
            r.failed.emit(self._ticket, describe(exc))
            return
        r.done.emit(self._ticket, result)
