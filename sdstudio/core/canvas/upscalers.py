"""Upscalers by name: A1111's "Latent" family (interpolation of the latents) and image upscalers.

A small registry so a model-based upscaler (ESRGAN & co through spandrel) can slot in later as
one more entry (a new `space`, run by `sdstudio.core.canvas.upscale`). Torch-free: the request
validates names with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdstudio.core.errors import UserError

MODEL_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


@dataclass(frozen=True)
class Upscaler:
    name: str  # as A1111 writes it in `Hires upscaler`
    space: str  # "latent": interpolates latents (no VAE round trip) | "image": resizes a picture
    method: str  # torch.nn.functional.interpolate's mode, or a PIL resampling filter's name
    antialias: bool = False


UPSCALERS: dict[str, Upscaler] = {u.name: u for u in (
    Upscaler("Latent", "latent", "bilinear"),
    Upscaler("Latent (antialiased)", "latent", "bilinear", antialias=True),
    Upscaler("Latent (bicubic)", "latent", "bicubic"),
    Upscaler("Latent (nearest)", "latent", "nearest"),
    Upscaler("Latent (nearest-exact)", "latent", "nearest-exact"),
    Upscaler("Lanczos", "image", "LANCZOS"),
    Upscaler("Nearest", "image", "NEAREST"),
)}


def _slug(name: str) -> str:
    return name.lower().replace("(", "").replace(")", "").replace(" ", "-")


_BY_SLUG = {_slug(name): name for name in UPSCALERS}


def canonical_upscaler(name: str) -> str:
    """`latent-nearest`, `Latent (nearest)` and `LANCZOS` -> the registry's name; one sentence
    for anything else."""
    found = _BY_SLUG.get(_slug(name.strip()))
    if found:
        return found
    if name.lower().endswith(MODEL_SUFFIXES):
        raise UserError(f"Upscaler model files ({name}) need spandrel, which is not installed "
                        "(it requires torchvision); use Latent or Lanczos.")
    raise UserError(f"Unknown upscaler {name!r}; choose one of {', '.join(UPSCALERS)}.")


def get_upscaler(name: str) -> Upscaler:
    return UPSCALERS[canonical_upscaler(name)]
