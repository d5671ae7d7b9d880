"""GenerationWorker: lives in a QThread, holds the loaded model, runs one job at a time.

Everything it sends is plain data (dataclasses of QImage, str, numbers): the GUI thread turns
QImages into pixmaps in its own slots. torch and the core engine are imported here, lazily, in the
worker's thread, so the window can appear before torch has finished importing.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from sdstudio.core.model_settings import DEFAULT_GUIDANCE
from sdstudio.ui.imaging import pil_to_qimage

log = logging.getLogger(__name__)

PREVIEW_INTERVAL_S = 0.03  # at most ~33 previews a second reach the GUI; the last step always does


@dataclass(frozen=True)
class Job:
    job_id: int
    params: dict[str, Any]  # GenerationRequest fields; the worker builds and validates the request


@dataclass(frozen=True)
class ChannelImage:
    image: QImage  # greyscale
    low: float
    high: float


@dataclass(frozen=True)
class StepPreview:
    job_id: int
    step: int  # 1-based
    total: int
    elapsed: float
    preview: QImage  # cheap latent -> RGB projection of the first image of the batch
    channels: tuple[ChannelImage, ...]


@dataclass(frozen=True)
class FinishedImage:
    """One finished image. `event` is the core's ImageEvent (PIL image + GenerationRequest) for
    saving with metadata; the worker never touches it again after sending."""

    job_id: int
    index: int
    seed: int
    image: QImage
    request: Any  # sdstudio.core.request.GenerationRequest
    event: Any  # sdstudio.core.events.ImageEvent
    notices: list[str] = field(default_factory=list)


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory is best effort
        log.exception("could not free GPU memory")


def _one_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if text.endswith((".", "!", "?")) else text + "."


class GenerationWorker(QObject):
    """Runs in its own QThread. Slots are called through queued signals; `cancel_upto` is the one
    method the GUI thread calls directly (it only sets an int, which is atomic)."""

    status = Signal(str)
    coreReady = Signal(list)  # sampler names, once torch and the core are imported
    modelLoaded = Signal(dict)  # {"model", "name", "native_size", "device", "dtype", "seconds"}
    started = Signal(int)  # job id
    step = Signal(object)  # StepPreview
    image = Signal(object)  # FinishedImage
    failed = Signal(str)  # one clear sentence
    finished = Signal(int, str)  # job id, "done" | "cancelled" | "failed"

    def __init__(self, preview_interval: float = PREVIEW_INTERVAL_S) -> None:
        super().__init__()
        self._preview_interval = preview_interval
        self._cancel_upto = 0  # jobs with an id <= this are cancelled
        self._engine: Any = None
        self._engine_key: tuple[str, str, str] | None = None
        self._last_preview = 0.0
        self._core_ready = False

    # --- called from the GUI thread -------------------------------------------------------
    def cancel_upto(self, job_id: int) -> None:
        """Cancel the running job and every queued one with an id <= job_id (thread-safe)."""
        self._cancel_upto = max(self._cancel_upto, job_id)

    # --- slots, run in the worker thread ---------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        """Import torch and the core (seconds), then say which samplers exist."""
        if self._core_ready:
            return
        self.status.emit("Starting the engine (importing torch)…")
        try:
            from sdstudio.core import latents, models, pipeline  # noqa: F401
            from sdstudio.core.schedulers import sampler_names
        except Exception as exc:  # noqa: BLE001 - a broken install must not kill the window
            log.exception("engine import failed")
            self.failed.emit(f"The engine could not start: {_one_sentence(exc)}")
            return
        self._core_ready = True
        self.coreReady.emit(sampler_names())
        self.status.emit("Engine ready.")

    @Slot(str, str, str)
    def load_model(self, model: str, device: str = "auto", dtype: str = "auto") -> None:
        """Load (or keep) a model ahead of the first job; failures are reported, not raised."""
        self.warm_up()
        try:
            self._ensure_model(model, device, dtype)
        except Exception as exc:  # noqa: BLE001
            self.failed.emit(self._describe(exc))

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if job.job_id <= self._cancel_upto:
            self.finished.emit(job.job_id, "cancelled")
            return
        self.started.emit(job.job_id)
        outcome = "done"
        try:
            self.warm_up()
            self._generate(job)
        except Exception as exc:  # noqa: BLE001 - every error becomes one sentence
            if type(exc).__name__ == "GenerationCancelled":
                outcome = "cancelled"
                self.status.emit("Cancelled.")
            else:
                outcome = "failed"
                self.failed.emit(self._describe(exc, job.params))
        finally:
            self.finished.emit(job.job_id, outcome)

    # --- internals -------------------------------------------------------------------------
    def _ensure_model(
        self, model: str, device: str, dtype: str, vae: str | None = None,
        prediction: str | None = None,
    ) -> Any:
        from sdstudio.core.models import choices

        # a VAE chosen for the model in the window is remembered, not in the request
        key = (model, device, dtype, vae or choices.recall(model).get("vae"), prediction)
        if self._engine is not None and self._engine_key == key:
            return self._engine
        from sdstudio.core.models import load_model
        from sdstudio.core.pipeline import StableDiffusion

        self.status.emit(f"Loading model {_model_label(model)}…")
        self._engine = self._engine_key = None
        _free_memory()
        t0 = time.monotonic()
        loaded = load_model(model, device=device, dtype=dtype, vae=vae, prediction=prediction)
        self._engine, self._engine_key = StableDiffusion(loaded), key
        seconds = time.monotonic() - t0
        info = {"model": model, "name": str(getattr(loaded, "name", _model_label(model))),
                "native_size": int(getattr(loaded, "native_size", 0) or 0),
                "guidance": float(getattr(loaded, "guidance", DEFAULT_GUIDANCE)),
                "device": str(getattr(loaded, "device", device)),
                "dtype": str(getattr(loaded, "dtype", dtype)).replace("torch.", ""),
                "seconds": seconds}
        self.modelLoaded.emit(info)
        self.status.emit(f"Model {_model_label(model)} loaded in {seconds:.1f} s.")
        return self._engine

    def _generate(self, job: Job) -> None:
        from sdstudio.core.request import GenerationRequest

        request = GenerationRequest.from_dict(job.params).validate()
        engine = self._ensure_model(request.model, request.device, request.dtype, request.vae,
                                    request.prediction)
        self.status.emit(f"Generating {request.width}×{request.height}, {request.steps} steps…")
        self._last_preview = 0.0
        result = engine.generate(
            request,
            on_step=self._step_callback(job.job_id, getattr(engine.model, "latent_rgb", None)),
            should_cancel=lambda: job.job_id <= self._cancel_upto,
        )
        for ev in result.images:
            self.image.emit(FinishedImage(
                job_id=job.job_id, index=ev.index, seed=ev.seed, image=pil_to_qimage(ev.image),
                request=ev.request, event=ev, notices=list(ev.notices),
            ))
        if result.notices:
            self.status.emit(" ".join(result.notices))

    def _step_callback(self, job_id: int, projection: Any = None) -> Callable[[Any], None]:
        from sdstudio.core.latents import channel_images, preview_rgb

        def on_step(ev: Any) -> None:
            now = time.monotonic()
            if ev.step < ev.total and now - self._last_preview < self._preview_interval:
                return
            self._last_preview = now
            latents = ev.latents[:1]
            channels = tuple(
                ChannelImage(pil_to_qimage(img), float(lo), float(hi))
                for img, lo, hi in channel_images(latents)
            )
            self.step.emit(StepPreview(
                job_id=job_id, step=ev.step, total=ev.total, elapsed=ev.elapsed,
                preview=pil_to_qimage(preview_rgb(latents, projection)), channels=channels,
            ))

        return on_step

    def _describe(self, exc: BaseException, params: dict[str, Any] | None = None) -> str:
        from sdstudio.core.errors import UserError

        if isinstance(exc, UserError):
            return _one_sentence(exc)
        if _is_oom(exc):
            self._engine = self._engine_key = None
            _free_memory()
            size = f" at {params['width']}×{params['height']}" if params else ""
            return (f"Out of memory{size}; the model was unloaded to free memory — try a smaller "
                    "size or batch, or fp16 / attention slicing, then generate again.")
        log.error("unexpected error in the worker", exc_info=exc)
        return f"Something went wrong: {type(exc).__name__}: {_one_sentence(exc)}"


def _model_label(model: str) -> str:
    if model == "demo":
        return "demo"
    from pathlib import Path

    return Path(model).name or model
