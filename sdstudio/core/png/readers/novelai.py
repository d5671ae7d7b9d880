"""NovelAI: `Software` = "NovelAI", the prompt in `Description`, JSON settings in `Comment`
(uc = negative prompt, scale = CFG, sampler in k-diffusion names, noise_schedule), the model
in `Source`; the size is the image's own when the JSON leaves it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers.model import ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_text,
    load_object,
    positive,
    width_height,
)

_MAPPED = {"prompt", "uc", "seed", "steps", "scale", "sampler", "noise_schedule", "width",
           "height", "strength", "v4_prompt", "v4_negative_prompt", "signed_hash"}


def read(chunks: Mapping[str, str], size: tuple[int, int] | None = None) -> ParsedMetadata | None:
    comment = load_object(chunks.get("Comment"))
    software = str(chunks.get("Software", ""))
    if not software.startswith("NovelAI") and not (
            comment and "uc" in comment and isinstance(chunks.get("Description"), str)):
        return None
    out = ParsedMetadata(source="novelai", model=as_text(chunks.get("Source"), 200))
    comment = comment or {}
    out.prompt = as_text(comment.get("prompt")) or as_text(chunks.get("Description"))
    out.negative_prompt = as_text(comment.get("uc")) or \
        _v4_caption(comment.get("v4_negative_prompt"))
    out.seed = as_int(comment.get("seed"))
    out.steps = positive(as_int(comment.get("steps")))
    out.cfg = as_float(comment.get("scale"))
    out.set_sampler(comment.get("sampler"), comment.get("noise_schedule"), "NovelAI")
    w, h = width_height(comment)
    if not (w and h) and size:
        w, h = size
    out.width, out.height = w, h
    strength = as_float(comment.get("strength"))
    if strength is not None and strength < 1 and comment.get("request_type") == "Img2ImgRequest":
        out.strength = strength
    out.version = software
    out.keep_unmapped(comment, _MAPPED)
    return out


def _v4_caption(v4: Any) -> str:
    """NovelAI 4: {"caption": {"base_caption": ..., "char_captions": [...]}}."""
    caption = v4.get("caption") if isinstance(v4, dict) else None
    return as_text(caption.get("base_caption")) if isinstance(caption, dict) else ""
