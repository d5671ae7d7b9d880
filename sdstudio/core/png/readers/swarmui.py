"""SwarmUI: JSON in `parameters` (PNG) or EXIF UserComment (JPEG/WebP):
{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, width, height,
sampler, scheduler, loras, loraweights, ...}, "sui_extra_data": {...}, "sui_models": [...]}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_text,
    load_object,
    model_stem,
    parameters_text,
    positive,
    width_height,
)

_MAPPED = {"prompt", "negativeprompt", "model", "seed", "steps", "cfgscale", "width", "height",
           "sampler", "scheduler", "loras", "loraweights", "clipstopatlayer", "swarm_version",
           "initimagecreativity", "refinerupscale", "refinercontrolpercentage", "refinersteps",
           "refinerupscalemethod"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    data = load_object(parameters_text(chunks)) or {}
    params = data.get("sui_image_params")
    if not isinstance(params, dict):
        return None
    out = ParsedMetadata(source="swarmui")
    out.prompt = as_text(params.get("prompt"))
    out.negative_prompt = as_text(params.get("negativeprompt"))
    out.seed = as_int(params.get("seed"))
    out.steps = positive(as_int(params.get("steps")))
    out.cfg = as_float(params.get("cfgscale"))
    out.set_sampler(params.get("sampler"), params.get("scheduler"), "SwarmUI")
    out.width, out.height = width_height(params)
    model = as_text(params.get("model"), 500)
    out.model = model_stem(model)
    if model and model != out.model:
        out.extra["model_file"] = model
    out.model_hash = _model_hash(data.get("sui_models"))
    out.loras = _loras(params.get("loras"), params.get("loraweights"))
    layer = as_int(params.get("clipstopatlayer"))
    out.clip_skip = -layer if layer is not None and layer < -1 else None
    creativity = as_float(params.get("initimagecreativity"))
    out.strength = creativity if creativity is not None and 0 < creativity < 1 else None
    upscale = as_float(params.get("refinerupscale"))
    if upscale is not None and upscale > 1:
        out.hires = Hires(scale=upscale, steps=positive(as_int(params.get("refinersteps"))),
                          denoise=as_float(params.get("refinercontrolpercentage")),
                          upscaler=as_text(params.get("refinerupscalemethod"), 100))
    out.version = as_text(params.get("swarm_version"), 100)
    out.keep_unmapped(params, _MAPPED)
    if isinstance(data.get("sui_extra_data"), dict):
        out.keep_unmapped(data["sui_extra_data"], set(), prefix="extra.")
    return out


def _model_hash(models: Any) -> str:
    """sui_models: [{"name": "x.safetensors", "param": "model", "hash": "0x..."}]."""
    for item in models[:50] if isinstance(models, list) else []:
        if isinstance(item, dict) and item.get("param") == "model":
            return as_text(item.get("hash"), 200)
    return ""


def _loras(names: Any, weights: Any) -> list[Lora]:
    if not isinstance(names, list):
        return []
    weights = weights if isinstance(weights, list) else []
    return [Lora(model_stem(n), as_float(weights[i]) if i < len(weights) else None)
            for i, n in enumerate(names[:50]) if isinstance(n, str) and n]
