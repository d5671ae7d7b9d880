"""InvokeAI: v1 `Dream` (a command line), v2 `sd-metadata` (JSON), v3+ `invokeai_metadata`
(flat JSON) and `invokeai_graph` (the node graph, read when there is no metadata chunk)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata, short_text
from sdstudio.core.png.readers.values import (
    MAX_PROMPT,
    as_float,
    as_int,
    as_text,
    load_object,
    positive,
    width_height,
)

_V3_MAPPED = {"positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "scheduler",
              "width", "height", "model", "loras", "clip_skip", "strength", "app_version",
              "hrf_enabled", "hrf_method", "hrf_strength", "positive_style_prompt",
              "negative_style_prompt"}
_NEGATIVE_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    meta = load_object(chunks.get("invokeai_metadata"))
    if meta is not None:
        return _read_v3(meta)
    graph = load_object(chunks.get("invokeai_graph"))
    if graph is not None:
        return _read_graph(graph)
    sd = load_object(chunks.get("sd-metadata"))
    if sd is not None and isinstance(sd.get("image"), dict):
        return _read_v2(sd, chunks.get("Dream"))
    dream = chunks.get("Dream")
    if isinstance(dream, str):
        return _read_dream(dream)
    return None


def _sampler(out: ParsedMetadata, name: Any) -> None:
    out.set_sampler(name, "", "InvokeAI")  # InvokeAI's schedulers name the sampler and schedule


def _model_name(model: Any) -> tuple[str, str]:
    """v3 {model_name, base_model}, v4+ {key, hash, name, base, type}, or a plain name."""
    if isinstance(model, dict):
        name = model.get("name") or model.get("model_name") or ""
        return as_text(name, 500), as_text(model.get("hash"), 200)
    return as_text(model, 500), ""


def _read_v3(meta: dict[str, Any]) -> ParsedMetadata:
    out = ParsedMetadata(source="invokeai")
    out.prompt = as_text(meta.get("positive_prompt"))
    out.negative_prompt = as_text(meta.get("negative_prompt"))
    out.seed = as_int(meta.get("seed"))
    out.steps = positive(as_int(meta.get("steps")))
    out.cfg = as_float(meta.get("cfg_scale"))
    _sampler(out, meta.get("scheduler"))
    out.width, out.height = width_height(meta)
    out.model, out.model_hash = _model_name(meta.get("model"))
    loras = meta.get("loras")
    for item in loras[:100] if isinstance(loras, list) else []:
        if isinstance(item, dict):
            name, _ = _model_name(item.get("lora", item.get("model")))
            if name:
                out.loras.append(Lora(name, as_float(item.get("weight"))))
    skip = as_int(meta.get("clip_skip"))
    out.clip_skip = skip if skip else None
    strength = as_float(meta.get("strength"))
    if strength is not None and strength < 1 and "img2img" in str(meta.get("generation_mode")):
        out.strength = strength
    out.version = as_text(meta.get("app_version"), 100)
    if meta.get("hrf_enabled") is True:
        out.hires = Hires(denoise=as_float(meta.get("hrf_strength")),
                          upscaler=as_text(meta.get("hrf_method"), 100))
    for key in ("positive_style_prompt", "negative_style_prompt"):
        if as_text(meta.get(key)):
            out.extra[key] = as_text(meta.get(key), 2000)
    out.keep_unmapped(meta, _V3_MAPPED)
    return out


def _split_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI 1-2 put the negative prompt in square brackets inside the prompt."""
    negatives = _NEGATIVE_BRACKETS.findall(prompt)
    if not negatives:
        return prompt, ""
    positive_text = _NEGATIVE_BRACKETS.sub("", prompt)
    return " ".join(positive_text.split()).strip(" ,"), ", ".join(n.strip() for n in negatives)


