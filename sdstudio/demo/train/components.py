"""The demo model's components: VAE, UNet, text encoder, noise schedule, tokenizer."""

from __future__ import annotations

import torch

from sdstudio.demo import dataset
from sdstudio.demo.tokenizer import build_tokenizer
from sdstudio.demo.train.common import MAX_TOKENS, TrainConfig


def make_vae(cfg: TrainConfig, scaling_factor: float = 1.0, init_logvar: float | None = None):
    """GroupNorm over few channels per group erases the colour of flat regions (a plain crop
    normalises to zero), so the demo VAE uses groups=1: the colour survives as a pattern."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=tuple(cfg.vae_channels), layers_per_block=cfg.vae_layers,
        norm_num_groups=cfg.vae_groups, sample_size=128, scaling_factor=scaling_factor,
    )
    if init_logvar is not None:  # start with little posterior noise, or the decoder sees only noise
        with torch.no_grad():
            vae.encoder.conv_out.bias[4:].fill_(init_logvar)
    return vae


def fold_latent_norm(vae, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make the VAE's latents zero-mean, unit-std per channel without changing what it decodes.

    z' = (z - mean) / std is folded into `quant_conv` (the posterior's mean and log-variance) and
    undone in `post_quant_conv`, so the model keeps Stable Diffusion's layout (one scaling factor,
    here 1.0) while every latent channel gets the same amplitude for the UNet."""
    m, s = mean.double(), std.double()
    with torch.no_grad():
        qw, qb = vae.quant_conv.weight.double(), vae.quant_conv.bias.double()
        qw[:4] /= s.view(4, 1, 1, 1)
        qb[:4] = (qb[:4] - m) / s
        qb[4:] -= 2 * torch.log(s)
        pw, pb = vae.post_quant_conv.weight.double(), vae.post_quant_conv.bias.double()
        pb = pb + pw[:, :, 0, 0] @ m
        pw = pw * s.view(1, 4, 1, 1)
        for param, value in ((vae.quant_conv.weight, qw), (vae.quant_conv.bias, qb),
                             (vae.post_quant_conv.weight, pw), (vae.post_quant_conv.bias, pb)):
            param.copy_(value.to(param.dtype))


def make_unet(cfg: TrainConfig):
    from diffusers import UNet2DConditionModel

    attn = tuple(cfg.unet_attention)
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=tuple(cfg.unet_channels),
        # by default attention (self + cross) at 8x8 and 4x4 only: 16x16 is plain ResNets (speed)
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        cross_attention_dim=cfg.text_width, attention_head_dim=8, norm_num_groups=8,
    )


def make_text_encoder(cfg: TrainConfig, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    conf = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_width, intermediate_size=cfg.text_width * 4,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        projection_dim=cfg.text_width, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(conf)


def make_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", prediction_type="epsilon",
                         clip_sample=False, steps_offset=1, timestep_spacing="leading")


def tokenizer_for(cfg: TrainConfig):
    return build_tokenizer(dataset.vocabulary(), cfg.work / "tokenizer_src", MAX_TOKENS)
