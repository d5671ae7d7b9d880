"""Model families (SD 1.x, SD 2.x, SDXL), one module each, and how to tell them apart.

The family is read from the components' configs, as diffusers' folders and converted single
files hold them: an SDXL UNet has `addition_embed_type: text_time` (and `text_encoder_2`);
SD 2.x has an OpenCLIP text encoder (`hidden_act: gelu`, 1024 wide) or a v-prediction schedule.

A new family is one module: a `Family` subclass (its conditioning, VAE quirks, default size,
preview factors), an entry in FAMILIES and a rule in `detect_family`; the pipeline stays as it is.
Prompts reach every text encoder through `text.encode_text`, one call per encoder and prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdstudio.core.families.base import Conditioning, Family
from sdstudio.core.families.sd1 import SD1
from sdstudio.core.families.sd2 import SD2
from sdstudio.core.families.sdxl import SDXL

FAMILIES: dict[str, Family] = {f.name: f for f in (SD1(), SD2(), SDXL())}

# diffusers pipelines that run the families above; other model_index classes are named instead.
RUNNABLE_PIPELINES = {
    "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline",
    "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
    "StableDiffusionXLInpaintPipeline",
}
_KNOWN_OTHERS = {  # model_index `_class_name` prefix -> what users call it
    "StableDiffusion3": "a Stable Diffusion 3 model",
    "Flux": "a Flux model",
    "StableCascade": "a Stable Cascade model",
    "StableDiffusionUpscale": "an SD x4 upscaler",
    "StableDiffusionLatentUpscale": "an SD latent upscaler",
    "StableDiffusionDepth2Img": "an SD 2 depth-to-image model",
    "StableUnCLIP": "a Stable unCLIP model",
    "StableDiffusionInstructPix2Pix": "an InstructPix2Pix model",
    "PixArt": "a PixArt model",
    "Kandinsky": "a Kandinsky model",
    "Wuerstchen": "a Würstchen model",
    "AuraFlow": "an AuraFlow model",
    "HunyuanDiT": "a Hunyuan-DiT model",
    "Lumina": "a Lumina model",
    "Sana": "a Sana model",
    "Kolors": "a Kolors model",
    "StableVideoDiffusion": "a Stable Video Diffusion model",
}


def family(name: str) -> Family:
    return FAMILIES[name]


def detect_family(
    unet_config: Mapping[str, Any],
    text_encoder_config: Mapping[str, Any] | None = None,
    scheduler_config: Mapping[str, Any] | None = None,
) -> Family:
    """The family of a model from its UNet, (first) text encoder and scheduler configs."""
    if unet_config.get("addition_embed_type") == "text_time":
        return FAMILIES["sdxl"]
    text_config = text_encoder_config or {}
    openclip = text_config.get("hidden_act") == "gelu" or text_config.get("hidden_size") == 1024
    v_pred = (scheduler_config or {}).get("prediction_type") == "v_prediction"
    if openclip or v_pred or unet_config.get("cross_attention_dim") == 1024:
        return FAMILIES["sd2"]
    return FAMILIES["sd1"]


def family_of_components(unet, text_encoder, text_encoder_2=None, scheduler_config=None) -> Family:
    """`detect_family` for built components (what a single-file loader has in hand)."""
    text = text_encoder if text_encoder is not None else text_encoder_2
    text_config = text.config.to_dict() if text is not None else None
    return detect_family(unet.config, text_config, scheduler_config)


def unsupported_pipeline(class_name: str | None) -> str | None:
    """What a diffusers pipeline we do not run is (for the one-sentence refusal), else None."""
    if not class_name or class_name in RUNNABLE_PIPELINES:
        return None
    for prefix, what in _KNOWN_OTHERS.items():
        if class_name.startswith(prefix):
            return f"{what} ({class_name})"
    return f"a {class_name} model"


__all__ = [
    "FAMILIES", "Conditioning", "Family", "detect_family", "family", "family_of_components",
    "unsupported_pipeline",
]
