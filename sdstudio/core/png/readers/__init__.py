"""Readers of other tools' image metadata (ComfyUI, InvokeAI, Fooocus, NovelAI, SwarmUI,
Stability Matrix, Draw Things, Easy Diffusion, A1111 and its forks), one module per format.

Each reader is a pure function over an image's metadata texts (PNG chunks, EXIF UserComment,
XMP) that returns ParsedMetadata or None; `read_metadata` tries them in order.
"""

from sdstudio.core.png.readers.dispatch import read_metadata
from sdstudio.core.png.readers.image import image_chunks
from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata
from sdstudio.core.png.readers.reuse import a1111_text, to_a1111_text, to_parameters, to_request

__all__ = ["Hires", "Lora", "ParsedMetadata", "a1111_text", "image_chunks", "read_metadata",
           "to_a1111_text", "to_parameters", "to_request"]
