"""Write the diffusers-layout config folders in resources/configs/ (JSON only, no weights).

The UNet and VAE configs are derived by diffusers' own converters
(`create_unet_diffusers_config_from_ldm`, `create_vae_diffusers_config_from_ldm`) from the values
of the original configs (CompVis v1-inference.yaml / v1-inpainting-inference.yaml, Stability's
v2-inference(-v).yaml, generative-models sd_xl_base.yaml / sd_xl_refiner.yaml), plus the fields
the hub configs add (upcast_attention for SD 2.x 768-v, force_upcast for the SDXL VAE). The text
encoder configs are those of the CLIP models the original configs name (OpenAI CLIP ViT-L/14,
OpenCLIP ViT-H/14 without its last layer, OpenCLIP ViT-bigG/14).

Run: python benchmarks/build_single_file_configs.py   (tests/test_single_file_configs.py checks
that the shipped files still match what this derives).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "resources" / "configs"

_VAE_DD = {"ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "z_channels": 4,
           "in_channels": 3, "out_ch": 3, "resolution": 256}
_SD1_UNET = {"in_channels": 4, "out_channels": 4, "model_channels": 320,
             "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
             "num_heads": 8, "transformer_depth": 1, "context_dim": 768}
_SD2_UNET = {"in_channels": 4, "out_channels": 4, "model_channels": 320,
             "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
             "num_head_channels": 64, "use_linear_in_transformer": True, "transformer_depth": 1,
             "context_dim": 1024}
_XL_UNET = {"adm_in_channels": 2816, "num_classes": "sequential", "in_channels": 4,
            "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2],
            "num_res_blocks": 2, "channel_mult": [1, 2, 4], "num_head_channels": 64,
            "use_linear_in_transformer": True, "transformer_depth": [1, 2, 10],
            "context_dim": 2048}
_REFINER_UNET = {"adm_in_channels": 2560, "num_classes": "sequential", "in_channels": 4,
                 "out_channels": 4, "model_channels": 384, "attention_resolutions": [4, 2],
                 "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_head_channels": 64,
                 "use_linear_in_transformer": True, "transformer_depth": 4,
                 "context_dim": [1280, 1280, 1280, 1280]}

_CLIP_L = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
           "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072,
           "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768,
           "max_position_embeddings": 77, "vocab_size": 49408, "layer_norm_eps": 1e-05,
           "attention_dropout": 0.0, "dropout": 0.0, "initializer_factor": 1.0,
           "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
# SD 2.x uses the penultimate layer of OpenCLIP ViT-H/14: diffusers keeps 23 of its 24 layers.
_OPEN_CLIP_H = {**_CLIP_L, "hidden_act": "gelu", "hidden_size": 1024, "intermediate_size": 4096,
                "num_attention_heads": 16, "num_hidden_layers": 23, "projection_dim": 512}
_OPEN_CLIP_G = {**_CLIP_L, "architectures": ["CLIPTextModelWithProjection"],
                "hidden_act": "gelu", "hidden_size": 1280, "intermediate_size": 5120,
                "num_attention_heads": 20, "num_hidden_layers": 32, "projection_dim": 1280}

_SD_SCHEDULER = {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
                 "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
                 "clip_sample": False, "set_alpha_to_one": False, "skip_prk_steps": True,
                 "steps_offset": 1, "prediction_type": "epsilon"}
_XL_SCHEDULER = {"_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085,
                 "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
                 "interpolation_type": "linear", "prediction_type": "epsilon",
                 "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
                 "steps_offset": 1, "timestep_spacing": "leading", "use_karras_sigmas": False,
                 "clip_sample": False}


def _ldm(unet: dict, scale_factor: float) -> dict:
    return {"model": {"params": {"scale_factor": scale_factor,
                                 "unet_config": {"params": unet},
                                 "first_stage_config": {"params": {"ddconfig": _VAE_DD}}}}}


def _derive(ldm: dict, image_size: int, extra_unet: dict, extra_vae: dict) -> tuple[dict, dict]:
    from diffusers.loaders.single_file_utils import (
        create_unet_diffusers_config_from_ldm,
        create_vae_diffusers_config_from_ldm,
    )

    unet = create_unet_diffusers_config_from_ldm(ldm, {}, image_size=image_size)
    vae = create_vae_diffusers_config_from_ldm(ldm, {}, image_size=image_size)
    unet = {"_class_name": "UNet2DConditionModel", **unet, **extra_unet}
    vae = {"_class_name": "AutoencoderKL", "act_fn": "silu", "norm_num_groups": 32, **vae,
           **extra_vae}
    return unet, vae


def _index(pipeline: str, parts: dict[str, list], **extra) -> dict:
    return {"_class_name": pipeline, **parts, **extra}


SD1_PARTS = {"scheduler": ["diffusers", "PNDMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "safety_checker": [None, None], "feature_extractor": [None, None]}
XL_PARTS = {"scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
REFINER_PARTS = {**XL_PARTS, "text_encoder": [None, None], "tokenizer": [None, None]}


def folders() -> dict[str, dict[str, dict]]:
    """{folder name: {relative json path: content}} for every shipped config folder."""
    out: dict[str, dict[str, dict]] = {}

    def sd(name, unet_params, size, sched, text, extra_unet=None, scale=0.18215):
        unet, vae = _derive(_ldm(unet_params, scale), size, extra_unet or {}, {})
        out[name] = {"model_index.json": _index("StableDiffusionPipeline", SD1_PARTS,
                                                requires_safety_checker=False),
                     "unet/config.json": unet, "vae/config.json": vae,
                     "text_encoder/config.json": text, "scheduler/scheduler_config.json": sched}

    sd("sd15", _SD1_UNET, 512, _SD_SCHEDULER, _CLIP_L)
    sd("sd15-inpainting", {**_SD1_UNET, "in_channels": 9}, 512, _SD_SCHEDULER, _CLIP_L)
    sd("sd2", _SD2_UNET, 512, _SD_SCHEDULER, _OPEN_CLIP_H)
    sd("sd2-v", _SD2_UNET, 768, {**_SD_SCHEDULER, "prediction_type": "v_prediction"},
       _OPEN_CLIP_H, extra_unet={"upcast_attention": True})
    sd("sd2-inpainting", {**_SD2_UNET, "in_channels": 9}, 512, _SD_SCHEDULER, _OPEN_CLIP_H)

    def xl(name, unet_params, parts, pipeline, texts, **index_extra):
        unet, vae = _derive(_ldm(unet_params, 0.13025), 1024, {}, {"force_upcast": True})
        files = {"model_index.json": _index(pipeline, parts, **index_extra),
                 "unet/config.json": unet, "vae/config.json": vae,
                 "scheduler/scheduler_config.json": _XL_SCHEDULER}
        for sub, cfg in texts.items():
            files[f"{sub}/config.json"] = cfg
        out[name] = files

    both = {"text_encoder": _CLIP_L, "text_encoder_2": _OPEN_CLIP_G}
    xl("sdxl-base", _XL_UNET, XL_PARTS, "StableDiffusionXLPipeline", both,
       force_zeros_for_empty_prompt=True)
    xl("sdxl-inpainting", {**_XL_UNET, "in_channels": 9}, XL_PARTS,
       "StableDiffusionXLInpaintPipeline", both, force_zeros_for_empty_prompt=True,
       requires_aesthetics_score=False)
    xl("sdxl-refiner", _REFINER_UNET, REFINER_PARTS, "StableDiffusionXLImg2ImgPipeline",
       {"text_encoder_2": _OPEN_CLIP_G}, force_zeros_for_empty_prompt=False,
       requires_aesthetics_score=True)
    return out


def main() -> int:
    for name, files in folders().items():
        for rel, content in files.items():
            path = ROOT / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {ROOT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
