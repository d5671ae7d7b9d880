"""A tiny random-weight Stable Diffusion model in diffusers layout, for tests and benchmarks.

Same structure as SD 1.x (CLIP text encoder + tokenizer, UNet with cross-attention, VAE with 4
latent channels and 8x downsampling, SD's noise schedule), only much smaller. Built offline in
seconds; loadable with `StableDiffusionPipeline.from_pretrained(path)`.
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


def write_tokenizer(path: Path) -> Path:
    """Write a CLIP tokenizer (vocab.json + merges.txt) built offline, and load-check it."""
    from transformers import CLIPTokenizer

    from sdstudio.demo.tokenizer import write_vocab_files

    write_vocab_files(list(_WORDS), path)  # the demo model's BPE writer: one writer, not two
    (path / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}), encoding="utf-8"
    )
    CLIPTokenizer.from_pretrained(str(path))  # fails here, not later, if the files are wrong
    return path


def _text_encoder(size: TinySize, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

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
    )
    return CLIPTextModel(cfg)


def _unet(size: TinySize, in_channels: int):
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
        cross_attention_dim=size.text_hidden,
        attention_head_dim=8,
        norm_num_groups=min(32, size.unet_channels[0]),
    )


def _vae(size: TinySize):
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
        scaling_factor=0.18215,
    )


def build_tiny_model(
    path: str | Path, seed: int = 0, inpainting: bool = False, size: TinySize = TINY
) -> Path:
    """Write a tiny random SD model (diffusers layout) to `path` and return it.

    `inpainting=True` gives a 9-input-channel UNet (latents + mask + masked-image latents).
    """
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    path = Path(path)
    tok_dir = write_tokenizer(path / "tokenizer")
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    torch.manual_seed(seed)
    unet = _unet(size, 9 if inpainting else 4)
    torch.manual_seed(seed + 1)
    vae = _vae(size)
    torch.manual_seed(seed + 2)
    text_encoder = _text_encoder(size, len(tokenizer))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=PNDMScheduler.from_config(SD_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(path), safe_serialization=True)
    # save_pretrained may rewrite the tokenizer folder; keep the plain BPE files there too.
    write_tokenizer(path / "tokenizer")
    return path
