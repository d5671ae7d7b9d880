"""Small dataclasses the engine emits while it works."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


@dataclass
class ImageEvent:
    """One finished image of a batch; `seed` regenerates it alone (batch size 1)."""

    index: int
    seed: int
    image: Image.Image
    request: GenerationRequest
    notices: list[str] = field(default_factory=list)


@dataclass
class ErrorEvent:
    message: str


@dataclass
class GenerationResult:
    """What `StableDiffusion.generate` returns: one ImageEvent per image, plus notices for the user
    (prompt truncated, init image or mask resized, VAE upcast after a NaN, ...)."""

    images: list[ImageEvent]
    notices: list[str] = field(default_factory=list)
