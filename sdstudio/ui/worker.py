"""GenerationWorker: lives in a QThread, holds the engine, runs one job at a time.

It emits one signal, `engineEvent`, carrying the engine's `EngineEvent`s. Payloads that the GUI paints
are made Qt-ready here, in the worker's thread: a step's latents become a `StepPreview` of
QImages, a finished image a `FinishedImage` (QImage to show, the core's ImageEvent to save).
torch and the engine's model code are imported lazily, in the worker's thread, so the window can
appear before torch has finished importing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from sdstudio.core import threads
from sdstudio.core.engine import Engine, model_label
from sdstudio.core.errors import describe
from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.imaging import pil_to_qimage

if TYPE_CHECKING:
    from sdstudio.core.events import ImageEvent, StepEvent
    from sdstudio.core.preview_decoder import PreviewDecoder

log = logging.getLogger(__name__)

PREVIEW_INTERVAL_S = 0.03  # at most ~33 previews a second reach the GUI; the last step always does


@dataclass(frozen=True)
class Job:
    job_id: int
    request: GenerationRequest  # validated by the window before it was queued


@dataclass(frozen=True)
class ChannelImage:
    image: QImage  # greyscale
    low: float
    high: float


@dataclass(frozen=True)
class StepPreview:
    """Payload of a PROGRESS event as the window gets it."""

    step: int  # 1-based
    total: int
    elapsed: float
    preview: QImage  # cheap latent -> RGB projection of the first image of the batch
    channels: tuple[ChannelImage, ...]
    denoised: QImage | None = None  # the same projection of the model's x0 estimate
    phase: str = ""  # hires fix: "first" or "hires" (StepEvent.phase)
    # A batch of 2 or more: every image's preview (x_t, and x0 where known), by the same cheap
    # projection, for the preview's grid; at the last step each image's channels.
    batch: tuple[QImage, ...] = ()
    batch_denoised: tuple[QImage, ...] = ()
    batch_channels: tuple[tuple[ChannelImage, ...], ...] = ()


@dataclass(frozen=True)
class FinishedImage:
    """Payload of an IMAGE event as the window gets it. `event` is the core's ImageEvent (PIL
    image, request, the model's record) for saving; the worker never touches it after sending."""

    index: int
    seed: int
    image: QImage
    event: ImageEvent
    notices: list[str] = field(default_factory=list)

    @property
    def request(self) -> GenerationRequest:
        return self.event.request


