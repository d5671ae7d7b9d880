"""A1111's "Inpaint area: Only masked" geometry: the crop around the mask and the paste back.

`crop_region` and `expand_crop_region` follow A1111's modules/masking.py (`get_crop_region`,
`expand_crop_region`); `paste_back` is its processing.py `apply_overlay`: the generated crop is
resized back into place and the original is laid over it with alpha = 255 - mask, so a pixel the
(feathered) mask leaves black is the original's, byte for byte.
"""

from __future__ import annotations

from PIL import Image, ImageOps

from sdstudio.core.canvas.masks import bounding_box
from sdstudio.core.errors import UserError

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


def crop_region(mask: Image.Image, padding: int) -> Box:
    """The mask's bounding box grown by `padding` on every side, clipped to the image."""
    box = bounding_box(mask)
    if box is None:
        raise UserError("The mask is empty: paint the part to repaint (white) first.")
    x1, y1, x2, y2 = box
    w, h = mask.size
    return max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, w), min(y2 + padding, h)


def expand_crop_region(box: Box, width: int, height: int, image_w: int, image_h: int) -> Box:
    """Grow the box's short side until it has the processing size's aspect ratio, shifted back
    inside the image where it runs over an edge (A1111's `expand_crop_region`)."""
    x1, y1, x2, y2 = box
    ratio_box = (x2 - x1) / (y2 - y1)
    ratio_proc = width / height
    if ratio_box > ratio_proc:
        y1, y2 = _grow(y1, y2, int((x2 - x1) / ratio_proc - (y2 - y1)), image_h)
    else:
        x1, x2 = _grow(x1, x2, int((y2 - y1) * ratio_proc - (x2 - x1)), image_w)
    return x1, y1, x2, y2


def _grow(lo: int, hi: int, diff: int, limit: int) -> tuple[int, int]:
    lo -= diff // 2
    hi += diff - diff // 2
    if hi >= limit:
        lo -= hi - limit
        hi = limit
    if lo < 0:
        hi -= lo
        lo = 0
    return lo, min(hi, limit)


def only_masked_box(mask: Image.Image, padding: int, width: int, height: int) -> Box:
    """The region "only masked" repaints at width x height."""
    return expand_crop_region(crop_region(mask, padding), width, height, *mask.size)


def overlay_mask(mask: Image.Image, whole_picture: bool) -> Image.Image:
    """The mask the result is pasted back with. A1111 doubles a whole-picture mask (so the soft
    edge reaches full strength halfway) and uses an only-masked one as it is."""
    mask = mask.convert("L")
    return mask.point(lambda v: min(2 * v, 255)) if whole_picture else mask


def paste_back(original: Image.Image, generated: Image.Image, box: Box | None,
               mask: Image.Image) -> Image.Image:
    """`generated` (the crop's result, or the whole picture when box is None) resized into
    `box` of `original`, then the original laid over it wherever `mask` is not white."""
    base = original.convert("RGBA")
    if box is not None:
        x1, y1, x2, y2 = box
        canvas = Image.new("RGBA", original.size)
        canvas.paste(generated.convert("RGBA").resize((x2 - x1, y2 - y1),
                                                      Image.Resampling.LANCZOS), (x1, y1))
    else:
        canvas = generated.convert("RGBA").resize(original.size, Image.Resampling.LANCZOS)
    over = base.copy()
    over.putalpha(ImageOps.invert(mask.convert("L")))
    canvas.alpha_composite(over)
    return canvas.convert("RGB")
