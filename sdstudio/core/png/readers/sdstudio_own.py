"""Our own images: the `sdstudio` chunk (the exact request) beside the A1111 text."""

from __future__ import annotations

from collections.abc import Mapping

from sdstudio.core import metadata
from sdstudio.core.png.readers import a1111
from sdstudio.core.png.readers.model import ParsedMetadata


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    if metadata.SDSTUDIO_KEY not in chunks:
        return None
    subset = {k: chunks[k] for k in (metadata.SDSTUDIO_KEY, metadata.PARAMETERS_KEY) if k in chunks}
    try:
        p = metadata.parameters_from_info(subset)
    except metadata.MetadataError:
        return None
    if p is None or p.source != "sdstudio":
        return None
    out = a1111.from_a1111(p.prompt, p.negative_prompt, p.settings, source="sdstudio")
    if out is not None and p.request:
        req = p.request
        out.width = req.get("width") if isinstance(req.get("width"), int) else out.width
        out.height = req.get("height") if isinstance(req.get("height"), int) else out.height
        out.extra["request"] = "exact"
    return out
