"""SD 1.x (and its 9-channel inpainting models): one CLIP text encoder, last hidden state."""

from __future__ import annotations

import torch

from sdstudio.core.families import text
from sdstudio.core.families.base import Conditioning, Family, cfg_join
from sdstudio.core.latents import SD1_LATENT_RGB, with_bias


class SD1(Family):
    name = "sd1"
    label = "SD 1.x"
    default_size = 512
    latent_rgb = with_bias(SD1_LATENT_RGB)
    clip_skip_applies = True  # A1111's "Clip skip" setting

    def conditioning(self, model, req, do_cfg, notices) -> Conditioning:
        """As `StableDiffusionPipeline.encode_prompt`: each prompt once, repeated per image."""
        skip = req.clip_skip if self.clip_skip_applies else 1
        embeds = self._encode(model, req.prompt, skip).repeat(req.batch_size, 1, 1)
        positive = Conditioning(embeds.to(model.device))
        if not do_cfg:
            return positive
        negative = self._encode(model, req.negative_prompt, skip).repeat(req.batch_size, 1, 1)
        return cfg_join(Conditioning(negative.to(model.device)), positive)

    @staticmethod
    def _encode(model, prompt: str, clip_skip: int = 1) -> torch.Tensor:
        """A1111's clip skip n: hidden_states[-n] through the final layer norm (1: the last)."""
        layer = None if clip_skip == 1 else -clip_skip
        return text.encode_text(
            model.tokenizer, model.text_encoder, prompt or "", hidden_layer=layer, final_norm=True
        ).hidden
