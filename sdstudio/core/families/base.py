"""The seam between the pipeline and a model family: what differs between SD 1.x, 2.x and SDXL.

A family turns prompts into the UNet's conditioning (text embeddings and, for SDXL, the added
pooled-text and size conditioning), says how the VAE's latents are scaled and whether the VAE
must run in fp32, and carries the default size and the latent-to-RGB preview factors. The
numbered steps of the pipeline are the same for every family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from sdstudio.core.models import LoadedModel
    from sdstudio.core.request import GenerationRequest


@dataclass(frozen=True)
class Conditioning:
    """What the UNet is conditioned on, for the whole batch; with CFG [negatives..., prompts...]."""

    embeds: torch.Tensor  # encoder_hidden_states: (B or 2B, tokens, width)
    added: dict[str, torch.Tensor] | None = None  # added_cond_kwargs (SDXL: text_embeds, time_ids)
    # With CFG where the negative prompt has another number of 75-token chunks than the prompt:
    # the negative half apart (embeds/added are then the prompt's only), and the UNet runs once
    # for each, as A1111 does by default (no padding).
    uncond: Conditioning | None = None


def cfg_join(negative: Conditioning, positive: Conditioning) -> Conditioning:
    """[negatives..., prompts...] in one batch, or apart where their token counts differ."""
    if negative.embeds.shape != positive.embeds.shape:
        return Conditioning(positive.embeds, positive.added, uncond=negative)
    added = None
    if positive.added is not None and negative.added is not None:
        added = {k: torch.cat([negative.added[k], v]) for k, v in positive.added.items()}
    return Conditioning(torch.cat([negative.embeds, positive.embeds]), added)


class Family:
    """One model family. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]  # short id, as written in records: "sd1", "sd2", "sdxl"
    label: ClassVar[str]  # shown to users: "SD 1.x"
    default_size: ClassVar[int]  # image side the family was trained at
    latent_rgb: ClassVar[torch.Tensor]  # [5, 3] preview projection: 4 channel rows + bias row

    def conditioning(
        self, model: LoadedModel, req: GenerationRequest, do_cfg: bool, notices: list[str]
    ) -> Conditioning:
        raise NotImplementedError

    def describe(self, model: LoadedModel) -> str:
        """The family as a user would name this model, e.g. "SD 1.x inpainting"."""
        return f"{self.label} inpainting" if model.unet.config.in_channels == 9 else self.label

    # -- VAE quirks ------------------------------------------------------------------------------

    def upcast_vae(self, vae) -> bool:
        """Whether the VAE must run in fp32 even when the model runs in fp16."""
        return False

    def to_vae_space(self, vae, latents: torch.Tensor) -> torch.Tensor:
        """Scaled (UNet-space) latents -> what `vae.decode` takes."""
        return latents / vae.config.scaling_factor

    def from_vae_space(self, vae, samples: torch.Tensor) -> torch.Tensor:
        """A sample of `vae.encode`'s latent distribution -> scaled (UNet-space) latents."""
        return vae.config.scaling_factor * samples
