"""The engine: the one place that knows how a request becomes finished images.

It holds the loaded model (one at a time), applies the model's own defaults (native size,
recommended CFG scale) to what the user left open, picks the first rung of the memory ladder
(`sdstudio.core.memory`) the device can hold before any work starts (refusing a job none can),
runs the pipeline, retries it a rung down on out of memory, and attaches to every image the
reproducibility record of the loaded model (with the rung, where it is not "fast"). The Qt
worker, the CLI and the self-test are thin wrappers around it, and so is any future cluster
worker: `run_job` is the whole job protocol, as `EngineEvent`s.

torch and diffusers are imported on first use, so creating an Engine is free.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.core.defaults import DEMO_MODEL, MEMORY_RUNGS
from sdstudio.core.errors import (
    GenerationCancelled,
    UserError,
    describe,
    is_out_of_memory,
    is_user_caused,
)
from sdstudio.core.events import (
    EngineEvent,
    EventKind,
    GenerationResult,
    ImageEvent,
    StepEvent,
)
from sdstudio.core.interrupt import interruptible
from sdstudio.core.request import GenerationRequest

if TYPE_CHECKING:
    from sdstudio.core.models import LoadedModel

log = logging.getLogger(__name__)

# Fields a model may decide when the user did not: its native size and its recommended CFG.
MODEL_DEFAULT_FIELDS = frozenset({"width", "height", "guidance"})
# Working memory is refused above this share of what the device has free: the estimate is rough.
MEMORY_HEADROOM = 0.9


@dataclass(frozen=True)
class ModelInfo:
    """What a front end shows about the loaded model (plain data: it crosses threads)."""

    model: str  # the id it was asked for: "demo", a path, a hub id
    name: str
    native_size: int
    guidance: float  # the CFG scale the model recommends
    device: str
    dtype: str
    seconds: float  # how long loading took


def model_label(model: str) -> str:
    """A short name for a model id: the folder's or file's name."""
    return model if model == DEMO_MODEL else (Path(model).name or model)


class Engine:
    """Model cache + generate. Not thread-safe: one thread uses it (the worker's, the CLI's)."""

    def __init__(self, loader: Callable[[str, str, str], LoadedModel] | None = None) -> None:
        self._loader = loader
        self._loaded: LoadedModel | None = None
        self._pipeline: Any = None
        self._key: tuple[str, ...] | None = None
        self._info: ModelInfo | None = None
        # per model key: the memory rung a job of so many pixels (w x h x batch) had to fall to
        self._learned: dict[tuple[str, ...], dict[int, str]] = {}
        self._compiler: Any = None  # fastpath.Compiler of the loaded model, once a job compiles

    # --- the model --------------------------------------------------------------------------
    @property
    def model(self) -> LoadedModel | None:
        return self._loaded

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def is_loaded(self, model: str, device: str = "auto", dtype: str = "auto",
                  vae: str | None = None, prediction: str | None = None) -> bool:
        return self._loaded is not None and self._key == _model_key(
            model, device, dtype, vae, prediction)

    def load(self, model: str, device: str = "auto", dtype: str = "auto",
             vae: str | None = None, prediction: str | None = None) -> ModelInfo:
        """Load `model` (or keep it, when it is the one loaded); the old one is freed first.
        `vae` (a separate VAE; else the one remembered for the model) and `prediction` (SD 2.x
        single files) are part of what is loaded."""
        key = _model_key(model, device, dtype, vae, prediction)
        if self._loaded is not None and self._key == key:
            assert self._info is not None
            return self._info
        from sdstudio.core.pipeline import StableDiffusion

        self.unload()
        t0 = time.monotonic()
        if self._loader is not None:
            loaded = self._loader(model, device, dtype)
        else:
            from sdstudio.core.models import load_model

            loaded = load_model(model, device, dtype, vae=vae, prediction=prediction)
        self._pipeline = StableDiffusion(loaded)
        self._loaded, self._key = loaded, key
        self._info = ModelInfo(
            model=model, name=str(loaded.name), native_size=int(loaded.native_size),
            guidance=float(loaded.guidance), device=str(loaded.device),
            dtype=_dtype_name(loaded.dtype), seconds=time.monotonic() - t0,
        )
        return self._info

    def unload(self) -> None:
        """Drop the model and give its memory back (after an out-of-memory error, say): offload
        hooks and the adapter caches hold the modules too, so they go first."""
        if self._loaded is not None and self._loaded.unet is not None:
            from sdstudio.core import memory
            from sdstudio.core.adapters.host import forget

            memory.release(self._loaded)
            forget(self._loaded)
        self._loaded = self._pipeline = self._key = self._info = self._compiler = None
        free_memory()

    def record(self) -> dict[str, Any]:
        """The reproducibility record of the loaded model, as every image's PNG stores it (built
        per job: a single file's hash arrives from a background thread after loading)."""
        return _record(self._loaded) if self._loaded is not None else {}

    # --- requests ---------------------------------------------------------------------------
    def with_model_defaults(self, request: GenerationRequest,
                            chosen: Collection[str] = MODEL_DEFAULT_FIELDS) -> GenerationRequest:
        """The request with the loaded model's native size and recommended CFG scale in every
        field of MODEL_DEFAULT_FIELDS the user did not choose (`chosen` names those they did)."""
        info = self._require_info()
        return replace(
            request,
            width=request.width if "width" in chosen else info.native_size,
            height=request.height if "height" in chosen else info.native_size,
            guidance=request.guidance if "guidance" in chosen else info.guidance,
        )

    def start_rung(self, request: GenerationRequest) -> str:
        """The memory rung a job starts at: the one it asks for, else ("auto") the lowest rung a
        job of this model at most this large had to fall to, else "fast"; never one the device's
        ladder does not have (offload on the CPU is tiling)."""
        from sdstudio.core import memory

        loaded = self._require_loaded()
        rung = request.memory
        if rung == "auto":
            pixels = request.width * request.height * request.batch_size
            needed = [r for p, r in self._learned.get(self._key or (), {}).items() if p <= pixels]
            rung = max(needed, key=MEMORY_RUNGS.index, default=memory.FAST)
        return memory.clamp(rung, loaded.device)

    def check_fits(self, request: GenerationRequest, start: str | None = None) -> str:
        """The first memory rung from `start` (default: `start_rung`) whose working memory the
        device can hold; refuse, in one sentence, a job no rung can hold."""
        from sdstudio.core import memory

        loaded = self._require_loaded()
        steps_max = int(loaded.scheduler_config.get("num_train_timesteps") or 1000)
        if request.steps > steps_max:
            raise UserError(f"Steps must be at most {steps_max} for this model (its schedule "
                            f"has {steps_max} timesteps), got {request.steps}.")
        rungs = memory.ladder(loaded.device)
        rung = start or self.start_rung(request)
        free = free_device_memory(loaded.device)
        if free is None:
            return rung
        resident = memory.weights_on_device(loaded)
        for candidate in rungs[rungs.index(rung):]:
            need = estimate_working_memory(loaded, request, candidate)
            # what the rung moves off the device is free for it too
            room = free + resident - memory.resident_weights(loaded, candidate)
            if need <= room * MEMORY_HEADROOM:
                return candidate
        raise UserError(
            f"{request.width}×{request.height} with a batch of {request.batch_size} needs "
            f"about {_gb(need)} of working memory even with {memory.ADDS[candidate]} and the "
            f"{loaded.device.type} has {_gb(free)} free: lower the size or the batch.")

    # --- generating -------------------------------------------------------------------------
    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[StepEvent], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        on_image: Callable[[ImageEvent], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> GenerationResult:
        """Load the request's model if needed, check it fits, and run it at the first memory
        rung that fits; out of memory retries the whole job one rung down (with a notice), and
        unloads the model when no rung is left (so the next job starts clean). Every image
        carries the model's record, and the rung where it is not "fast". `on_notice` hears what
        is said while the job runs (compiled mode's warm-up, before its first step); without
        it, that goes first into the result's notices."""
        from sdstudio.core import memory

        request = request.validate()
        self.load(request.model, request.device, request.dtype, request.vae, request.prediction)
        loaded = self._require_loaded()
        w, h = request.hires_size if request.hires else (request.width, request.height)
        largest = replace(request, width=w, height=h)  # the largest pass
        start = self.start_rung(largest)
        rung = self.check_fits(largest)
        notices: list[str] = []
        say = on_notice or notices.append  # at once where a front end listens, else at the end
        if request.memory not in ("auto", start):
            asked = memory.ADDS[request.memory]
            say(f"{asked[0].upper()}{asked[1:]} does nothing on the "
                           f"{loaded.device.type}: used {memory.ADDS[start]} instead.")
        if rung != start:
            say(f"{w}×{h} does not fit in memory with {memory.ADDS[start]}: using "
                           f"{memory.describe_rung(rung)}.")
        shown: set[tuple[int, int]] = set()  # a retry never shows an image a second time

        def stamp(event: ImageEvent) -> None:
            event.record = self.record()
            if on_image is not None and (event.index, event.seed) not in shown:
                shown.add((event.index, event.seed))
                on_image(event)

        while True:
            try:
                result = self._run(rung, request, on_step, should_cancel, stamp, say)
                break
            except Exception as exc:
                lower = memory.next_rung(rung, loaded.device) if is_out_of_memory(exc) else None
                if lower is None:
                    if is_out_of_memory(exc):
                        self.unload()
                    raise
            free_memory()  # out of the except block: the traceback's tensors are gone
            say(memory.fallback_notice(w, h, rung, lower))
            log.info("out of memory at %s×%s (%s): retrying with %s", w, h, rung, lower)
            rung = lower
        if rung != start and self._key is not None:
            self._learned.setdefault(self._key, {})[w * h * request.batch_size] = rung
        result.notices[:0] = notices
        for event in result.images:  # a pipeline that skipped on_image: stamp them here
            if not event.record:  # (never rewrite one: a front end may be reading it already)
                event.record = self.record()
        return result

    def _run(self, rung: str, request: GenerationRequest, on_step: Any, should_cancel: Any,
             on_image: Callable[[ImageEvent], None],
             notify: Callable[[str], None]) -> GenerationResult:
        """One try of a job at memory rung `rung`."""
        from sdstudio.core import memory
        from sdstudio.core.canvas import run as canvas  # hires fix, only masked, ...

        loaded = self._require_loaded()
        memory.apply_rung(loaded, rung)
        try:
            with self._compiled(request, notify) as compiled:
                # cancel inside a step too (block hooks), except compiled: hooks break graphs
                with nullcontext() if compiled else interruptible(loaded, should_cancel):
                    result: GenerationResult = canvas.generate(
                        self._pipeline, request, on_step=on_step, should_cancel=should_cancel,
                        on_image=on_image)
        finally:
            memory.after_job(loaded)
        return result

    def _compiled(self, request: GenerationRequest,
                  notify: Callable[[str], None]) -> AbstractContextManager[bool]:
        """Compiled mode for this job when it asks for it (True within; a shape not compiled yet
        is announced first; an offloaded rung runs eager); the compiled modules are kept until
        the model changes."""
        if not request.compile:
            return nullcontext(False)
        from sdstudio.core import fastpath

        loaded = self._require_loaded()
        if self._compiler is None or self._compiler.loaded is not loaded:
            self._compiler = fastpath.Compiler(loaded)
        return self._compiler.active(notify, fastpath.unet_shapes(loaded, request))

    def run_job(
        self,
        job_id: int,
        request: GenerationRequest,
        emit: Callable[[EngineEvent], None],
        should_cancel: Callable[[], bool] = lambda: False,
        chosen: Collection[str] = MODEL_DEFAULT_FIELDS,
    ) -> None:
        """One job as events: started, progress*, image*, notice*, then exactly one of
        finished / cancelled / failed. Never raises for what a user can cause."""
        t0 = time.monotonic()
        try:
            if should_cancel():
                raise GenerationCancelled()
            request = request.validate()
            emit(EngineEvent(EventKind.STARTED, job_id, request))
            model_args = (request.model, request.device, request.dtype, request.vae,
                          request.prediction)
            if not self.is_loaded(*model_args):
                emit(EngineEvent(EventKind.NOTICE, job_id,
                                 f"Loading model {model_label(request.model)}…"))
                info = self.load(*model_args)
                emit(EngineEvent(EventKind.LOADED, 0, info))
            request = self.with_model_defaults(request, chosen)
            result = self.generate(
                request,
                on_step=lambda ev: emit(EngineEvent(EventKind.PROGRESS, job_id, ev)),
                should_cancel=should_cancel,
                on_image=lambda ev: emit(EngineEvent(EventKind.IMAGE, job_id, ev)),
                on_notice=lambda text: emit(EngineEvent(EventKind.NOTICE, job_id, text)),
            )
            for notice in result.notices:
                emit(EngineEvent(EventKind.NOTICE, job_id, notice))
        except GenerationCancelled:
            emit(EngineEvent(EventKind.CANCELLED, job_id))
        except Exception as exc:  # noqa: BLE001 - every error becomes one sentence
            if not is_user_caused(exc):
                log.error("unexpected error in job %s", job_id, exc_info=exc)
            emit(EngineEvent(EventKind.FAILED, job_id,
                             describe(exc, request.width, request.height)))
        else:
            emit(EngineEvent(EventKind.FINISHED, job_id, time.monotonic() - t0))

    # --- internals --------------------------------------------------------------------------
    def _require_loaded(self) -> LoadedModel:
        if self._loaded is None:
            raise UserError("No model is loaded.")
        return self._loaded

    def _require_info(self) -> ModelInfo:
        if self._info is None:
            raise UserError("No model is loaded.")
        return self._info


def _model_key(model: str, device: str, dtype: str, vae: str | None,
               prediction: str | None) -> tuple[str, ...]:
    """What makes two loads the same: a VAE chosen for the model earlier (remembered per model,
    not in the request) counts as if the request had named it."""
    if vae is None and model != DEMO_MODEL:
        from sdstudio.core.models import choices

        vae = choices.recall(model).get("vae")
    return (model, device, dtype, str(vae or ""), str(prediction or ""))


# --- the record ------------------------------------------------------------------------------
def _record(loaded: LoadedModel) -> dict[str, Any]:
    """Device, dtype, the model's own scheduler config and (for a single file) its hash."""
    record: dict[str, Any] = {"device": str(loaded.device), "dtype": _dtype_name(loaded.dtype),
                              "scheduler_config": dict(loaded.scheduler_config)}
    if loaded.sha256:
        record["model_sha256"] = loaded.sha256
    if loaded.vae_source:
        record["vae"] = loaded.vae_source
        if loaded.vae_sha256:
            record["vae_sha256"] = loaded.vae_sha256
    state = getattr(loaded, "memory", None)  # the memory rung, where it may change pixels
    if state is not None and state.rung not in ("", "fast"):
        record["memory"] = state.rung
    return record


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


# --- memory ----------------------------------------------------------------------------------
# Live activations, in multiples of (latent pixels x first UNet width): the skip connections of
# every level plus a transformer block's feed-forward (GEGLU, 8x) at the widest level. The UNet's
# attention is not counted: torch's scaled_dot_product_attention does not materialise it.
UNET_LIVE_FACTOR = 32
# The VAE decodes one image at a time; at full resolution it holds about six tensors (conv in
# and out, group norm, SiLU, the residual) of the widest channel count that reaches it, and its
# one-head mid-block attention over the latent pixels is counted as materialised. Measured on the
# demo model (CPU, fp32, 2 steps): 512x512 batch 1 peaks 313-339 MiB above the loaded model
# (estimate 480 MiB), 256x256 batch 4 145-149 MiB (estimate 132 MiB, plus a fixed ~70 MiB).
VAE_LIVE_FACTOR = 6


def estimate_working_memory(loaded: LoadedModel, request: GenerationRequest,
                            rung: str = "fast") -> int:
    """Bytes of activations a job needs beyond the weights (a rough upper estimate) at memory
    rung `rung`. Attention slicing is not counted as a saving (the attention it slices is not
    counted either); VAE tiling bounds the VAE's part by one tile, plus the image it builds."""
    f = loaded.vae_scale_factor
    latent_pixels = (request.height // f) * (request.width // f)
    passes = 2 if request.guidance > 1 else 1  # classifier-free guidance doubles the batch
    unet_width = int(loaded.unet.config.block_out_channels[0])
    unet = (request.batch_size * passes * latent_pixels * unet_width * UNET_LIVE_FACTOR
            * _itemsize(loaded.unet.dtype))
    vae_channels = loaded.vae.config.block_out_channels
    widest_full_res = int(vae_channels[1] if len(vae_channels) > 1 else vae_channels[0])
    vae_bytes = _itemsize(loaded.vae.dtype)
    height, width, extra = request.height, request.width, 0
    if MEMORY_RUNGS.index(rung) >= MEMORY_RUNGS.index("tiled"):
        tile = _tile_size(loaded.vae)
        extra = 3 * 3 * height * width * vae_bytes  # the tiles, their blend and the image
        height, width = min(height, tile), min(width, tile)
    decoded_latent = (height // f) * (width // f)
    vae = (height * width * widest_full_res * VAE_LIVE_FACTOR * vae_bytes
           + decoded_latent * decoded_latent * vae_bytes + extra)
    latents = request.batch_size * latent_pixels * 4 * 4 * 4  # latents, noise, scheduler state
    return unet + vae + latents


def _tile_size(vae: Any) -> int:
    """The side in pixels of the VAE's tiles (diffusers: its config's sample size)."""
    size = getattr(vae, "tile_sample_min_size", None) or 512
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _itemsize(dtype: Any) -> int:
    return int(getattr(dtype, "itemsize", 4))


def free_device_memory(device: Any) -> int | None:
    """Bytes free on the device (None where it cannot be told)."""
    kind = getattr(device, "type", str(device))
    try:
        if kind == "cuda":
            import torch

            free, _total = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device)
                       - torch.cuda.memory_allocated(device))
        if kind == "mps":
            import torch

            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - an unknown device is not a reason to refuse
        log.debug("free memory unknown on %s", kind, exc_info=True)
        return None


def free_memory() -> None:
    gc.collect()
    try:
        import sys

        torch: Any = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory is best effort
        log.exception("could not free GPU memory")


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n < 2**40 else f"{n / 2**40:.1f} TB"
