"""SD 1.x (and its 9-channel inpainting models): one CLIP text encoder, last hidden state."""

from __future__ import annotations

import torch

from sdstudio.core.families import text
from sdstudio.core.families.base import Conditioning, Family
from sdstudio.core.latents import SD1_LATENT_RGB, with_bias


class SD1(Family):
    name = "sd1"
    label = "SD 1.x"
    default_size = 512
    latent_rgb = with_bias(SD1_LATENT_RGB)

    def conditioning(self, model, req, do_cfg, notices) -> Conditioning:
        """As `StableDiffusionPipeline.encode_prompt`: each prompt once, repeated per image."""
        embeds = self._encode(model, req.prompt, "Prompt", notices).repeat(req.batch_size, 1, 1)
        if do_cfg:
            negative = self._encode(model, req.negative_prompt, "Negative prompt", notices)
            embeds = torch.cat([negative.repeat(req.batch_size, 1, 1), embeds])
        return Conditioning(embeds.to(model.device))

    @staticmethod
    def _encode(model, prompt: str, what: str, notices: list[str]) -> torch.Tensor:
        return text.encode_text(
            model.tokenizer, model.text_encoder, prompt or "", what=what, notices=notices
        ).hidden
