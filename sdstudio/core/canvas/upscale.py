"""Running a latent upscaler of the registry (`sdstudio.core.canvas.upscalers`); image
upscalers run there, torch-free."""

from __future__ import annotations

import torch

from sdstudio.core.canvas.upscalers import Upscaler


def upscale_latents(upscaler: Upscaler, latents: torch.Tensor,
                    size: tuple[int, int]) -> torch.Tensor:
    """Latents to the latent size of `size` (pixels, width x height): A1111's `target // opt_f`."""
    assert upscaler.space == "latent"
    shape = (size[1] // 8, size[0] // 8)
    return torch.nn.functional.interpolate(latents, size=shape, mode=upscaler.method,
                                           antialias=upscaler.antialias)

