"""Fooocus: JSON in `parameters` (PNG) or EXIF UserComment, with `fooocus_scheme` = "fooocus".

Keys as Fooocus' meta_parser writes them: prompt, negative_prompt, full_prompt (styles and
expansion applied), resolution "(w, h)", guidance_scale, sampler + scheduler (ComfyUI names),
base_model + base_model_hash, refiner_model, loras [[name, weight, hash]], seed (a string),
version "Fooocus v2.x". Its A1111-text scheme goes through the A1111 reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers.model import Lora, ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_size,
    as_text,
    load_object,
    model_stem,
    parameters_text,
    positive,
)

_MAPPED = {"prompt", "negative_prompt", "seed", "steps", "guidance_scale", "sampler", "scheduler",
           "resolution", "base_model", "base_model_hash", "loras", "clip_skip", "version",
           "metadata_scheme"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    data = load_object(parameters_text(chunks))
    if data is None or not _is_fooocus(data, chunks):
        return None
    out = ParsedMetadata(source="fooocus")
    out.prompt = as_text(data.get("prompt"))
    out.negative_prompt = as_text(data.get("negative_prompt"))
    out.seed = as_int(data.get("seed"))
    out.steps = positive(as_int(data.get("steps")))
    out.cfg = as_float(data.get("guidance_scale"))
    out.set_sampler(data.get("sampler"), data.get("scheduler"), "Fooocus")
    size = as_size(data.get("resolution"))
    if size:
        out.width, out.height = size
    out.model = model_stem(as_text(data.get("base_model"), 500))
    out.model_hash = as_text(data.get("base_model_hash"), 100)
    out.loras = _loras(data)
    skip = as_int(data.get("clip_skip"))
    out.clip_skip = skip if skip and skip > 1 else None
    out.version = as_text(data.get("version"), 100)
    out.keep_unmapped(data, _MAPPED, limit=2000)
    return out


def _is_fooocus(data: dict[str, Any], chunks: Mapping[str, str]) -> bool:
    if chunks.get("fooocus_scheme") == "fooocus" or data.get("metadata_scheme") == "fooocus":
        return True
    return str(data.get("version", "")).startswith("Fooocus")


def _loras(data: dict[str, Any]) -> list[Lora]:
    out: list[Lora] = []
    loras = data.get("loras")
    for item in loras[:50] if isinstance(loras, list) else []:
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(Lora(model_stem(item[0]), as_float(item[1]) if len(item) > 1 else None))
    for i in range(1, 11):  # older versions: "lora_combined_1": "name : 0.5"
        combined = data.get(f"lora_combined_{i}")
        if isinstance(combined, str) and " : " in combined:
            name, _, weight = combined.rpartition(" : ")
            out.append(Lora(model_stem(name), as_float(weight)))
    return out
