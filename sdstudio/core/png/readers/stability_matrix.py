"""Stability Matrix (Inference tab): `parameters-json` (its GenerationParameters as JSON:
PositivePrompt, NegativePrompt, Steps, Sampler, Scheduler, CfgScale, Seed, Width, Height,
ModelName, ModelHash), beside A1111 text in `parameters`, its project in `smproj` and the
ComfyUI graph it ran."""

from __future__ import annotations

from collections.abc import Mapping

from sdstudio.core.png.readers.model import ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_text,
    load_object,
    model_stem,
    positive,
    width_height,
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
    out.set_sampler(data.get("Sampler"), data.get("Scheduler"), "Stability Matrix")
    out.width, out.height = width_height(data, "Width", "Height")
    out.model = model_stem(as_text(data.get("ModelName"), 500))
    out.model_hash = as_text(data.get("ModelHash"), 200)
    out.keep_unmapped(data, _MAPPED)
    if isinstance(chunks.get("smproj"), str):
        out.extra["smproj"] = "present"
    return out
