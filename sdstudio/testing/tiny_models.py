"""Tiny random-weight Stable Diffusion models in diffusers layout, for tests and benchmarks.

`build_tiny_model` has SD 1.x's structure (CLIP text encoder + tokenizer, UNet with
cross-attention, VAE with 4 latent channels and 8x downsampling, SD's noise schedule), only much
smaller; `build_tiny_sd2_model` has SD 2.x's (OpenCLIP-style encoder, linear projections, an
optional v-prediction schedule) and `build_tiny_sdxl_model` SDXL's (two text encoders, the second
with a projection, size-conditioned UNet; inpainting and refiner variants), after diffusers' own
`get_dummy_components`. Built offline in seconds; loadable with diffusers' `from_pretrained`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

# SD 1.x's own scheduler config (v1-inference.yaml / runwayml model_index).
SD_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "clip_sample": False,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
}

_WORDS = (
    "a photo of the cat dog red green blue yellow circle square triangle on in background "
    "with and painting portrait landscape tree house sky sunset beautiful big small"
).split()


@dataclass(frozen=True)
class TinySize:
    """Widths of the tiny model; `bench` uses a wider one so timings mean something."""

    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers: int = 1
    text_hidden: int = 32
    text_layers: int = 2
    vae_channels: tuple[int, ...] = (8, 16, 16, 16)
    sample_size: int = 4  # latent size: native image size is 8x this


TINY = TinySize()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode char table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """Byte-level base vocabulary plus merges that spell a few common prompt words."""
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[str] = []
    for word in _WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            rule = f"{parts[0]} {parts[1]}"
            if rule not in merges:
                merges.append(rule)
                tokens.append(merged)
            parts = [merged] + parts[2:]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab: dict[str, int] = {}
    for t in tokens:
        vocab.setdefault(t, len(vocab))
    return vocab, merges


def write_tokenizer(path: Path, pad_token: str | None = None) -> Path:
    """Write a CLIP tokenizer (vocab.json + merges.txt) built offline, and load-check it.

    `pad_token="!"` pads as the OpenCLIP tokenizers of SD 2.x and SDXL's second encoder do.
    """
    from transformers import CLIPTokenizer

    path.mkdir(parents=True, exist_ok=True)
    vocab, merges = _vocab_and_merges()
    (path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}
    if pad_token is not None:
        config["pad_token"] = pad_token
    (path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    CLIPTokenizer.from_pretrained(str(path))  # fails here, not later, if the files are wrong
    return path


def _text_encoder(
    size: TinySize, vocab_size: int, hidden_act: str = "quick_gelu", projection: bool = False
):
    """CLIP text encoder: OpenAI CLIP's quick_gelu (SD 1.x, SDXL's first), OpenCLIP's gelu
    (SD 2.x, SDXL's second); `projection=True` adds the pooled projection (SDXL's second)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=size.text_hidden,
        intermediate_size=size.text_hidden * 2,
        num_hidden_layers=size.text_layers,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        projection_dim=size.text_hidden,
        hidden_act=hidden_act,
    )
    return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)


def _unet(size: TinySize, in_channels: int, cross_attention_dim: int | None = None, **extra):
    """`extra`: SD 2.x's `use_linear_projection`, SDXL's `addition_embed_type` and friends."""
    from diffusers import UNet2DConditionModel

    n = len(size.unet_channels)
    return UNet2DConditionModel(
        sample_size=size.sample_size,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=size.unet_channels,
        layers_per_block=size.unet_layers,
        down_block_types=("CrossAttnDownBlock2D",) * (n - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n - 1),
        cross_attention_dim=cross_attention_dim or size.text_hidden,
        attention_head_dim=8,
        norm_num_groups=min(32, size.unet_channels[0]),
        **extra,
    )


def _vae(size: TinySize, scaling_factor: float = 0.18215, force_upcast: bool = True):
    from diffusers import AutoencoderKL

    n = len(size.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=size.vae_channels,
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        norm_num_groups=min(32, size.vae_channels[0]),
        sample_size=size.sample_size * 8,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    )


def _save(pipe, path: Path, pad_tokens: dict[str, str | None]) -> Path:
    """save_pretrained, then the plain BPE tokenizer files again (save_pretrained may rewrite
    a tokenizer folder in the fast tokenizer's format)."""
    pipe.save_pretrained(str(path), safe_serialization=True)
    for folder, pad in pad_tokens.items():
        write_tokenizer(path / folder, pad_token=pad)
    return path


