"""JobQueue: owns the worker thread, numbers jobs, and keeps the visible queue of waiting jobs."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sdstudio.ui.worker import GenerationWorker, Job


class JobQueue(QObject):
    """GUI-thread side of the worker. Jobs travel to the worker by a queued signal and wait in the
    worker thread's event queue; `pending` mirrors them for display."""

    queueChanged = Signal(list)  # [(job_id, summary)] waiting or running, running first
    _submit = Signal(object)
    _load = Signal(str, str, str)
    _warm = Signal()

    def __init__(self, worker: GenerationWorker | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.worker = worker or GenerationWorker()
        self.thread = QThread()
        self.thread.setObjectName("sdstudio-worker")
        self.worker.moveToThread(self.thread)
        self._submit.connect(self.worker.run_job)
        self._load.connect(self.worker.load_model)
        self._warm.connect(self.worker.warm_up)
        self.worker.started.connect(self._on_started)
        self.worker.finished.connect(self._on_finished)
        self._next_id = 0
        self.running: int | None = None
        self.pending: dict[int, str] = {}  # job id -> summary, in submission order

    def start(self) -> None:
        """Start the thread and begin importing the engine there."""
        if not self.thread.isRunning():
            self.thread.start()
        self._warm.emit()

    def submit(self, params: dict[str, Any], summary: str = "") -> int:
        self._next_id += 1
        job_id = self._next_id
        self.pending[job_id] = summary or params.get("prompt", "")[:40]
        self._submit.emit(Job(job_id, dict(params)))
        self._emit_queue()
        return job_id

    def load_model(self, model: str, device: str = "auto", dtype: str = "auto") -> None:
        self._load.emit(model, device, dtype)

    def cancel_all(self) -> None:
        """Stop the running job (within one step) and drop the waiting ones."""
        self.worker.cancel_upto(self._next_id)

    def busy(self) -> bool:
        return bool(self.pending)

    def shutdown(self, timeout_ms: int = -1) -> bool:
        """Cancel everything, stop the thread's event loop and join it. True when it stopped."""
        if not self.thread.isRunning():
            return True
        self.cancel_all()
        self.thread.quit()
        return self.thread.wait() if timeout_ms < 0 else self.thread.wait(timeout_ms)

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self.running = job_id
        self._emit_queue()

    @Slot(int, str)
    def _on_finished(self, job_id: int, _outcome: str) -> None:
        self.pending.pop(job_id, None)
        if self.running == job_id:
            self.running = None
        self._emit_queue()

    def _emit_queue(self) -> None:
        items = [(i, s) for i, s in self.pending.items() if i == self.running]
        items += [(i, s) for i, s in self.pending.items() if i != self.running]
        self.queueChanged.emit(items)
