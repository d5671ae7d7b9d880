"""Stability Matrix (Inference tab): `parameters-json` (its GenerationParameters as JSON:
PositivePrompt, NegativePrompt, Steps, Sampler, Scheduler, CfgScale, Seed, Width, Height,
ModelName, ModelHash), beside A1111 text in `parameters`, its project in `smproj` and the
ComfyUI graph it ran."""

from __future__ import annotations

from collections.abc import Mapping

from sdstudio.core.png.readers.model import ParsedMetadata, short_text
from sdstudio.core.png.readers.samplers import sampler_display_name
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_text,
    load_object,
    model_stem,
    positive,
)

_MAPPED = {"PositivePrompt", "NegativePrompt", "Steps", "Sampler", "Scheduler", "CfgScale", "Seed",
           "Width", "Height", "ModelName", "ModelHash"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    data = load_object(chunks.get("parameters-json"))
    if data is None:
        return None
    out = ParsedMetadata(source="stability_matrix")
    out.prompt = as_text(data.get("PositivePrompt"))
    out.negative_prompt = as_text(data.get("NegativePrompt"))
    out.seed = as_int(data.get("Seed"))
    out.steps = positive(as_int(data.get("Steps")))
    out.cfg = as_float(data.get("CfgScale"))
    out.sampler_raw = as_text(data.get("Sampler"), 100)
    out.scheduler = as_text(data.get("Scheduler"), 100)
    if out.sampler_raw:
        out.sampler, known = sampler_display_name(out.sampler_raw, out.scheduler)
        if not known:
            out.notices.append(f"Sampler {out.sampler!r} has no equivalent in our menu.")
    out.width, out.height = positive(as_int(data.get("Width"))), positive(as_int(data.get("Height")))
    out.model = model_stem(as_text(data.get("ModelName"), 500))
    out.model_hash = as_text(data.get("ModelHash"), 200)
    for key, value in list(data.items())[:200]:
        if key not in _MAPPED and value not in (None, "", [], {}):
            out.extra[str(key)[:100]] = short_text(value, 500)
    if isinstance(chunks.get("smproj"), str):
        out.extra["smproj"] = "present"
    return out
