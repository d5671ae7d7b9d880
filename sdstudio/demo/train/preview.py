"""Optional stage `preview`: a tiny learned preview decoder (diffusers' AutoencoderTiny, the TAESD
architecture) for the exported model, so live previews can show the x0 estimate at full size.

Only its decoder is trained: it maps the exported VAE's latents (the UNet's latent space, with
the per-channel normalisation folded in) to the images. Training runs on random 8x8 latent crops
(64x64 pixel crops): the decoder is convolutional, and crops make a CPU step 4x cheaper.
The result goes to `<out>/vae_tiny` (config.json + diffusion_pytorch_model.safetensors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sdstudio.demo.train.common import (
    Stage,
    TrainConfig,
    load_ckpt,
    log,
    save_ckpt,
    torch_device,
    train_loop,
)
from sdstudio.demo.train.data import data_pool, to_unit

CROP = 8  # latent crop side (x8 pixels)


def make_tiny(cfg: TrainConfig):
    from diffusers import AutoencoderTiny

    # The encoder is never used (previews only decode); it is kept minimal so the file stays small.
    return AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16), num_encoder_blocks=(1, 1, 1, 1),
        decoder_block_out_channels=cfg.preview_channels, num_decoder_blocks=cfg.preview_blocks,
        latent_channels=4, scaling_factor=1.0)


@torch.no_grad()
def encode_pool(cfg: TrainConfig, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(latents, uint8 images) of scenes and busy images, encoded by the exported VAE (cached)."""
    from diffusers import AutoencoderKL

    path = cfg.work / "preview_latents.pt"
    if (ck := load_ckpt(path)) is not None:
        return ck["latents"], ck["images"]
    n_dense = cfg.preview_images // 4
    scenes, _ = data_pool(cfg, "scene", cfg.seed + 5, cfg.preview_images - n_dense)
    dense, _ = data_pool(cfg, "dense", cfg.seed + 6, n_dense)
    images = torch.cat([scenes, dense])
    vae = AutoencoderKL.from_pretrained(cfg.out / "vae").to(dev).eval()
    lat = torch.cat([vae.encode(to_unit(images[i:i + 32].to(dev))).latent_dist.mean.cpu()
                     for i in range(0, len(images), 32)]) * vae.config.scaling_factor
    save_ckpt(path, latents=lat, images=images)
    log(cfg, "preview", encoded=len(lat))
    return lat, images


def crop_batch(lat: torch.Tensor, images: torch.Tensor, gen: torch.Generator,
               batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.randint(0, len(lat), (batch,), generator=gen)
    y, x = (int(v) for v in torch.randint(0, lat.shape[-1] - CROP + 1, (2,), generator=gen))
    z = lat[idx, :, y:y + CROP, x:x + CROP]
    img = images[idx, :, y * 8:(y + CROP) * 8, x * 8:(x + CROP) * 8]
    return z, to_unit(img)


def train_preview(cfg: TrainConfig) -> None:
    dev, path = torch_device(cfg), cfg.work / "preview.pt"
    lat, images = encode_pool(cfg, dev)
    lat, images = lat.to(dev), images.to(dev)
    tiny = make_tiny(cfg).to(dev).train()
    params = list(tiny.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.preview_lr, weight_decay=0.0)
    step, ck = 0, load_ckpt(path)
    if ck:
        tiny.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
    gen = torch.Generator().manual_seed(cfg.seed * 23 + step)

    def loss() -> tuple[torch.Tensor, Callable[[float], dict[str, Any]]]:
        z, x = crop_batch(lat, images, gen, cfg.preview_batch)
        rec = tiny.decoder(z)
        l1, mse = (rec - x).abs().mean(), F.mse_loss(rec, x)
        return l1 + mse, lambda f: {"lr": cfg.preview_lr * f, "l1": l1.item(), "mse": mse.item()}

    def save(at: int) -> None:
        save_ckpt(path, model=tiny.state_dict(), opt=opt.state_dict(), step=at)

    train_loop(cfg, Stage("preview", opt, params, (cfg.preview_lr,), 100, cfg.preview_minutes,
                          loss, save), step)
    tiny.eval().save_pretrained(cfg.out / "vae_tiny", safe_serialization=True)
    log(cfg, "preview", saved=str(cfg.out / "vae_tiny"))
