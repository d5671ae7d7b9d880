"""JobQueue: owns the worker thread, numbers jobs, and keeps the visible queue of waiting jobs."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sdstudio.ui.worker import GenerationWorker, Job


class JobQueue(QObject):
    """GUI-thread side of the worker. Jobs travel to the worker by a queued signal and wait in the
    worker thread's event queue; `pending` mirrors them for display.

    Connect to the signals here, never to the worker's: these are re-emitted in the GUI thread, so
    any receiver (a lambda, a slot overridden in a subclass) runs in the GUI thread. PySide6 calls
    lambdas and overridden slots connected to a signal of another thread *in that thread*.
    """

    queueChanged = Signal(list)  # [(job_id, summary)] waiting or running, running first
    status = Signal(str)
    coreReady = Signal(list)  # sampler names
    modelLoaded = Signal(dict)
    started = Signal(int)  # job id
    step = Signal(object)  # StepPreview
    image = Signal(object)  # FinishedImage
    failed = Signal(str)
    finished = Signal(int, str)  # job id, "done" | "cancelled" | "failed"
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
        w = self.worker
        w.status.connect(self._relay_status)
        w.coreReady.connect(self._relay_core_ready)
        w.modelLoaded.connect(self._relay_model_loaded)
        w.step.connect(self._relay_step)
        w.image.connect(self._relay_image)
        w.failed.connect(self._relay_failed)
        w.started.connect(self._on_started)
        w.finished.connect(self._on_finished)
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

    # --- relays from the worker thread (queued into these slots, re-emitted here) ----------
    @Slot(str)
    def _relay_status(self, text: str) -> None:
        self.status.emit(text)

    @Slot(list)
    def _relay_core_ready(self, names: list) -> None:
        self.coreReady.emit(names)

    @Slot(dict)
    def _relay_model_loaded(self, info: dict) -> None:
        self.modelLoaded.emit(info)

    @Slot(object)
    def _relay_step(self, preview: object) -> None:
        self.step.emit(preview)

    @Slot(object)
    def _relay_image(self, result: object) -> None:
        self.image.emit(result)

    @Slot(str)
    def _relay_failed(self, message: str) -> None:
        self.failed.emit(message)

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self.running = job_id
        self._emit_queue()
        self.started.emit(job_id)

    @Slot(int, str)
    def _on_finished(self, job_id: int, outcome: str) -> None:
        self.pending.pop(job_id, None)
        if self.running == job_id:
            self.running = None
        self._emit_queue()
        self.finished.emit(job_id, outcome)

    def _emit_queue(self) -> None:
        items = [(i, s) for i, s in self.pending.items() if i == self.running]
        items += [(i, s) for i, s in self.pending.items() if i != self.running]
        self.queueChanged.emit(items)
