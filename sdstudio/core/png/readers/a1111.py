"""A1111 `parameters` text (also Forge, SD.Next, Fooocus' a1111 scheme, comfy-image-saver, ...).

The text itself is parsed by the existing A1111 parser; this maps its items onto ParsedMetadata.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sdstudio.core.png.a1111 import parse_parameters
from sdstudio.core.png.parameters import MetadataError
from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_size,
    as_text,
    load_json,
    parameters_text,
    positive,
)

_LORA_TAG = re.compile(r"<lora:([^:>]{1,200})(?::([-+]?\d*\.?\d+))?[^>]{0,100}>")
_MAPPED = {"Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model hash", "Model",
           "Denoising strength", "Clip skip", "Hires upscale", "Hires steps", "Hires upscaler",
           "Hires resize", "Version"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    """The A1111 text in `parameters` (PNG) or EXIF UserComment (JPEG/WebP); None if absent."""
    text = parameters_text(chunks)
    if text is None:
        return None
    if text.lstrip().startswith("{") and load_json(text) is not None:
        return None  # JSON (Fooocus, SwarmUI): not A1111 text
    try:
        p = parse_parameters(text)
    except MetadataError:
        return None
    return from_a1111(p.prompt, p.negative_prompt, p.settings)


def from_a1111(prompt: str, negative: str, s: Mapping[str, str],
               source: str = "a1111") -> ParsedMetadata | None:
    if not s and not prompt.strip():
        return None
    version = s.get("Version", "")
    if version.startswith("Fooocus"):
        source = "fooocus"
    sampler = s.get("Sampler", "")
    schedule = s.get("Schedule type", "")
    display = sampler
    if schedule and schedule.lower() not in ("automatic", "") and schedule not in sampler:
        display = f"{sampler} {schedule}"
    size = as_size(s.get("Size", ""))
    out = ParsedMetadata(
        source=source, prompt=as_text(prompt), negative_prompt=as_text(negative),
        seed=as_int(s.get("Seed")), steps=positive(as_int(s.get("Steps"))),
        sampler=display, sampler_raw=sampler, scheduler=schedule,
        cfg=as_float(s.get("CFG scale")), width=size[0] if size else None,
        height=size[1] if size else None, model=s.get("Model", ""),
        model_hash=s.get("Model hash", ""), strength=as_float(s.get("Denoising strength")),
        clip_skip=as_int(s.get("Clip skip")), version=version,
    )
    out.loras = [Lora(m.group(1).strip(), as_float(m.group(2)) if m.group(2) else 1.0)
                 for m in _LORA_TAG.finditer(out.prompt[:20000])][:50]
    if "Hires upscale" in s or "Hires steps" in s or "Hires resize" in s:
        hires_size = as_size(s.get("Hires resize", ""))
        out.hires = Hires(scale=as_float(s.get("Hires upscale")),
                          width=hires_size[0] if hires_size else None,
                          height=hires_size[1] if hires_size else None,
                          steps=as_int(s.get("Hires steps")), denoise=out.strength,
                          upscaler=s.get("Hires upscaler", ""))
        out.strength = None  # in A1111 text the denoising strength is the hires pass's
    out.extra = {k: v[:2000] for k, v in list(s.items())[:200] if k not in _MAPPED}
    out.a1111_items = dict(s)
    return out