def build_tiny_model(
    path: str | Path, seed: int = 0, inpainting: bool = False, size: TinySize = TINY
) -> Path:
    """Write a tiny random SD 1.x model (diffusers layout) to `path` and return it.

    `inpainting=True` gives a 9-input-channel UNet (latents + mask + masked-image latents).
    """
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    path = Path(path)
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer(path / "tokenizer")))
    torch.manual_seed(seed)
    unet = _unet(size, 9 if inpainting else 4)
    torch.manual_seed(seed + 1)
    vae = _vae(size)
    torch.manual_seed(seed + 2)
    text_encoder = _text_encoder(size, len(tokenizer))
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=PNDMScheduler.from_config(SD_SCHEDULER_CONFIG), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    return _save(pipe, path, {"tokenizer": None})


def build_tiny_sd2_model(
    path: str | Path, seed: int = 0, inpainting: bool = False, v_prediction: bool = False,
    size: TinySize = TINY,
) -> Path:
    """A tiny random SD 2.x model: OpenCLIP-style text encoder (gelu, "!" padding), a UNet with
    linear projections; `v_prediction=True` is the 768-v flavour (its scheduler config)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    path = Path(path)
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer(path / "tokenizer", "!")))
    torch.manual_seed(seed)
    unet = _unet(size, 9 if inpainting else 4, use_linear_projection=True)
    torch.manual_seed(seed + 1)
    vae = _vae(size)
    torch.manual_seed(seed + 2)
    text_encoder = _text_encoder(size, len(tokenizer), hidden_act="gelu")
    scheduler_config = {**SD_SCHEDULER_CONFIG, "prediction_type": "epsilon"}
    if v_prediction:
        scheduler_config["prediction_type"] = "v_prediction"
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler.from_config(scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    return _save(pipe, path, {"tokenizer": "!"})


# SDXL base's scheduler config (EulerDiscreteScheduler, "leading" spacing).
SDXL_SCHEDULER_CONFIG = {
    **SD_SCHEDULER_CONFIG, "timestep_spacing": "leading", "interpolation_type": "linear",
    "prediction_type": "epsilon", "sample_max_value": 1.0, "use_karras_sigmas": False,
}


def build_tiny_sdxl_model(
    path: str | Path, seed: int = 0, inpainting: bool = False, refiner: bool = False,
    size: TinySize = TINY,
) -> Path:
    """A tiny random SDXL model: text encoders 1 (CLIP) and 2 (OpenCLIP with projection), their
    hidden states concatenated for cross-attention, a UNet conditioned on the pooled text and
    6 size ids. `inpainting=True`: 9-channel UNet. `refiner=True`: only text encoder 2, and
    5 time ids (an aesthetic score in place of the target size)."""
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
    )
    from transformers import CLIPTokenizer

    path = Path(path)
    tokenizer = None
    if not refiner:
        tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer(path / "tokenizer")))
    tokenizer_2 = CLIPTokenizer.from_pretrained(str(write_tokenizer(path / "tokenizer_2", "!")))
    time_dim, time_ids = 8, 5 if refiner else 6
    torch.manual_seed(seed)
    unet = _unet(
        size, 9 if inpainting else 4,
        cross_attention_dim=size.text_hidden * (1 if refiner else 2),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=time_dim * time_ids + size.text_hidden,
    )
    torch.manual_seed(seed + 1)
    vae = _vae(size, scaling_factor=0.13025)
    torch.manual_seed(seed + 2)
    text_encoder = None if tokenizer is None else _text_encoder(size, len(tokenizer))
    torch.manual_seed(seed + 3)
    text_encoder_2 = _text_encoder(size, len(tokenizer_2), hidden_act="gelu", projection=True)
    components = dict(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG),
    )
    if refiner:  # as stabilityai's refiner: aesthetic score, an empty negative prompt encoded
        refiner_pipe = StableDiffusionXLImg2ImgPipeline(
            **components, requires_aesthetics_score=True, force_zeros_for_empty_prompt=False,
            add_watermarker=False,
        )
        return _save(refiner_pipe, path, {"tokenizer_2": "!"})
    cls = StableDiffusionXLInpaintPipeline if inpainting else StableDiffusionXLPipeline
    pipe = cls(**components, force_zeros_for_empty_prompt=True, add_watermarker=False)
    return _save(pipe, path, {"tokenizer": None, "tokenizer_2": "!"})
