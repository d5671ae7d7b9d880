"""Defensive helpers: these readers see whatever bytes a stranger's image holds."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

MAX_TEXT = 8 << 20  # a chunk longer than this (8 MiB of text) is not read at all
MAX_PROMPT = 64 << 10  # prompts beyond 64 KiB are cut: nobody types that, an attacker might

_SIZE_RE = re.compile(r"^\s*\(?\s*(\d{1,6})\s*[x×*, ]\s*(\d{1,6})\s*\)?")


def load_json(text: Any) -> Any:
    """json.loads that returns None for anything that is not sane JSON text.

    Deep nesting makes the C decoder raise RecursionError; huge texts are refused before parsing.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(text, str) or len(text) > MAX_TEXT or text.lstrip()[:1] not in ("{", "["):
        return None  # only objects and lists are of use; A1111 text is turned away cheaply
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError):
        return None


def load_object(text: Any) -> dict[str, Any] | None:
    data = load_json(text)
    return data if isinstance(data, dict) else None


def parameters_text(chunks: Mapping[str, Any]) -> str | None:
    """The `parameters` chunk (PNG), else the EXIF UserComment (JPEG/WebP) where tools put it."""
    for key in ("parameters", "UserComment"):
        text = chunks.get(key)
        if isinstance(text, str) and text.strip() and len(text) <= MAX_TEXT:
            return text
    return None


def as_int(value: Any) -> int | None:
    """An int from an int, an integral float or a decimal string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**64 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < 2**63 \
            else None
    if isinstance(value, str):
        s = value.strip()
        if 0 < len(s) <= 20 and re.fullmatch(r"[-+]?\d+", s):
            return int(s)
        f = as_float(s)
        return as_int(f) if f is not None else None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        f = float(value) if abs(value) < 1e300 else math.inf
        return f if math.isfinite(f) else None
    if isinstance(value, str) and 0 < len(value.strip()) <= 40:
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def as_text(value: Any, limit: int = MAX_PROMPT) -> str:
    """A string value, stripped and bounded; '' for non-strings."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value if len(value) <= limit else value[:limit]


def as_size(value: Any) -> tuple[int, int] | None:
    """'512x768', '(1152, 896)', '1024 x 1024 (square)', [w, h] -> (w, h)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        w, h = as_int(value[0]), as_int(value[1])
    elif isinstance(value, str):
        m = _SIZE_RE.match(value[:100])
        w, h = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    else:
        return None
    return (w, h) if w and h and w > 0 and h > 0 else None


def width_height(data: Mapping[str, Any], w: str = "width",
                 h: str = "height") -> tuple[int | None, int | None]:
    """Two positive ints from `data[w]`, `data[h]` (None for anything else)."""
    return positive(as_int(data.get(w))), positive(as_int(data.get(h)))


def positive(value: int | None) -> int | None:
    return value if value is not None and value > 0 else None


def model_stem(name: str) -> str:
    """'SDXL/juggernaut_v8.safetensors' -> 'juggernaut_v8' (what A1111 shows as Model)."""
    name = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name
