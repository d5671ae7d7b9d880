"""Mask operations on 8-bit greyscale PIL images (white = repaint, black = keep).

Shared by the CLI, the engine's inpaint paths and the window's mask painter (which edits a
numpy view of the same image), so every front end means the same thing by "feather" or "fill".
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageFilter, ImageOps

from sdstudio.core.atomic import write_atomic
from sdstudio.core.errors import UserError


def empty(size: tuple[int, int]) -> Image.Image:
    """An all-black (keep everything) mask."""
    return Image.new("L", size, 0)


def filled(size: tuple[int, int]) -> Image.Image:
    """An all-white (repaint everything) mask."""
    return Image.new("L", size, 255)


def invert(mask: Image.Image) -> Image.Image:
    return ImageOps.invert(mask.convert("L"))


def feather(mask: Image.Image, radius: float) -> Image.Image:
    """Soften the mask's edge: a Gaussian blur of the given radius (A1111's "Mask blur")."""
    mask = mask.convert("L")
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask.copy()


def dilate(mask: Image.Image, pixels: int) -> Image.Image:
    """Grow the white part by `pixels` in every direction (negative: shrink it)."""
    mask = mask.convert("L")
    grow = ImageFilter.MaxFilter if pixels > 0 else ImageFilter.MinFilter
    # one big rank filter costs size^2 per pixel; repeated 3x3 passes cost 9 per pixel each
    for _ in range(abs(pixels)):
        mask = mask.filter(grow(3))
    return mask


def binarize(mask: Image.Image, threshold: int = 128) -> Image.Image:
    return mask.convert("L").point(lambda v: 255 if v >= threshold else 0)


def bounding_box(mask: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the non-black pixels, right/bottom exclusive; None if none."""
    return mask.convert("L").getbbox()


def union(a: Image.Image, b: Image.Image) -> Image.Image:
    return ImageChops.lighter(a.convert("L"), b.convert("L"))


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's masked content "fill": the masked area painted with ever finer blurs of the
    unmasked colours around it (modules/masking.py `fill`), so the sampler starts from the
    surroundings' colours instead of what was there."""
    rgba = image.convert("RGBA")
    out = Image.new("RGBA", image.size)
    kept = Image.new("RGBa", image.size)  # premultiplied: blurring does not bleed black in
    kept.paste(rgba.convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    for radius, repeats in ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)):
        blurred = kept.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            out.alpha_composite(blurred)
    return out.convert("RGB")


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> Image.Image:
    """A mask file as 8-bit greyscale (an RGBA file's alpha is not used: its grey is), resized
    to `size` (nearest, so a hard mask stays hard)."""
    try:
        with Image.open(path) as im:
            mask = im.convert("L")
    except (OSError, ValueError) as exc:
        raise UserError(f"Mask {path} cannot be opened ({exc}).") from None
    if size is not None and mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return mask


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a mask (or any image the canvas made) as a PNG in one atomic step."""
    try:
        return write_atomic(path, lambda f: image.save(f, format="PNG"))
    except OSError as exc:
        raise UserError(f"Could not write {path}: {exc.strerror or exc}.") from None
