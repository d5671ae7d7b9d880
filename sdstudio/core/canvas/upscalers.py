"""Upscalers by name: A1111's "Latent" family (interpolation of the latents) and image upscalers.

A small registry so a model-based upscaler (ESRGAN & co through spandrel) can slot in later as
one more entry (a new `space`, run by `sdstudio.core.canvas.upscale`). Torch-free: the request
validates names with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, PngImagePlugin

from sdstudio.core.atomic import write_atomic
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


def upscale_image(upscaler: Upscaler, image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if upscaler.space != "image":
        raise UserError(f"{upscaler.name} upscales latents, inside hires fix; for a picture choose "
                        "one of " + ", ".join(n for n, u in UPSCALERS.items()
                                              if u.space == "image") + ".")
    return image.resize(size, getattr(Image.Resampling, upscaler.method))


def upscaled_name(source: Path, scale: float, name: str) -> str:
    """The file name of an upscaled copy: `<stem>-<upscaler>-x<scale>.png`."""
    return f"{source.stem}-{name.lower().replace(' ', '-')}-x{scale:g}.png"


def upscale_file(source: Path, target: Path, scale: float, name: str) -> Path:
    """Upscale a picture file into a PNG that keeps the source's text chunks (its prompt and
    parameters) and records the step as A1111's extras tab does (a `postprocessing` chunk)."""
    upscaler = get_upscaler(name)
    if not (isinstance(scale, int | float) and 1 <= scale <= 8):
        raise UserError(f"The upscale factor must be between 1 and 8, got {scale!r}.")
    try:
        with Image.open(source) as im:
            image, text = im.convert("RGB"), dict(getattr(im, "text", {}) or {})
    except (OSError, ValueError) as exc:
        raise UserError(f"Image {source} cannot be opened ({exc}).") from None
    size = (round(image.width * scale), round(image.height * scale))
    out = upscale_image(upscaler, image, size)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        if key != "postprocessing":
            info.add_itxt(key, value)
    info.add_itxt("postprocessing", f"Postprocess upscale by: {scale:g}, Postprocess upscaler: "
                  f"{upscaler.name}, Source: {source.name}")
    try:
        return write_atomic(target, lambda f: out.save(f, format="PNG", pnginfo=info))
    except OSError as exc:
        raise UserError(f"Could not write {target}: {exc.strerror or exc}.") from None
