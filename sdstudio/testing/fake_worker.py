"""A scriptable stand-in for the generation worker, for UI tests: no torch, no model, instant.

It speaks the real worker's protocol (one `event` signal of EngineEvents with the same payload
types) and runs in the JobQueue's thread like the real one, so the window cannot tell the
difference. Script it with the constructor's arguments; `requests` records what arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image
from PySide6.QtGui import QColor, QImage

from sdstudio.core.defaults import DEFAULT_GUIDANCE, DEFAULT_SAMPLER
from sdstudio.core.engine import ModelInfo
from sdstudio.core.events import EngineEvent, EventKind, ImageEvent
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.imaging import pil_to_qimage
from sdstudio.ui.worker import ChannelImage, FinishedImage, GenerationWorker, Job, StepPreview

if TYPE_CHECKING:
    from sdstudio.ui.main_window import MainWindow

BATCH_COLOURS = ("purple", "teal", "olive", "navy")
FAKE_RECORD = {"device": "cpu", "dtype": "float32", "scheduler_config": {"fake": True}}


def _flat(size: int, colour: str) -> QImage:
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    return image


class FakeWorker(GenerationWorker):
    """Each job: STARTED, one PROGRESS per step (`step_delay` apart, cancel checked before each),
    one IMAGE per seed (a flat `colour` image of the request's size), FINISHED. With `fail` set,
    a job sends that sentence as FAILED instead of images; `fail_load` does it for loading.
    `notices` are sent after the images, as the engine sends a run's notices."""

    def __init__(self, *, samplers: Sequence[str] = (DEFAULT_SAMPLER, "Euler", "DDIM"),
                 native_size: int = 64, guidance: float = DEFAULT_GUIDANCE,
                 steps: int | None = None,
                 step_delay: float = 0.0, colour: str = "orange", fail: str | None = None,
                 fail_load: str | None = None, notices: Sequence[str] = ()) -> None:
        super().__init__(preview_interval=0.0)
        self.samplers = list(samplers)
        self.native_size = native_size
        self.guidance = guidance
        self.steps = steps  # None: the request's own step count
        self.step_delay = step_delay
        self.colour = colour
        self.fail = fail
        self.fail_load = fail_load
        self.notices = list(notices)
        self.requests: list[GenerationRequest] = []  # every request that reached run_job
        self.threads: set[int] = set()  # idents of the threads that ran jobs

    def _warm_up(self) -> bool:
        if not self._core_ready:
            self._core_ready = True
            self.engineEvent.emit(EngineEvent(EventKind.READY, 0, list(self.samplers)))
        return True

    def _load_model(self, model: str, device: str, dtype: str) -> None:
        if self.fail_load:
            self.engineEvent.emit(EngineEvent(EventKind.FAILED, 0, self.fail_load))
            return
        info = ModelInfo(model=model, name=model, native_size=self.native_size,
                         guidance=self.guidance, device="cpu", dtype="float32", seconds=0.0)
        self.engineEvent.emit(EngineEvent(EventKind.LOADED, 0, info))

    def _run_job(self, job: Job) -> None:
        self.threads.add(threading.get_ident())
        self.requests.append(job.request)
        if self._cancelled(job):
            self.engineEvent.emit(EngineEvent(EventKind.CANCELLED, job.job_id))
            return
        request = job.request
        self.engineEvent.emit(EngineEvent(EventKind.STARTED, job.job_id, request))
        total = self.steps or request.steps
        for step in range(1, total + 1):
            time.sleep(self.step_delay)
            if self._cancelled(job):
                self.engineEvent.emit(EngineEvent(EventKind.CANCELLED, job.job_id))
                return
            channels = tuple(ChannelImage(_flat(8, "grey"), -1.0, 1.0) for _ in range(4))
            n = request.batch_size
            # a batch: one flat colour per image; at the last step each image's channels, whose
            # range names the image (image i: -1-i … 1+i)
            batch = tuple(_flat(8, BATCH_COLOURS[i % len(BATCH_COLOURS)]) for i in range(n))
            per_image = tuple(tuple(ChannelImage(_flat(8, "grey"), -1.0 - i, 1.0 + i)
                                    for _ in range(4)) for i in range(n))
            preview = StepPreview(step=step, total=total, elapsed=step * 0.01,
                                  preview=_flat(8, "purple"), channels=channels,
                                  batch=batch if n > 1 else (),
                                  batch_channels=per_image if step == total else ())
            self.engineEvent.emit(EngineEvent(EventKind.PROGRESS, job.job_id, preview))
        if self.fail:
            self.engineEvent.emit(EngineEvent(EventKind.FAILED, job.job_id, self.fail))
            return
        for index, seed in enumerate(request.seeds()):
            pil = Image.new("RGB", (request.width, request.height), self.colour)
            event = ImageEvent(index, seed, pil, request, record=dict(FAKE_RECORD))
            self.engineEvent.emit(EngineEvent(EventKind.IMAGE, job.job_id, FinishedImage(
                index=index, seed=seed, image=pil_to_qimage(pil), event=event)))
        for notice in self.notices:
            self.engineEvent.emit(EngineEvent(EventKind.NOTICE, job.job_id, notice))
        self.engineEvent.emit(EngineEvent(EventKind.FINISHED, job.job_id, 0.0))

    def _cancelled(self, job: Job) -> bool:
        return self.is_cancelled(job.job_id)


def started_window(qtbot: Any, worker: FakeWorker) -> MainWindow:
    """A shown MainWindow on `worker` whose model has loaded, with a prompt and small fields:
    what most UI tests start from (`qtbot` is pytest-qt's)."""
    from sdstudio.ui.main_window import MainWindow

    w = MainWindow(worker=worker)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.modelReady, timeout=10_000):
        w.start_engine()
    w.prompt_panel.set_texts("a red circle", "")
    w.params_panel.set_params({"seed_random": False, "seed": 3, "steps": 4, "width": 64,
                               "height": 64})
    return w
