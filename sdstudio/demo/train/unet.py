"""Stage 3: the UNet and the text encoder, trained jointly on the cached latents, with EMA."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sdstudio.demo.train.common import (
    MAX_TOKENS,
    Stage,
    TrainConfig,
    autocast,
    load_ckpt,
    log,
    require_ckpt,
    save_ckpt,
    torch_device,
    train_loop,
)
from sdstudio.demo.train.components import (
    make_scheduler,
    make_text_encoder,
    make_unet,
    tokenizer_for,
)


class Ema:
    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]

    def update(self, modules: list[torch.nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for sh, m in zip(self.shadow, modules, strict=True):
                state = m.state_dict()
                keys = [k for k, v in state.items() if v.dtype.is_floating_point]
                torch._foreach_lerp_([sh[k] for k in keys], [state[k].detach() for k in keys], 1 - d)

    def to(self, dev: torch.device) -> Ema:
        self.shadow = [{k: v.to(dev) for k, v in sh.items()} for sh in self.shadow]
        return self


def unet_loss(unet, text, alphas: torch.Tensor, lat: torch.Tensor, ids: torch.Tensor,
              gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(lat.shape, generator=gen, device=lat.device)
    t = torch.randint(0, len(alphas), (len(lat),), generator=gen, device=lat.device)
    a = alphas[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * lat + (1 - a).sqrt() * noise
    with autocast(lat.device):
        pred = unet(noisy, t, text(ids.long())[0]).sample.float()
    snr = alphas[t] / (1 - alphas[t])
    weight = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weighting for epsilon prediction
    per = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    return (per * weight).mean()


def sample_batch(cfg: TrainConfig, data: dict, empty: torch.Tensor,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    dev = data["latents"].device
    n, k = data["ids"].shape[:2]
    idx = torch.randint(0, n, (cfg.unet_batch,), generator=gen, device=dev)
    which = torch.randint(0, k, (cfg.unet_batch,), generator=gen, device=dev)
    ids = data["ids"][idx, which]
    drop = torch.rand(cfg.unet_batch, generator=gen, device=dev) < cfg.cfg_dropout
    ids = torch.where(drop[:, None], empty[None], ids)
    return data["latents"][idx], ids


def train_unet(cfg: TrainConfig) -> None:
    dev, path = torch_device(cfg), cfg.work / "unet.pt"
    data = {k: v.to(dev) for k, v in require_ckpt(cfg.work / "latents.pt", "encode").items()
            if k in ("latents", "ids")}
    tok = tokenizer_for(cfg)
    empty = tok("", padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids[0]
    empty = empty.to(dev, torch.int32)
    unet, text = make_unet(cfg).to(dev), make_text_encoder(cfg, tok).to(dev)
    alphas = make_scheduler().alphas_cumprod.to(dev)
    opt = torch.optim.AdamW([{"params": unet.parameters(), "lr": cfg.unet_lr},
                             {"params": text.parameters(), "lr": cfg.text_lr}], weight_decay=0.01)
    ema, step = Ema([unet, text], cfg.ema_decay), 0
    ck = load_ckpt(path)
    if ck:
        unet.load_state_dict(ck["unet"])
        text.load_state_dict(ck["text"])
        ema.shadow = ck["ema"]
        if not cfg.warm_restart:
            opt.load_state_dict(ck["opt"])
            step = ck["step"]
        log(cfg, "unet", resumed_from=ck["step"], warm_restart=str(cfg.warm_restart))
    ema.to(dev)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed * 31 + step)
    params = [*unet.parameters(), *text.parameters()]
    window: dict[str, Any] = {"loss": torch.zeros((), device=dev), "t0": time.time()}  # since last log

    def loss() -> tuple[torch.Tensor, Callable[[float], dict[str, Any]]]:
        value = unet_loss(unet, text, alphas, *sample_batch(cfg, data, empty, gen), gen)
        window["loss"] = window["loss"] + value.detach()
        return value, mean_since_last_log

    def mean_since_last_log(f: float) -> dict[str, Any]:
        values = {"loss": window["loss"].item() / cfg.log_every, "lr_factor": f,
                  "s_per_step": (time.time() - window["t0"]) / cfg.log_every}
        window.update(loss=torch.zeros((), device=dev), t0=time.time())
        return values

    def save(at: int) -> None:
        _save_unet(path, unet, text, opt, ema, at, cfg.unet_steps)

    train_loop(cfg, Stage("unet", opt, params, (cfg.unet_lr, cfg.text_lr), 200, cfg.unet_minutes,
                          loss, save, after_step=lambda at: ema.update([unet, text], at)), step)


def _save_unet(path: Path, unet, text, opt, ema: Ema, step: int, total: int) -> None:
    cpu = [{k: v.cpu() for k, v in sh.items()} for sh in ema.shadow]
    save_ckpt(path, unet=unet.state_dict(), text=text.state_dict(), opt=opt.state_dict(),
              ema=cpu, step=step, total=total)
