"""JobQueue: owns the worker thread, numbers jobs, and keeps the visible queue of waiting jobs."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.worker import GenerationWorker, Job


class JobQueue(QObject):
    """GUI-thread side of the worker. Jobs travel to the worker by a queued signal and wait in the
    worker thread's event queue; `pending` mirrors them for display.

    Connect to `engineEvent` here, never to the worker's: the worker's signal is connected to this
    one (signal to signal, queued across the threads), so every receiver, a lambda
    included, runs in the GUI thread. The queue's own bookkeeping is connected first, so a
    receiver already sees `running` and `pending` updated.
    """

    engineEvent = Signal(object)  # EngineEvent, in the GUI thread
    queueChanged = Signal(list)  # [(job_id, summary)] waiting or running, running first
    _submit = Signal(object)
    _load = Signal(str, str, str)
    _warm = Signal()

    def __init__(self, worker: GenerationWorker | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker or GenerationWorker()
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("sdstudio-worker")
        self.worker.moveToThread(self.worker_thread)
        self._submit.connect(self.worker.run_job)
        self._load.connect(self.worker.load_model)
        self._warm.connect(self.worker.warm_up)
        self.engineEvent.connect(self._track)
        self.worker.engineEvent.connect(self.engineEvent)
        self._next_id = 0
        self.running: int | None = None
        self.pending: dict[int, str] = {}  # job id -> summary, in submission order

    def start(self) -> None:
        """Start the thread and begin importing the engine there."""
        if not self.worker_thread.isRunning():
            self.worker_thread.start()
        self._warm.emit()

    def submit(self, request: GenerationRequest, summary: str = "") -> int:
        """Queue a validated request; returns its job id."""
        self._next_id += 1
        job_id = self._next_id
        self.pending[job_id] = summary or request.prompt[:40]
        self._submit.emit(Job(job_id, request))
        self.engineEvent.emit(EngineEvent(EventKind.QUEUED, job_id, request))
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
        if not self.worker_thread.isRunning():
            return True
        self.cancel_all()
        self.worker_thread.quit()
        if timeout_ms < 0:
            return self.worker_thread.wait()
        return self.worker_thread.wait(timeout_ms)

    @Slot(object)
    def _track(self, ev: EngineEvent) -> None:
        if ev.kind is EventKind.STARTED:
            self.running = ev.job_id
        elif ev.kind.ends_job:
            self.pending.pop(ev.job_id, None)
            if self.running == ev.job_id:
                self.running = None
        elif ev.kind is not EventKind.QUEUED:
            return
        items = [(i, s) for i, s in self.pending.items() if i == self.running]
        items += [(i, s) for i, s in self.pending.items() if i != self.running]
        self.queueChanged.emit(items)
