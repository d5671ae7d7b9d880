"""Stage 2: the data set encoded once to normalised latent means, cached for the UNet."""

from __future__ import annotations

import torch

from sdstudio.demo.train.common import TrainConfig, log, save_ckpt, torch_device
from sdstudio.demo.train.data import data_pool, to_unit
from sdstudio.demo.train.vae import load_vae


def encode_dataset(cfg: TrainConfig) -> None:
    """Latent means of the `n_images` scenes, normalised per channel, and their caption ids."""
    path = cfg.work / "latents.pt"
    if path.exists():
        return
    dev = torch_device(cfg)
    images, ids = data_pool(cfg, "scene", cfg.seed, cfg.n_images)
    vae = load_vae(cfg).to(dev)
    means = []
    with torch.no_grad():
        for start in range(0, len(images), 256):
            x = to_unit(images[start:start + 256].to(dev))
            means.append(vae.encode(x).latent_dist.mean.float().cpu())
    lat = torch.cat(means)
    mean, std = lat.mean(dim=(0, 2, 3)), lat.std(dim=(0, 2, 3))
    lat = (lat - mean.view(1, 4, 1, 1)) / std.view(1, 4, 1, 1)
    save_ckpt(path, latents=lat, ids=ids, latent_mean=mean, latent_std=std)
    log(cfg, "encode", done=len(lat), channel_mean=str([round(v, 3) for v in mean.tolist()]),
        channel_std=str([round(v, 3) for v in std.tolist()]))
