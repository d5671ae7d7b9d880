"""Sending a gallery image on: to img2img or inpaint (the image as init image, with its prompt and
parameters and, for inpaint, the mask its request used), or to an upscaler (a new gallery file
that keeps the prompt and records the upscale). Qt-free; the gallery panel calls these."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.core.canvas.upscalers import canonical_upscaler, upscale_file, upscaled_name
from sdstudio.core.errors import UserError
from sdstudio.core.png import MetadataError
from sdstudio.core.png.io import read_png_and_size

if TYPE_CHECKING:
    from sdstudio.core.gallery import Gallery, GalleryImage
    from sdstudio.core.request import GenerationRequest

SEND_MODES = ("img2img", "inpaint")


@dataclass(frozen=True)
class Send:
    """What a send puts into the window: the image, and the request to fill the fields from
    (None when the image has no parameters: then only the image goes)."""

    mode: str  # img2img | inpaint
    image: str
    request: GenerationRequest | None
    notices: tuple[str, ...] = ()


def send_image(path: str | Path, mode: str) -> Send:
    """The image at `path` as the init image of `mode`, with its own prompt and parameters; its
    size becomes the size (rounded to a multiple of 8), as A1111's "Send to" does."""
    if mode not in SEND_MODES:
        raise ValueError(mode)
    path = Path(path)
    try:
        params, (width, height) = read_png_and_size(path)
        request = params.to_request() if params is not None else None
    except MetadataError as exc:
        return Send(mode, str(path), None, (f"{exc} Only the image was sent.",))
    if request is None:
        return Send(mode, str(path), None,
                    (f"{path.name} has no generation parameters; only the image was sent.",))
    notices: list[str] = []
    mask = request.mask if mode == "inpaint" else None
    if mask and not Path(mask).is_file():
        notices.append(f"The mask this image was made with ({Path(mask).name}) is gone; paint "
                       "a new one.")
        mask = None
    if mode == "inpaint" and mask is None and not notices:
        notices.append("This image was made without a mask: paint one (Paint mask…).")
    request = replace(request, init_image=str(path), mask=mask, batch_size=1,
                      width=max(8, width // 8 * 8), height=max(8, height // 8 * 8))
    return Send(mode, str(path), request, tuple(notices))


def upscale_into(gallery: Gallery, source: str | Path, scale: float,
                 upscaler: str) -> GalleryImage:
    """Upscale a gallery image into a new file of the gallery's folder (never over another) and
    index it. The file keeps the source's prompt and parameters and records the upscale, as
    `sdstudio upscale` does. Runs on a pool thread."""
    source = Path(source)
    name = canonical_upscaler(upscaler)
    stem = Path(upscaled_name(source, scale, name)).stem
    target = gallery.folder / f"{stem}.png"
    n = 1
    while target.exists():
        n += 1
        target = gallery.folder / f"{stem}-{n}.png"
    written = upscale_file(source, target, scale, name)
    row = gallery.add_file(written)
    if row is None:
        raise UserError(f"{written.name} was written but could not be added to the gallery.")
    return row
