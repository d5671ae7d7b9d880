"""What the engine tells its front ends.

The pipeline returns `GenerationResult` (one `ImageEvent` per image) and calls back with
`StepEvent`s. The engine wraps every job in `EngineEvent`s: one type, a `kind` and a payload, the
one message the Qt worker, the CLI and a cluster worker all pass on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from sdstudio.core.request import GenerationRequest


@dataclass
class StepEvent:
    """One denoising step finished. `latents` are the current (unscaled) latents, batch first."""

    step: int  # 1-based: step `total` is the last one
    total: int
    timestep: float
    latents: torch.Tensor
    elapsed: float  # seconds since the loop started
    denoised: torch.Tensor | None = None  # the model's estimate of the clean latents (x0) now
    phase: str = ""  # hires fix: "first" or "hires" (which pass this step is of)


@dataclass
class ImageEvent:
    """One finished image of a batch; `seed` regenerates it alone (batch size 1).

    `record` is the reproducibility record of the model that made it (device, dtype, scheduler
    config, model hash), filled in by the engine: the PNG writer stores it as is."""

    index: int
    seed: int
    image: Image.Image
    request: GenerationRequest
    notices: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationResult:
    """What `StableDiffusion.generate` returns: one ImageEvent per image, plus notices for the user
    (prompt truncated, init image or mask resized, VAE upcast after a NaN, ...)."""

    images: list[ImageEvent]
    notices: list[str] = field(default_factory=list)


class EventKind(enum.Enum):
    """What happened. A job goes queued -> started -> progress* -> image* -> one of finished,
    cancelled or failed; `ready`, `loaded` and `notice` may also come between jobs (job id 0)."""

    READY = "ready"  # the engine imported; payload: list of sampler names
    LOADED = "loaded"  # a model is loaded; payload: ModelInfo
    QUEUED = "queued"  # payload: the GenerationRequest
    STARTED = "started"  # payload: the validated GenerationRequest
    PROGRESS = "progress"  # payload: StepEvent (a front end may replace it with its preview)
    IMAGE = "image"  # payload: ImageEvent (likewise)
    NOTICE = "notice"  # payload: one sentence for the status line
    FINISHED = "finished"  # payload: seconds the job took
    CANCELLED = "cancelled"  # payload: None
    FAILED = "failed"  # payload: one sentence (errors.describe)

    @property
    def ends_job(self) -> bool:
        return self in (EventKind.FINISHED, EventKind.CANCELLED, EventKind.FAILED)


@dataclass(frozen=True)
class EngineEvent:
    kind: EventKind
    job_id: int = 0  # 0: not about a job (engine ready, model loaded, a notice between jobs)
    payload: Any = None
