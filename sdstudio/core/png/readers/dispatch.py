"""read_metadata: which tool wrote this image, and what it says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers import (
    a1111,
    comfyui,
    drawthings,
    easydiffusion,
    fooocus,
    invokeai,
    novelai,
    sdstudio_own,
    stability_matrix,
    swarmui,
)
from sdstudio.core.png.readers.model import ParsedMetadata

# Most specific first: tools whose own chunk names say who they are, then JSON in `parameters`
# (SwarmUI, Fooocus), then the ComfyUI graph, then A1111 text, which any text parses as.
_READERS = (invokeai.read, stability_matrix.read, swarmui.read, fooocus.read,
            easydiffusion.read, drawthings.read)


def read_metadata(chunks: Mapping[str, Any],
                  size: tuple[int, int] | None = None) -> ParsedMetadata | None:
    """The parameters in an image's metadata texts (PNG chunks, EXIF UserComment, XMP).

    `size` is the image's own size, used where a format leaves it out (NovelAI). Returns None
    when nothing is readable; never raises, whatever the chunks hold.
    """
    try:
        return _read(chunks, size)
    except Exception as exc:  # a reader bug on odd data: the image is just unreadable
        return ParsedMetadata(source="unknown", notices=[
            f"The metadata in this image could not be read ({type(exc).__name__})."])


def _read(chunks: Mapping[str, Any], size: tuple[int, int] | None) -> ParsedMetadata | None:
    chunks = {k: v for k, v in chunks.items() if isinstance(k, str) and isinstance(v, str)}
    found = sdstudio_own.read(chunks) or novelai.read(chunks, size)
    for reader in _READERS:
        if found is not None:
            break
        found = reader(chunks)
    if found is None:
        graph = comfyui.read(chunks)
        text = a1111.read(chunks)
        if graph is not None and text is not None:  # comfy-image-saver writes both
            found = merge(text, graph)
            found.source = "comfyui"
        else:
            found = graph or text
    if found is not None and size and not found.size:
        found.width, found.height = size
    if found is not None and found.source == "a1111" and "fooocus_scheme" in chunks:
        found.source = "fooocus"
    return found


def merge(first: ParsedMetadata, second: ParsedMetadata) -> ParsedMetadata:
    """`first` with its empty fields filled from `second`."""
    for name, value in vars(second).items():
        if name in ("extra", "notices"):
            continue
        if getattr(first, name) in (None, "", []):
            setattr(first, name, value)
    first.extra = {**second.extra, **first.extra}
    first.notices = first.notices + [n for n in second.notices if n not in first.notices]
    return first
