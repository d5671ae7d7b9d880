"""Stage 1, the VAE (and the optional decoder fine-tune that runs after the encode stage)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sdstudio.demo.train.common import (
    Stage,
    TrainConfig,
    autocast,
    load_ckpt,
    require_ckpt,
    save_ckpt,
    torch_device,
    train_loop,
)
from sdstudio.demo.train.components import make_vae
from sdstudio.demo.train.data import data_pool, to_unit


def vae_batch(pools: list[torch.Tensor], gen: torch.Generator, dev: torch.device, batch: int,
              crop: int = 128) -> torch.Tensor:
    """Half scenes, half busy many-shape images (more edges and colours per pixel, so the VAE
    learns objects, not just backgrounds); random crops when `vae_crop` < 128."""
    parts = []
    for pool, n in zip(pools, (batch - batch // 2, batch // 2), strict=True):
        idx = torch.randint(0, len(pool), (n,), generator=gen)
        parts.append(pool[idx.to(pool.device)])
    x = to_unit(torch.cat(parts).to(dev, non_blocking=True))
    if crop < 128:
        y, x0 = (int(v) // 8 * 8 for v in torch.randint(0, 128 - crop + 1, (2,), generator=gen))
        x = x[:, :, y:y + crop, x0:x0 + crop]
    return x


def vae_loss(vae, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L1 + MSE + a little KL; the parts are returned as tensors (no GPU sync until logged)."""
    with autocast(x.device):
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample.float()
    l1, mse = (rec - x).abs().mean(), F.mse_loss(rec, x)
    kl = post.kl().float().mean() / x[0].numel()
    return l1 + mse + 1e-4 * kl, {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach()}


def vae_log_values(loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> dict[str, float]:
    values = {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}
    values["psnr"] = 10 * math.log10(4.0 / max(values["mse"], 1e-10))  # [-1, 1]: peak 2
    return values


def vae_pools(cfg: TrainConfig, dev: torch.device) -> list[torch.Tensor]:
    scenes, _ = data_pool(cfg, "scene", cfg.seed, cfg.n_images)
    dense, _ = data_pool(cfg, "dense", cfg.seed + 1, cfg.vae_images)
    return [scenes.to(dev), dense.to(dev)]


def train_vae(cfg: TrainConfig) -> None:
    dev, path = torch_device(cfg), cfg.work / "vae.pt"
    pools = vae_pools(cfg, dev)  # before the model touches the GPU: the data workers are forked
    vae = make_vae(cfg, init_logvar=-6.0).to(dev)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    step, ck = 0, load_ckpt(path)
    if ck:
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]  # the configured step count stands: resuming can also extend a run
    gen = torch.Generator().manual_seed(cfg.seed * 17 + step)

    def loss() -> tuple[torch.Tensor, Callable[[float], dict[str, Any]]]:
        value, parts = vae_loss(vae, vae_batch(pools, gen, dev, cfg.vae_batch, cfg.vae_crop))
        return value, lambda f: {"lr": cfg.vae_lr * f, **vae_log_values(value, parts)}

    def save(at: int) -> None:
        save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=at, total=cfg.vae_steps)

    train_loop(cfg, Stage("vae", opt, list(vae.parameters()), (cfg.vae_lr,), 100,
                          cfg.vae_minutes, loss, save), step)


def train_decoder(cfg: TrainConfig) -> None:
    """Fine-tune the decoder alone on whole 128x128 images; the encoder (and so the cached
    latents the UNet learns from) stays fixed, so this can run beside the UNet stage."""
    dev, path = torch_device(cfg), cfg.work / "decoder.pt"
    pools = vae_pools(cfg, dev)
    vae = load_vae(cfg).to(dev).train()
    ck = load_ckpt(path)
    step = 0
    if ck:
        vae.load_state_dict(ck["model"])
        step = ck["step"]
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    lr = cfg.vae_lr * 0.25
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if ck:
        opt.load_state_dict(ck["opt"])
    gen = torch.Generator().manual_seed(cfg.seed * 19 + step)

    def loss() -> tuple[torch.Tensor, Callable[[float], dict[str, Any]]]:
        value, parts = vae_loss(vae, vae_batch(pools, gen, dev, cfg.vae_batch))
        return value, lambda _f: vae_log_values(value, parts)

    def save(at: int) -> None:
        save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=at)

    train_loop(cfg, Stage("decoder", opt, params, (lr,), 100, cfg.decoder_minutes, loss, save),
               step)


def load_vae(cfg: TrainConfig) -> Any:
    vae = make_vae(cfg)
    ck = require_ckpt(cfg.work / "vae.pt", "vae")
    vae.load_state_dict(ck["model"])
    return vae.eval()
