"""Upscalers by name: A1111's "Latent" family (interpolation of the latents) and image upscalers.

A small registry so a model-based upscaler (ESRGAN & co through spandrel) can slot in later as
one more entry. Importing this module is torch-free: the request validates names with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdstudio.core.errors import UserError

MODEL_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


@dataclass(frozen=True)
class Upscaler:
    name: str  # as A1111 writes it in `Hires upscaler`
    space: str  # "latent": upscales latents (no VAE round trip) | "image": upscales a PIL image
    run: Callable[[Any, tuple[int, int]], Any]  # (latents or image, (width, height)) -> same


def _latent(mode: str, antialias: bool = False) -> Callable[[Any, tuple[int, int]], Any]:
    def run(latents: Any, size: tuple[int, int]) -> Any:
        import torch

        # size is in pixels; the latents are 1/8 of it (A1111: target // opt_f)
        shape = (size[1] // 8, size[0] // 8)
        return torch.nn.functional.interpolate(latents, size=shape, mode=mode,
                                               antialias=antialias)
    return run


def _pil(resample: str) -> Callable[[Any, tuple[int, int]], Any]:
    def run(image: Any, size: tuple[int, int]) -> Any:
        from PIL import Image

        return image.resize(size, getattr(Image.Resampling, resample))
    return run


UPSCALERS: dict[str, Upscaler] = {u.name: u for u in (
    Upscaler("Latent", "latent", _latent("bilinear")),
    Upscaler("Latent (antialiased)", "latent", _latent("bilinear", antialias=True)),
    Upscaler("Latent (bicubic)", "latent", _latent("bicubic")),
    Upscaler("Latent (nearest)", "latent", _latent("nearest")),
    Upscaler("Latent (nearest-exact)", "latent", _latent("nearest-exact")),
    Upscaler("Lanczos", "image", _pil("LANCZOS")),
    Upscaler("Nearest", "image", _pil("NEAREST")),
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
