"""SDXL base, inpainting (9-channel UNet) and refiner: two text encoders and size conditioning.

As `StableDiffusionXLPipeline` (and its img2img / inpaint siblings): the penultimate hidden
states of both encoders are concatenated, the pooled projection of `text_encoder_2` and the
`add_time_ids` (original size, crop top-left, target size; the refiner: an aesthetic score
instead of the target size) go to the UNet as added conditioning. An empty negative prompt
becomes zeros where the model says `force_zeros_for_empty_prompt`. The VAE runs in fp32 when
its config says `force_upcast` (SDXL's original VAE overflows in fp16).
"""

from __future__ import annotations

import torch

from sdstudio.core.errors import UserError
from sdstudio.core.families import text
from sdstudio.core.families.base import Conditioning, Family, cfg_join
from sdstudio.core.latents import SDXL_LATENT_RGB, SDXL_LATENT_RGB_BIAS, with_bias

AESTHETIC_SCORE = 6.0  # diffusers' defaults for the refiner's aesthetic conditioning
NEGATIVE_AESTHETIC_SCORE = 2.5


class SDXL(Family):
    name = "sdxl"
    label = "SDXL"
    default_size = 1024
    latent_rgb = with_bias(SDXL_LATENT_RGB, SDXL_LATENT_RGB_BIAS)

    def describe(self, model) -> str:
        return f"{self.label} refiner" if model.text_encoder is None else super().describe(model)

    # -- conditioning ----------------------------------------------------------------------------

    def conditioning(self, model, req, do_cfg, notices) -> Conditioning:
        batch = req.batch_size
        embeds, pooled = self._encode(model, req.prompt)
        time_ids, negative_time_ids = self._time_ids(model, req, embeds.dtype)
        positive = self._batched(model, batch, embeds, pooled, time_ids)
        if not do_cfg:
            return positive
        flags = model.pipeline_config
        zeros = not req.negative_prompt and flags.get("force_zeros_for_empty_prompt", True)
        if zeros:
            negative, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        else:
            negative, negative_pooled = self._encode(model, req.negative_prompt)
        return cfg_join(
            self._batched(model, batch, negative, negative_pooled, negative_time_ids), positive
        )

    @staticmethod
    def _batched(model, batch: int, embeds, pooled, time_ids) -> Conditioning:
        device = model.device
        added = {"text_embeds": pooled.repeat(batch, 1).to(device),
                 "time_ids": time_ids.repeat(batch, 1).to(device)}
        return Conditioning(embeds.repeat(batch, 1, 1).to(device), added)

    @staticmethod
    def _encode(model, prompt: str):
        """Penultimate hidden states of each encoder, concatenated; the first pooled output.

        A1111 weights and chunks each encoder's tokens alike; the pooled output is the second
        encoder's for the first 75-token chunk. (A1111's clip skip leaves SDXL alone by default.)
        """
        pairs = [(model.tokenizer, model.text_encoder), (model.tokenizer_2, model.text_encoder_2)]
        outs = [
            text.encode_text(tok, enc, prompt or "", hidden_layer=-2)
            for tok, enc in pairs
            if enc is not None
        ]
        pooled = next(o.pooled for o in outs if o.pooled is not None)
        embeds = torch.cat([o.hidden for o in outs], dim=-1)
        return embeds.to(dtype=model.text_encoder_2.dtype), pooled

    @staticmethod
    def _time_ids(model, req, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) `add_time_ids` of one image, as diffusers' `_get_add_time_ids`."""
        size = (req.height, req.width)  # original and target size: the image's, no crop
        if aesthetic_conditioning(model):
            if req.mode == "txt2img":
                raise UserError(
                    "This SDXL refiner only refines an image: give it an init image (img2img)."
                )
            positive = [*size, 0, 0, AESTHETIC_SCORE]
            negative = [*size, 0, 0, NEGATIVE_AESTHETIC_SCORE]
        else:
            positive = negative = [*size, 0, 0, *size]
        projection = model.text_encoder_2.config.projection_dim
        expected = model.unet.add_embedding.linear_1.in_features
        if model.unet.config.addition_time_embed_dim * len(positive) + projection != expected:
            raise UserError(
                "This SDXL UNet's added conditioning does not fit its text encoder "
                f"(it expects {expected} values); the model's configs do not belong together."
            )
        return torch.tensor([positive], dtype=dtype), torch.tensor([negative], dtype=dtype)

    # -- VAE quirks ------------------------------------------------------------------------------

    def upcast_vae(self, vae) -> bool:
        return bool(getattr(vae.config, "force_upcast", False))

    def to_vae_space(self, vae, latents):
        mean, std = _latent_stats(vae, latents)
        if mean is None:
            return latents / vae.config.scaling_factor
        return latents * std / vae.config.scaling_factor + mean

    def from_vae_space(self, vae, samples):
        mean, std = _latent_stats(vae, samples)
        if mean is None:
            return vae.config.scaling_factor * samples
        return (samples - mean) * vae.config.scaling_factor / std


def aesthetic_conditioning(model) -> bool:
    """True for a UNet conditioned on 5 time ids with an aesthetic score (the refiner), not 6."""
    unet = model.unet
    projection = model.text_encoder_2.config.projection_dim
    added = unet.add_embedding.linear_1.in_features - projection
    return added == 5 * unet.config.addition_time_embed_dim


def _latent_stats(vae, like: torch.Tensor):
    """The VAE's per-channel latent mean and std (Playground-style VAEs), else (None, None)."""
    mean = getattr(vae.config, "latents_mean", None)
    std = getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None, None
    shape = (1, len(mean), 1, 1)
    as_tensor = lambda v: torch.tensor(v).view(shape).to(like.device, like.dtype)  # noqa: E731
    return as_tensor(mean), as_tensor(std)
