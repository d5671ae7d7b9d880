"""Latent helpers, as in the Stable Diffusion course: encode, decode, look at the 4 channels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Latent -> RGB projections (rows: latent channels, columns: R, G, B; a cheap preview, no VAE),
# as ComfyUI's comfy/latent_formats.py lists them per family. SD 2.x shares SD 1.x's VAE.
SD1_LATENT_RGB = torch.tensor(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ]
)
SDXL_LATENT_RGB = torch.tensor(
    [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ]
)
SDXL_LATENT_RGB_BIAS = torch.tensor([0.1084, -0.0175, -0.0011])


def with_bias(factors: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A [5, 3] projection for `preview_rgb`: the 4 channel rows, then the bias row."""
    bias = torch.zeros(3) if bias is None else bias
    return torch.cat([factors, bias[None]]).float()


def _processor(vae):
    from diffusers.image_processor import VaeImageProcessor

    return VaeImageProcessor(vae_scale_factor=2 ** (len(vae.config.block_out_channels) - 1))


@torch.no_grad()
def pil_to_latent(vae, image: Image.Image) -> torch.Tensor:
    """Encode an RGB image (sides rounded down to multiples of 8) to latents of shape (1, 4, h/8, w/8),
    scaled by `vae.config.scaling_factor`. Uses the mean of the latent distribution (deterministic)."""
    x = _processor(vae).preprocess(image.convert("RGB"))
    x = x.to(device=vae.device, dtype=vae.dtype)
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


@torch.no_grad()
def latents_to_pil(vae, latents: torch.Tensor) -> list[Image.Image]:
    """Decode scaled latents (batch first) to RGB images."""
    z = latents.to(device=vae.device, dtype=vae.dtype) / vae.config.scaling_factor
    return _processor(vae).postprocess(vae.decode(z).sample, output_type="pil")


def channel_images(latents: torch.Tensor) -> list[tuple[Image.Image, float, float]]:
    """The channels of the first latent of the batch as greyscale 'L' images, each stretched
    from its own (min, max) to 0..255, with that (min, max)."""
    z = latents[0].detach().float().cpu()
    lo = z.amin(dim=(1, 2), keepdim=True)
    hi = z.amax(dim=(1, 2), keepdim=True)
    span = hi - lo
    scale = torch.where(span > 0, 255.0 / span.clamp_min(1e-12), torch.zeros_like(span))
    pixels = ((z - lo) * scale).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return [
        (Image.fromarray(p), float(a), float(b))
        for p, a, b in zip(pixels, lo.flatten().tolist(), hi.flatten().tolist(), strict=True)
    ]


LATENT_RGB_FILE = "latent_rgb.json"  # beside a VAE's config: its own preview projection


def preview_rgb(latents: torch.Tensor, projection: torch.Tensor | None = None) -> Image.Image:
    """A rough RGB picture of the first latent of the batch at latent resolution (h/8 x w/8),
    by a linear projection of the 4 channels (SD 1.x's, or a model's own 5x3 matrix whose last
    row is a bias, see `fit_latent_rgb`); never runs the VAE."""
    z = latents[0, :4].detach().float().cpu()
    # Mid-run latents of sigma-scaled samplers (Euler, DPM2, ...) have std ~ sqrt(sigma^2 + 1), up to ~15:
    # bring them back to unit scale (as `scale_model_input` does) so early previews are not clipped noise.
    z = z / max(1.0, float(z.std()))
    if projection is None:
        rgb = torch.einsum("chw,cr->hwr", z, SD1_LATENT_RGB)
    else:
        rgb = torch.einsum("chw,cr->hwr", z, projection[:4]) + projection[4]
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(pixels))


def fit_latent_rgb(latents: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Least-squares latent -> RGB projection [5, 3] (4 channel rows + bias) from scaled latents
    [n, 4, h, w] and their images [n, 3, 8h, 8w] in [-1, 1], averaged over each 8x8 patch."""
    target = torch.nn.functional.avg_pool2d(images.float(), 8).permute(0, 2, 3, 1).reshape(-1, 3)
    x = latents.float().permute(0, 2, 3, 1).reshape(-1, 4)
    x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    return torch.linalg.lstsq(x, target).solution


def save_latent_rgb(vae_folder: Path, projection: torch.Tensor) -> None:
    from sdstudio.core import atomic

    atomic.write_text(vae_folder / LATENT_RGB_FILE, json.dumps({"latent_rgb": projection.tolist()}))


def load_latent_rgb(vae_folder: Path) -> torch.Tensor | None:
    """The model's own preview projection, where its VAE folder has one (None if absent or bad)."""
    try:
        value = torch.tensor(json.loads((vae_folder / LATENT_RGB_FILE).read_text())["latent_rgb"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value.float() if value.shape == (5, 3) else None
