"""Easy Diffusion: one text chunk per setting, named either by its task keys (`prompt`,
`num_inference_steps`, `use_stable_diffusion_model`, ...) or by their labels (`Prompt`,
`Steps`, `Stable Diffusion model`, ...), as its save_utils TASK_TEXT_MAPPING lists them."""

from __future__ import annotations

from collections.abc import Mapping

from sdstudio.core.png.readers.model import Lora, ParsedMetadata
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_text,
    load_json,
    model_stem,
    positive,
)

_LABELS = {"prompt": "Prompt", "negative_prompt": "Negative Prompt", "seed": "Seed",
           "use_stable_diffusion_model": "Stable Diffusion model", "clip_skip": "Clip Skip",
           "use_vae_model": "VAE model", "sampler_name": "Sampler", "width": "Width",
           "height": "Height", "num_inference_steps": "Steps", "guidance_scale": "Guidance Scale",
           "prompt_strength": "Prompt Strength", "use_lora_model": "LoRA model",
           "lora_alpha": "LoRA Strength", "use_upscale": "Use Upscaling",
           "upscale_amount": "Upscale By", "use_face_correction": "Use Face Correction",
           "tiling": "Seamless Tiling", "use_hypernetwork_model": "Hypernetwork model"}
_MAPPED = {"prompt", "negative_prompt", "seed", "use_stable_diffusion_model", "clip_skip",
           "sampler_name", "width", "height", "num_inference_steps", "guidance_scale",
           "use_lora_model", "lora_alpha"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    if "use_stable_diffusion_model" in chunks or "num_inference_steps" in chunks:
        keys = {k: k for k in _LABELS}
    elif "Stable Diffusion model" in chunks and "Guidance Scale" in chunks:
        keys = _LABELS
    else:
        return None

    def get(key: str) -> str:
        value = chunks.get(keys[key])
        return value if isinstance(value, str) else ""

    out = ParsedMetadata(source="easydiffusion")
    out.prompt, out.negative_prompt = as_text(get("prompt")), as_text(get("negative_prompt"))
    out.seed = as_int(get("seed"))
    out.steps = positive(as_int(get("num_inference_steps")))
    out.cfg = as_float(get("guidance_scale"))
    out.set_sampler(get("sampler_name"), "", "Easy Diffusion")
    out.width, out.height = positive(as_int(get("width"))), positive(as_int(get("height")))
    out.model = model_stem(as_text(get("use_stable_diffusion_model"), 500))
    skip = as_int(get("clip_skip"))
    out.clip_skip = 2 if get("clip_skip").lower() == "true" else \
        (skip if skip and skip > 1 else None)  # old versions: a checkbox for "clip skip 2"
    out.loras = _loras(get("use_lora_model"), get("lora_alpha"))
    for key in _LABELS:
        if key not in _MAPPED and get(key) not in ("", "None", "False", "false"):
            out.extra[key] = get(key)[:500]
    return out


def _loras(names: str, weights: str) -> list[Lora]:
    """One name or a JSON list of names (newer versions), with matching weights."""
    parsed = load_json(names) if names.startswith("[") else None
    name_list = [n for n in parsed if isinstance(n, str)] if isinstance(parsed, list) else \
        ([names] if names and names != "None" else [])
    parsed_w = load_json(weights) if weights.startswith("[") else None
    w_list = parsed_w if isinstance(parsed_w, list) else [weights]
    return [Lora(model_stem(n), as_float(w_list[i]) if i < len(w_list) else None)
            for i, n in enumerate(name_list[:50]) if n]
