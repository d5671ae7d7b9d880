"""'Paste parameters' (A1111's paste button): text from the clipboard, in any format the readers
understand (A1111 text, ComfyUI graphs, InvokeAI / Fooocus / SwarmUI / Stability Matrix JSON),
becomes the fields of a request, plus one notice for what could not be used."""

from __future__ import annotations

import json
from typing import Any

from sdstudio.core.canvas.upscalers import canonical_upscaler
from sdstudio.core.errors import UserError
from sdstudio.core.png.readers import ParsedMetadata, read_metadata
from sdstudio.core.png.readers.reuse import request_fields

MAX_PASTE = 2 << 20  # characters, as for a PNG text chunk
# The chunk each tool's JSON lives in, tried in turn for a JSON text (A1111 text is not JSON).
_JSON_CHUNKS = ("parameters", "invokeai_metadata", "parameters-json", "sd-metadata", "prompt",
                "workflow")


class PasteError(UserError):
    """The pasted text holds no generation parameters."""


def parse_pasted(text: str) -> ParsedMetadata:
    """What the pasted text says; PasteError when it says nothing usable."""
    text = text.strip()
    if not text:
        raise PasteError("The clipboard holds no text to paste parameters from.")
    if len(text) > MAX_PASTE:
        raise PasteError(f"The clipboard text is over {MAX_PASTE >> 20} MB; that is not a set of "
                         "parameters.")
    found = None
    if _is_json_object(text):
        for key in _JSON_CHUNKS:
            found = read_metadata({key: text})
            # A1111 reads any text as a prompt; a reader that fails gives an empty "unknown"
            if found is not None and found.source != "a1111" and _says_something(found):
                break
            found = None
    else:
        found = read_metadata({"parameters": text})
    if found is None or not _says_something(found):
        raise PasteError("The clipboard text holds no generation parameters (A1111 text or "
                         "another tool's JSON).")
    return found


def pasted_fields(text: str) -> tuple[dict[str, Any], list[str]]:
    """Request fields for the pasted text (the model left out: another tool's name is not a path
    here) and the notices: items not used, values changed to fit."""
    p = parse_pasted(text)
    hires, p.hires = p.hires, None  # carried below, not only noticed
    fields, notices = request_fields(p)
    if p.clip_skip is not None:
        if 1 <= p.clip_skip <= 12:
            fields["clip_skip"] = p.clip_skip
        else:
            notices.append(f"Clip skip {p.clip_skip} is outside 1-12; it was not used.")
    if hires is not None:
        fields.update(_hires_fields(hires, notices))
    elif p.seed is not None or p.steps:
        fields["hires_scale"] = 1.0  # settings without a hires pass: none in the request
    unknown = [key for key in p.extra if key not in _CARRIED]
    if unknown:
        notices.append("Not used: " + ", ".join(unknown[:12])
                       + (f" and {len(unknown) - 12} more" if len(unknown) > 12 else "") + ".")
    return fields, notices


# A1111 items the reader keeps as extra but that pasting does carry (or that need nothing).
_CARRIED = {"Hires upscale", "Hires steps", "Hires upscaler", "Hires resize", "Version",
            "Model hash", "Clip skip", "Lora hashes", "TI hashes"}  # LoRAs: in the prompt


def _hires_fields(hires: Any, notices: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not hires.scale or hires.scale <= 1:
        if hires.width or hires.height:
            notices.append("The hires pass gives a target size, not a factor; it was not used.")
        return out
    out["hires_scale"] = float(hires.scale)
    out["hires_steps"] = int(hires.steps or 0)
    if hires.denoise is not None and 0 < hires.denoise <= 1:
        out["hires_strength"] = float(hires.denoise)
    if hires.upscaler:
        try:
            out["hires_upscaler"] = canonical_upscaler(hires.upscaler)
        except UserError:
            notices.append(f"Hires upscaler {hires.upscaler!r} is not available here; the "
                           "current one is kept.")
    return out


def _says_something(p: ParsedMetadata) -> bool:
    return bool(p.prompt or p.seed is not None or p.steps)


def _is_json_object(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False
