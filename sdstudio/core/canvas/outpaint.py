"""Outpainting: a bigger canvas with the picture inside it, the new border filled so the sampler
starts from plausible colours, and a mask over the border that reaches `overlap` pixels into the
picture (so, feathered, the seam is repainted too and blends in)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from sdstudio.core.canvas.masks import fill_masked, save_png
from sdstudio.core.errors import UserError

FILLS = ("edge", "blur")


@dataclass(frozen=True)
class Extension:
    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def validate(self) -> Extension:
        for side in ("left", "top", "right", "bottom"):
            v = getattr(self, side)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise UserError(f"Outpaint {side} must be a whole number of pixels >= 0, got {v}.")
        if not any((self.left, self.top, self.right, self.bottom)):
            raise UserError("Outpaint needs at least one side to extend (e.g. --right 64).")
        return self

    def size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        return image_size[0] + self.left + self.right, image_size[1] + self.top + self.bottom


def extend_canvas(image: Image.Image, ext: Extension, fill: str = "edge",
                  overlap: int = 16) -> tuple[Image.Image, Image.Image]:
    """(the extended image, its mask: white over the new border and `overlap` px inside)."""
    ext = ext.validate()
    if fill not in FILLS:
        raise UserError(f"Outpaint fill must be edge or blur, got {fill!r}.")
    image = image.convert("RGB")
    w, h = image.size
    new_w, new_h = ext.size(image.size)
    mask = Image.new("L", (new_w, new_h), 255)
    keep = (ext.left + (overlap if ext.left else 0), ext.top + (overlap if ext.top else 0),
            ext.left + w - (overlap if ext.right else 0), ext.top + h - (overlap if ext.bottom else 0))
    if keep[2] > keep[0] and keep[3] > keep[1]:
        mask.paste(0, keep)
    border = Image.new("L", (new_w, new_h), 255)
    border.paste(0, (ext.left, ext.top, ext.left + w, ext.top + h))
    if fill == "blur":
        canvas = Image.new("RGB", (new_w, new_h))
        canvas.paste(image, (ext.left, ext.top))
        return fill_masked(canvas, border), mask
    # edge: the outermost row/column stretched out, blurred so it is not streaks
    padded = np.pad(np.asarray(image), ((ext.top, ext.bottom), (ext.left, ext.right), (0, 0)),
                    mode="edge")
    stretched = Image.fromarray(padded)
    soft = stretched.filter(ImageFilter.GaussianBlur(max(4, max(new_w, new_h) // 32)))
    out = stretched.copy()
    out.paste(soft, mask=border)
    out.paste(image, (ext.left, ext.top))
    return out, mask


def prepare(image_path: Path, ext: Extension, folder: Path, fill: str = "edge",
            overlap: int = 16) -> tuple[str, str]:
    """Write the extended picture and its mask into `folder`; return their paths (what an
    outpaint request's init_image and mask are)."""
    try:
        with Image.open(image_path) as im:
            image = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"Image {image_path} cannot be opened ({exc}).") from None
    extended, mask = extend_canvas(image, ext, fill, overlap)
    # named by the source and the settings: another outpaint never overwrites the files an
    # earlier image's request points at
    key = hashlib.sha256(image_path.read_bytes() + repr((ext, fill, overlap)).encode())
    stem = f"{image_path.stem}-outpaint-{key.hexdigest()[:8]}"
    init_path, mask_path = folder / f"{stem}.png", folder / f"{stem}-mask.png"
    save_png(extended, init_path)
    save_png(mask, mask_path)
    return str(init_path), str(mask_path)