def _read_v2(sd: dict[str, Any], dream: Any) -> ParsedMetadata:
    image = sd["image"]
    out = ParsedMetadata(source="invokeai")
    prompt = image.get("prompt")
    if isinstance(prompt, list):  # [{"prompt": ..., "weight": ...}, ...]
        prompt = " ".join(p.get("prompt", "") for p in prompt[:50]
                          if isinstance(p, dict) and isinstance(p.get("prompt"), str))
    out.prompt, out.negative_prompt = _split_negative(as_text(prompt))
    out.seed = as_int(image.get("seed"))
    out.steps = positive(as_int(image.get("steps")))
    out.cfg = as_float(image.get("cfg_scale"))
    _sampler(out, image.get("sampler"))
    out.width, out.height = width_height(image)
    out.model = as_text(sd.get("model_weights"), 500)
    out.model_hash = as_text(sd.get("model_hash"), 200)
    out.version = as_text(sd.get("app_version"), 100)
    strength = as_float(image.get("strength"))
    if image.get("type") == "img2img" and strength is not None:
        out.strength = strength
    if image.get("hires_fix") is True:
        out.hires = Hires()
    for key in ("postprocessing", "variations", "seamless", "threshold", "perlin", "type"):
        if image.get(key) not in (None, [], False, 0):
            out.extra[key] = short_text(image[key], 500)
    return out


_DREAM_FLAGS = {"-s": "steps", "--steps": "steps", "-S": "seed", "--seed": "seed",
                "-W": "width", "--width": "width", "-H": "height", "--height": "height",
                "-C": "cfg", "--cfg_scale": "cfg", "-A": "sampler", "--sampler": "sampler",
                "-f": "strength", "--strength": "strength", "-m": "model", "--model": "model"}


def _read_dream(dream: str) -> ParsedMetadata | None:
    """'"a cat [blurry]" -s 50 -S 42 -W 512 -H 768 -C 7.5 -A k_lms'."""
    try:
        words = shlex.split(dream[:MAX_PROMPT])
    except ValueError:
        return None
    if not words:
        return None
    out = ParsedMetadata(source="invokeai")
    out.prompt, out.negative_prompt = _split_negative(words[0])
    values: dict[str, str] = {}
    rest = words[1:]
    for i, word in enumerate(rest):
        key = _DREAM_FLAGS.get(word)
        if key and i + 1 < len(rest):
            values[key] = rest[i + 1]
        elif word.startswith("-") and not key and i + 1 < len(rest):
            out.extra[word.lstrip("-")[:50]] = rest[i + 1][:200]
    out.steps, out.seed = positive(as_int(values.get("steps"))), as_int(values.get("seed"))
    out.width, out.height = width_height(values)
    out.cfg = as_float(values.get("cfg"))
    out.strength = as_float(values.get("strength"))
    out.model = values.get("model", "")
    if "sampler" in values:
        _sampler(out, values["sampler"])
    return out


def _read_graph(graph: dict[str, Any]) -> ParsedMetadata | None:
    """The v3+ graph: {nodes: {id: {type, ...fields}}, edges: [{source, destination}]}."""
    nodes = graph.get("nodes")
    if not isinstance(nodes, dict):
        return None
    nodes = {k: v for k, v in list(nodes.items())[:10_000] if isinstance(v, dict)}
    meta = next((n for n in nodes.values() if n.get("type") in ("core_metadata", "metadata")), None)
    if meta is not None:
        return _read_v3(meta)
    edges = graph["edges"] if isinstance(graph.get("edges"), list) else []
    feeds: dict[tuple[str, str], str] = {}
    for e in edges[:100_000]:
        if isinstance(e, dict) and isinstance(e.get("source"), dict) \
                and isinstance(e.get("destination"), dict):
            feeds[(str(e["destination"].get("node_id")), str(e["destination"].get("field")))] = \
                str(e["source"].get("node_id"))
    out = ParsedMetadata(source="invokeai")
    denoise = next((k for k, n in nodes.items() if n.get("type") == "denoise_latents"), None)
    for node in nodes.values():
        kind = node.get("type")
        if kind == "noise":
            out.seed = as_int(node.get("seed"))
            out.width, out.height = width_height(node)
        elif kind in ("main_model_loader", "sdxl_model_loader"):
            out.model, out.model_hash = _model_name(node.get("model"))
        elif kind in ("lora_loader", "sdxl_lora_loader"):
            name, _ = _model_name(node.get("lora"))
            if name:
                out.loras.append(Lora(name, as_float(node.get("weight"))))
    if denoise is not None:
        d = nodes[denoise]
        out.steps, out.cfg = positive(as_int(d.get("steps"))), as_float(d.get("cfg_scale"))
        _sampler(out, d.get("scheduler"))
        for field_name, target in (("positive_conditioning", "prompt"),
                                   ("negative_conditioning", "negative_prompt")):
            src = nodes.get(feeds.get((denoise, field_name), ""), {})
            setattr(out, target, as_text(src.get("prompt", src.get("style", ""))))
    return out if out.prompt or out.model or out.seed is not None else None
