"""Draw Things: XMP (iTXt `XML:com.adobe.xmp`) whose exif:UserComment holds JSON:
c = prompt, uc = negative, seed, steps, scale, sampler (A1111 names), size "WxH", model,
strength, lora [{file, weight}], and a `v2` object (clipSkip, hiresFix...)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata
from sdstudio.core.png.readers.values import (
    MAX_TEXT,
    as_float,
    as_int,
    as_size,
    as_text,
    load_object,
    model_stem,
    positive,
)

XMP_KEY = "XML:com.adobe.xmp"
_USER_COMMENT = re.compile(r"<exif:UserComment>\s*(?:<rdf:Alt>\s*<rdf:li[^>]{0,200}>)?([^<]*)")
_MAPPED = {"c", "uc", "seed", "steps", "scale", "sampler", "size", "model", "strength", "lora",
           "v2"}


def user_comment(xmp: Any) -> str | None:
    """The exif:UserComment text of an XMP packet (a regex, not an XML parser: no entities)."""
    if not isinstance(xmp, str) or len(xmp) > MAX_TEXT or "Draw Things" not in xmp[:100_000] \
            and "exif:UserComment" not in xmp:
        return None
    m = _USER_COMMENT.search(xmp)
    if not m:
        return None
    return html.unescape(m.group(1)).strip()


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    data = load_object(user_comment(chunks.get(XMP_KEY)))
    if data is None or not ("c" in data and ("scale" in data or "sampler" in data)):
        return None
    out = ParsedMetadata(source="drawthings")
    out.prompt, out.negative_prompt = as_text(data.get("c")), as_text(data.get("uc"))
    out.seed = as_int(data.get("seed"))
    out.steps = positive(as_int(data.get("steps")))
    out.cfg = as_float(data.get("scale"))
    out.sampler = out.sampler_raw = as_text(data.get("sampler"), 100)
    size = as_size(data.get("size"))
    if size:
        out.width, out.height = size
    out.model = model_stem(as_text(data.get("model"), 500))
    strength = as_float(data.get("strength"))
    out.strength = strength if strength is not None and strength < 1 else None
    loras = data.get("lora")
    for item in loras[:50] if isinstance(loras, list) else []:
        if isinstance(item, dict) and isinstance(item.get("file"), str):
            out.loras.append(Lora(model_stem(item["file"]), as_float(item.get("weight"))))
    v2 = data["v2"] if isinstance(data.get("v2"), dict) else {}
    skip = as_int(v2.get("clipSkip"))
    out.clip_skip = skip if skip and skip > 1 else None
    if v2.get("hiresFix") is True:
        out.hires = Hires(width=positive(as_int(v2.get("hiresFixStartWidth"))),
                          height=positive(as_int(v2.get("hiresFixStartHeight"))),
                          denoise=as_float(v2.get("hiresFixStrength")))
    out.keep_unmapped(data, _MAPPED)
    return out
