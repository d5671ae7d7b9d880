"""JobQueue: owns the worker thread, numbers jobs, and keeps the queue of waiting jobs.

Waiting jobs stay here, in the GUI thread, as requests: the worker gets one job at a time, the next
one when the last has ended. So a waiting job can be removed, moved, duplicated, held by a pause,
or saved for the next start, and cancelling the running job leaves the others alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.worker import GenerationWorker, Job


@dataclass(frozen=True)
class QueuedJob:
    job_id: int
    request: GenerationRequest
    summary: str


@dataclass(frozen=True)
class QueueItem:
    """One row of the visible queue (queueChanged's payload is a list of these, running first)."""

    job_id: int
    summary: str
    state: str  # "running", "cancelling" or "waiting"


class JobQueue(QObject):
    """GUI-thread side of the worker.

    Connect to `engineEvent` here, never to the worker's: the worker's signal is connected to this
    one (signal to signal, queued across the threads), so every receiver, a lambda
    included, runs in the GUI thread. The queue's own bookkeeping is connected first, so a
    receiver already sees `running` and `waiting` updated. A waiting job that is removed ends with
    a CANCELLED event from here, like one the worker cancelled.
    """

    engineEvent = Signal(object)  # EngineEvent, in the GUI thread
    queueChanged = Signal(list)  # [QueueItem], running first
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
        self.running: QueuedJob | None = None  # handed to the worker, not ended yet
        self.cancelling = False  # the running job was asked to stop
        self.waiting: list[QueuedJob] = []  # in the order they will run
        self.paused = False

    # --- the worker -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread and begin importing the engine there."""
        if not self.worker_thread.isRunning():
            self.worker_thread.start()
        self._warm.emit()

    def load_model(self, model: str, device: str = "auto", dtype: str = "auto") -> None:
        self._load.emit(model, device, dtype)

    def shutdown(self, timeout_ms: int = -1) -> bool:
        """Cancel everything, stop the thread's event loop and join it. True when it stopped."""
        if not self.worker_thread.isRunning():
            return True
        self.cancel_all()
        self.worker.cancel_upto(self._next_id)
        self.worker_thread.quit()
        if timeout_ms < 0:
            return self.worker_thread.wait()
        return self.worker_thread.wait(timeout_ms)

    # --- adding -----------------------------------------------------------------------------
    def submit(self, request: GenerationRequest, summary: str = "") -> int:
        """Queue a validated request; returns its job id."""
        self._next_id += 1
        job = QueuedJob(self._next_id, request, summary or request.prompt[:40])
        self.waiting.append(job)
        self.engineEvent.emit(EngineEvent(EventKind.QUEUED, job.job_id, request))
        self._dispatch()
        return job.job_id

    def duplicate(self, job_id: int) -> int | None:
        """Queue a copy of a waiting or running job right after it; returns the new id."""
        job = self._find(job_id)
        if job is None:
            return None
        new_id = self.submit(job.request, job.summary)
        copy = self.waiting.pop()
        at = next((i + 1 for i, j in enumerate(self.waiting) if j.job_id == job_id), 0)
        self.waiting.insert(at, copy)
        self._changed()
        return new_id

    # --- controlling ------------------------------------------------------------------------
    def cancel_running(self) -> bool:
        """Stop the running job (it ends within one step, or between two UNet blocks); the waiting
        ones stay. False when nothing runs."""
        if self.running is None:
            return False
        self.worker.cancel_job(self.running.job_id)
        self.cancelling = True
        self._changed()
        return True

    def cancel_all(self) -> None:
        """Drop every waiting job and stop the running one."""
        for job in list(self.waiting):
            self.remove(job.job_id)
        self.cancel_running()

    def cancel(self, job_id: int) -> bool:
        """Cancel one job, running or waiting."""
        if self.running is not None and self.running.job_id == job_id:
            return self.cancel_running()
        return self.remove(job_id)

    def remove(self, job_id: int) -> bool:
        """Take a waiting job out of the queue (it ends as CANCELLED). False if it is not waiting."""
        for job in self.waiting:
            if job.job_id == job_id:
                self.waiting.remove(job)
                self.engineEvent.emit(EngineEvent(EventKind.CANCELLED, job_id))
                return True
        return False

    def move(self, job_id: int, offset: int) -> None:
        """Move a waiting job `offset` places later (negative: earlier)."""
        order = [j.job_id for j in self.waiting]
        if job_id not in order:
            return
        at = order.index(job_id)
        order.insert(max(0, min(len(order) - 1, at + offset)), order.pop(at))
        self.reorder(order)

    def reorder(self, job_ids: list[int]) -> None:
        """Put the waiting jobs in this order (ids not named keep their place at the end)."""
        by_id = {j.job_id: j for j in self.waiting}
        ordered = [by_id.pop(i) for i in job_ids if i in by_id]
        self.waiting = ordered + [j for j in self.waiting if j.job_id in by_id]
        self._changed()

    def set_paused(self, paused: bool) -> None:
        """A paused queue lets the running job finish and starts no other."""
        self.paused = paused
        self._changed()
        self._dispatch()

    # --- reading ----------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.running is not None or bool(self.waiting)

    def items(self) -> list[QueueItem]:
        rows = []
        if self.running is not None:
            state = "cancelling" if self.cancelling else "running"
            rows.append(QueueItem(self.running.job_id, self.running.summary, state))
        rows += [QueueItem(j.job_id, j.summary, "waiting") for j in self.waiting]
        return rows

    def unfinished(self) -> list[QueuedJob]:
        """The running job (unless it is being cancelled) and the waiting ones, in order."""
        first = [self.running] if self.running is not None and not self.cancelling else []
        return first + list(self.waiting)

    # --- internals --------------------------------------------------------------------------
    def _find(self, job_id: int) -> QueuedJob | None:
        if self.running is not None and self.running.job_id == job_id:
            return self.running
        return next((j for j in self.waiting if j.job_id == job_id), None)

    def _dispatch(self) -> None:
        if self.running is None and self.waiting and not self.paused:
            self.running = self.waiting.pop(0)
            self.cancelling = False
            self._submit.emit(Job(self.running.job_id, self.running.request))
        self._changed()

    def _changed(self) -> None:
        self.queueChanged.emit(self.items())

    @Slot(object)
    def _track(self, ev: EngineEvent) -> None:
        if ev.kind.ends_job and self.running is not None and ev.job_id == self.running.job_id:
            self.running = None
            self.cancelling = False
            self._dispatch()
        elif ev.kind.ends_job and ev.job_id:
            self._changed()
