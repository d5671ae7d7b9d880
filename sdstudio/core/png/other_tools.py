"""Other tools' chunks: ComfyUI's `prompt` graph and InvokeAI's `invokeai_metadata` (v3+).

Kept small on purpose: `core/png/readers/` (one module per tool, with a dispatcher) replaces it.
"""

from __future__ import annotations

import json
from typing import Any

from sdstudio.core.png.a1111 import format_number, format_settings, model_name
from sdstudio.core.png.parameters import MetadataError, Parameters


def parse_comfyui(graph_json: str) -> Parameters:
    """ComfyUI's `prompt` chunk: the node graph; read the first sampler and what feeds it."""
    try:
        return _parse_comfyui(graph_json)
    except MetadataError:
        raise
    except Exception as exc:  # any odd graph: still only a parse error
        raise MetadataError(f"The ComfyUI workflow in this image could not be read ({exc}).") from exc


def _parse_comfyui(graph_json: str) -> Parameters:
    try:
        graph = json.loads(graph_json)
        node_id, sampler = next(
            (k, v) for k, v in graph.items()
            if isinstance(v, dict) and str(v.get("class_type", "")).startswith("KSampler")
        )
    except (ValueError, StopIteration, AttributeError) as exc:
        raise MetadataError("The ComfyUI workflow in this image has no sampler to read.") from exc
    inputs = sampler.get("inputs", {})

    def follow(ref: Any, *keys: str) -> Any:
        """A link is [node_id, output]; follow it (through a few hops) to a node's input."""
        for _ in range(8):
            if not (isinstance(ref, list) and ref and str(ref[0]) in graph):
                return ref
            node_inputs = graph[str(ref[0])].get("inputs", {})
            ref = next((node_inputs[k] for k in keys if k in node_inputs), None)
        return ref

    settings: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if value is not None and not isinstance(value, (list, dict)):
            settings[key] = format_number(value) if isinstance(value, float) else str(value)

    put("Steps", inputs.get("steps"))
    put("Sampler", inputs.get("sampler_name"))
    put("Schedule type", inputs.get("scheduler"))
    put("CFG scale", inputs.get("cfg"))
    put("Seed", follow(inputs.get("seed", inputs.get("noise_seed")), "seed", "value"))
    latent = inputs.get("latent_image")
    w, h = follow(latent, "width"), follow(latent, "height")
    if isinstance(w, int) and isinstance(h, int):
        settings["Size"] = f"{w}x{h}"
    ckpt = follow(inputs.get("model"), "ckpt_name", "model")
    if isinstance(ckpt, str):
        settings["Model"] = model_name(ckpt)
    if isinstance(inputs.get("denoise"), (int, float)) and inputs["denoise"] < 1:
        put("Denoising strength", float(inputs["denoise"]))
    pos = follow(inputs.get("positive"), "text", "text_g", "conditioning")
    neg = follow(inputs.get("negative"), "text", "text_g", "conditioning")
    return Parameters(
        prompt=pos if isinstance(pos, str) else "",
        negative_prompt=neg if isinstance(neg, str) else "",
        settings=settings, source="comfyui", text=format_settings(settings),
    )


def parse_invokeai(meta_json: str) -> Parameters:
    """InvokeAI's `invokeai_metadata` chunk (v3+): a flat JSON object."""
    try:
        return _parse_invokeai(meta_json)
    except MetadataError:
        raise
    except Exception as exc:
        raise MetadataError(f"The InvokeAI metadata in this image could not be read ({exc}).") from exc


def _parse_invokeai(meta_json: str) -> Parameters:
    try:
        meta = json.loads(meta_json)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise MetadataError("The InvokeAI metadata in this image is not valid JSON.") from exc
    settings: dict[str, str] = {}
    for key, name in (("steps", "Steps"), ("scheduler", "Sampler"), ("cfg_scale", "CFG scale"),
                      ("seed", "Seed"), ("strength", "Denoising strength")):
        v = meta.get(key)
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            settings[name] = format_number(v) if isinstance(v, float) else str(v)
    if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
        settings["Size"] = f"{meta['width']}x{meta['height']}"
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    if isinstance(model, str):
        settings["Model"] = model
    pos, neg = meta.get("positive_prompt", ""), meta.get("negative_prompt", "")
    return Parameters(
        prompt=pos if isinstance(pos, str) else "",
        negative_prompt=neg if isinstance(neg, str) else "",
        settings=settings, source="invokeai", text=format_settings(settings),
    )


def parameters_from_other_tools(info: dict[str, Any]) -> Parameters | None:
    """Parameters from another tool's chunk; None when there is none."""
    if isinstance(info.get("invokeai_metadata"), str):
        return parse_invokeai(info["invokeai_metadata"])
    if isinstance(info.get("prompt"), str):
        return parse_comfyui(info["prompt"])
    return None
