"""Our own images: the `sdstudio` chunk (the exact request) beside the A1111 text."""

from __future__ import annotations

from collections.abc import Mapping

from sdstudio.core.png.a1111 import PARAMETERS_KEY
from sdstudio.core.png.parameters import MetadataError
from sdstudio.core.png.readers import a1111
from sdstudio.core.png.readers.model import ParsedMetadata
from sdstudio.core.png.record import SDSTUDIO_KEY, parse_record


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    ours = chunks.get(SDSTUDIO_KEY)
    if not isinstance(ours, str):
        return None
    text = chunks.get(PARAMETERS_KEY)
    try:
        p = parse_record(ours, text if isinstance(text, str) else None)
    except MetadataError:
        return None
    if p is None:
        return None
    out = a1111.from_a1111(p.prompt, p.negative_prompt, p.settings, source="sdstudio")
    if out is not None and p.request:
        req = p.request
        out.width = req.get("width") if isinstance(req.get("width"), int) else out.width
        out.height = req.get("height") if isinstance(req.get("height"), int) else out.height
        out.extra["request"] = "exact"
    return out