class GenerationWorker(QObject):
    """Runs in its own QThread. Slots are called through queued signals; `cancel_upto` and
    `cancel_job` are the methods the GUI thread calls directly (they set an int or add to a set,
    atomic under the GIL; the running job reads them before each step and between UNet blocks).

    A subclass (the tests' FakeWorker) overrides `_warm_up`, `_load_model` and `_run_job`, never
    the slots themselves: PySide6 runs an overridden slot in the *sender's* thread."""

    engineEvent = Signal(object)  # EngineEvent (not `event`: that would hide QObject.event())

    def __init__(self, preview_interval: float = PREVIEW_INTERVAL_S,
                 engine: Engine | None = None) -> None:
        super().__init__()
        self._preview_interval = preview_interval
        self._cancel_upto = 0  # jobs with an id <= this are cancelled
        self._cancelled_ids: set[int] = set()  # and these, one by one
        self.engine = engine or Engine()
        self._last_preview = 0.0
        self._core_ready = False
        self._start_error = ""  # why the engine could not start, once a warm-up failed

    # --- called from the GUI thread -------------------------------------------------------
    def cancel_upto(self, job_id: int) -> None:
        """Cancel the running job and every queued one with an id <= job_id (thread-safe)."""
        self._cancel_upto = max(self._cancel_upto, job_id)

    def cancel_job(self, job_id: int) -> None:
        """Cancel this one job, running or not yet started (thread-safe)."""
        self._cancelled_ids.add(job_id)

    def is_cancelled(self, job_id: int) -> bool:
        return job_id <= self._cancel_upto or job_id in self._cancelled_ids

    # --- slots, run in the worker thread ---------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        self._warm_up()

    @Slot(str, str, str)
    def load_model(self, model: str, device: str = "auto", dtype: str = "auto") -> None:
        self._load_model(model, device, dtype)

    @Slot(object)
    def run_job(self, job: Job) -> None:
        self._run_job(job)

    # --- the work, in the worker thread ------------------------------------------------------
    def _warm_up(self) -> bool:
        """Import torch and the model code (seconds), then say which samplers exist."""
        if self._core_ready:
            return True
        self._notice("Starting the engine (importing torch)…")
        try:
            from sdstudio.core import latents, models, pipeline  # noqa: F401
            from sdstudio.core.schedulers import import_scheduler_classes, sampler_names

            import_scheduler_classes()  # before READY: panels build schedulers on other threads
        except Exception as exc:  # noqa: BLE001 - a broken install must not kill the window
            log.exception("engine import failed")
            self._start_error = f"The engine could not start: {describe(exc)}"
            self.engineEvent.emit(EngineEvent(EventKind.FAILED, 0, self._start_error))
            return False
        self._core_ready = True
        threads.configure()
        self.engineEvent.emit(EngineEvent(EventKind.READY, 0, sampler_names()))
        self._notice("Engine ready.")
        return True

    def _load_model(self, model: str, device: str, dtype: str) -> None:
        """Load (or keep) a model ahead of the first job; failures are reported, not raised."""
        if not self._warm_up() or self.engine.is_loaded(model, device, dtype):
            return
        self._notice(f"Loading model {model_label(model)}…")
        try:
            info = self.engine.load(model, device, dtype)
        except Exception as exc:  # noqa: BLE001
            self.engineEvent.emit(EngineEvent(EventKind.FAILED, 0, describe(exc)))
            return
        self.engineEvent.emit(EngineEvent(EventKind.LOADED, 0, info))
        self._notice(f"Model {model_label(model)} loaded in {info.seconds:.1f} s.")

    def _run_job(self, job: Job) -> None:
        if self.is_cancelled(job.job_id):
            self.engineEvent.emit(EngineEvent(EventKind.CANCELLED, job.job_id))
            return
        if not self._warm_up():
            self.engineEvent.emit(EngineEvent(EventKind.FAILED, job.job_id, self._start_error))
            return
        threads.configure()  # each job: another engine process may have started or ended
        self._last_preview = 0.0
        self.engine.run_job(job.job_id, job.request, self._forward(job.job_id),
                            should_cancel=lambda: self.is_cancelled(job.job_id))

    # --- internals -------------------------------------------------------------------------
    def _notice(self, text: str) -> None:
        self.engineEvent.emit(EngineEvent(EventKind.NOTICE, 0, text))

    def _forward(self, job_id: int) -> Callable[[EngineEvent], None]:
        """The engine's events, their payloads made ready to paint, onto the signal."""
        from sdstudio.core.host_copy import HostCopies  # torch: imported in the worker's thread

        decoder: list[PreviewDecoder | None] = []
        copies = HostCopies()  # due steps' latents, copied off the GPU without waiting for it

        def forward(ev: EngineEvent) -> None:
            if ev.kind is EventKind.STARTED:
                r = ev.payload
                self.engineEvent.emit(ev)
                self._notice(f"Generating {r.width}×{r.height}, {r.steps} steps…")
                return
            if ev.kind is EventKind.PROGRESS:
                projection = getattr(self.engine.model, "latent_rgb", None)
                if not decoder:  # chosen at the job's first step, once its model is loaded
                    decoder.append(self._preview_decoder())
                step: StepEvent = ev.payload
                if self._due(step):  # a step not due is never copied off the GPU
                    copies.start(step)
                for on_cpu in copies.ready(wait=step.step >= step.total):
                    preview = self._preview_of(on_cpu, projection, decoder[0])
                    self.engineEvent.emit(EngineEvent(
                        ev.kind, ev.job_id, with_batch(preview, on_cpu, projection)))
                return
            elif ev.kind is EventKind.IMAGE:
                image: ImageEvent = ev.payload
                ev = EngineEvent(ev.kind, ev.job_id, FinishedImage(
                    index=image.index, seed=image.seed, image=pil_to_qimage(image.image),
                    event=image, notices=list(image.notices)))
            self.engineEvent.emit(ev)

        return forward

    def _preview_decoder(self) -> PreviewDecoder | None:
        """The loaded model's tiny x0 decoder (reset for a new job), or None: the projection."""
        from sdstudio.core.preview_decoder import preview_decoder_for

        model = self.engine.model
        decoder = None if model is None else preview_decoder_for(model)
        if decoder is not None:
            decoder.reset()
        return decoder

    def make_preview(self, ev: StepEvent, projection: Any = None,
                     decoder: PreviewDecoder | None = None) -> StepPreview | None:
        """A step's preview, or None when one was sent too recently (the last step always is)."""
        return self._preview_of(ev, projection, decoder) if self._due(ev) else None

    def _due(self, ev: StepEvent) -> bool:
        """Whether this step gets a preview: the last one always, others once per interval."""
        now = time.monotonic()
        if ev.step < ev.total and now - self._last_preview < self._preview_interval:
            return False
        self._last_preview = now
        return True

    def _preview_of(self, ev: StepEvent, projection: Any = None,
                    decoder: PreviewDecoder | None = None) -> StepPreview:
        from sdstudio.core.latents import preview_rgb

        latents = ev.latents[:1]
        channels = _channels(latents)
        x0 = ev.denoised
        x0_image = None  # the model's tiny decoder where it has one, else the projection
        if x0 is not None:
            if decoder is not None:
                x0_image = decoder.preview(x0, last=ev.step >= ev.total)
            if x0_image is None:  # no tiny decoder, or its time budget is spent for now
                x0_image = preview_rgb(x0[:1], projection)
        return StepPreview(step=ev.step, total=ev.total, elapsed=ev.elapsed,
                           preview=pil_to_qimage(preview_rgb(latents, projection)),
                           channels=channels,
                           denoised=None if x0_image is None else pil_to_qimage(x0_image),
                           phase=ev.phase)


def _channels(latents: Any) -> tuple[ChannelImage, ...]:
    from sdstudio.core.latents import channel_images

    return tuple(ChannelImage(pil_to_qimage(img), float(lo), float(hi))
                 for img, lo, hi in channel_images(latents))


def with_batch(sp: StepPreview, ev: StepEvent, projection: Any = None) -> StepPreview:
    """`sp` with the previews of every image of a batch (2 or more), and at the last step every
    image's channels (one image too: picking it later shows its own)."""
    from sdstudio.core.latents import preview_rgb

    n = int(ev.latents.shape[0])
    x0 = ev.denoised

    def each(latents: Any) -> tuple[QImage, ...]:
        return tuple(pil_to_qimage(preview_rgb(latents[i:i + 1], projection)) for i in range(n))

    return replace(
        sp,
        batch=each(ev.latents) if n > 1 else (),
        batch_denoised=each(x0) if n > 1 and x0 is not None else (),
        batch_channels=(tuple(_channels(ev.latents[i:i + 1]) for i in range(n))
                        if ev.step >= ev.total else ()))
