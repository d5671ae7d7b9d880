"""The training recipe's configuration, its small utilities and the one training loop that
every stage (VAE, decoder, UNet) runs."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdstudio.core import atomic

MAX_TOKENS = 32  # the longest generator caption is ~20 tokens; pipelines pad to this length


@dataclass
class TrainConfig:
    out: Path
    work: Path
    seed: int = 0
    device: str = "auto"  # "auto": cuda when available, else cpu
    threads: int = 1
    workers: int = 0  # processes drawing the data set; 0: one per CPU core
    vae_steps: int = 6000
    vae_batch: int = 32
    vae_crop: int = 128  # < 128: random crops (cheaper on a CPU)
    vae_lr: float = 1e-3
    vae_groups: int = 1
    vae_channels: tuple[int, ...] = (32, 64, 96, 96)
    vae_layers: int = 2
    vae_images: int = 20_000  # busy many-shape images, beside the scenes, for the VAE
    decoder_steps: int = 1500
    n_images: int = 100_000
    captions_per_image: int = 4
    unet_steps: int = 8000
    unet_batch: int = 256
    unet_lr: float = 1e-3
    text_lr: float = 5e-4
    ema_decay: float = 0.999
    cfg_dropout: float = 0.1
    guidance: float = 3.0  # the CFG scale the export recommends (sdstudio.json); SD's 7.5 over-saturates
    vae_minutes: float = 0.0  # > 0: fit vae_steps to this budget after timing the first steps
    unet_minutes: float = 0.0  # likewise for unet_steps
    decoder_minutes: float = 0.0  # likewise for decoder_steps
    preview_steps: int = 3000  # the tiny preview decoder (stage `preview`)
    preview_minutes: float = 0.0  # likewise for preview_steps
    preview_batch: int = 16
    preview_lr: float = 2e-3
    preview_images: int = 1024  # encoded once by the exported VAE (3/4 scenes, 1/4 busy images)
    preview_channels: tuple[int, ...] = (32, 32, 32, 32)
    preview_blocks: tuple[int, ...] = (1, 2, 2, 1)
    warm_restart: bool = False  # unet: keep the checkpoint's weights, new optimiser and schedule
    max_minutes: float = 0.0  # 0: no time limit; else each stage stops (and saves) after this
    unet_channels: tuple[int, ...] = (32, 64, 96)
    unet_attention: tuple[bool, ...] = (False, True, True)  # self+cross attention per level
    text_width: int = 128
    log_every: int = 100
    ckpt_every: int = 1000
    extra: dict = field(default_factory=dict)


def torch_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def autocast(dev: torch.device):
    """bf16 autocast on a GPU (weights and loss stay fp32); plain fp32 on a CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")


def log(cfg: TrainConfig, stage: str, **values: float | int | str) -> None:
    line = {"t": round(time.time(), 1), "stage": stage, **values}
    shown = {"time": time.strftime("%H:%M:%S"), "stage": stage, **values}
    with open(cfg.work / "log.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    print(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()),
          flush=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_ckpt(path: Path, **state) -> None:
    atomic.write_atomic(path, lambda f: torch.save(state, f))


def load_ckpt(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def require_ckpt(path: Path, stage: str) -> dict:
    """The checkpoint an earlier stage wrote; a clear error when that stage has not run."""
    ck = load_ckpt(path)
    if ck is None:
        raise FileNotFoundError(f"{path.name} is missing: run the stage '{stage}' first")
    return ck


def out_of_time(cfg: TrainConfig, start: float) -> bool:
    return cfg.max_minutes > 0 and (time.time() - start) / 60 > cfg.max_minutes


class StepBudget:
    """Fits a stage's step count to `minutes` once the speed of its first steps is known."""

    PROBE = 50

    def __init__(self, minutes: float, first_step: int) -> None:
        self.minutes, self.first, self.start = minutes, first_step, time.time()

    def fit(self, step: int) -> int | None:
        if self.minutes <= 0 or step != self.first + self.PROBE:
            return None
        elapsed = time.time() - self.start
        rate = self.PROBE / max(elapsed, 1e-6)
        return step + int(rate * max(self.minutes * 60 - elapsed, 0.0))


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class Stage:
    """What one training stage's loop needs; `cfg.<name>_steps` is its step count (a time budget
    may refit it) and `name` is what its log lines are filed under."""

    name: str  # "vae", "decoder", "unet" or "preview"
    opt: torch.optim.Optimizer
    params: list[torch.nn.Parameter]  # clipped to a gradient norm of 1
    base_lrs: tuple[float, ...]  # one per parameter group, scaled by lr_factor
    warmup: int
    minutes: float  # > 0: fit the step count to this budget
    # One batch's loss, and a function giving its log values from the current lr factor.
    loss: Callable[[], tuple[torch.Tensor, Callable[[float], dict[str, Any]]]]
    save: Callable[[int], None]  # write the checkpoint at this step
    after_step: Callable[[int], None] = lambda step: None  # e.g. the EMA update


def train_loop(cfg: TrainConfig, stage: Stage, step: int) -> int:
    """The one training loop: schedule, step, clip, refit to the time budget, log, checkpoint.
    Returns the step it stopped at (saved)."""
    steps_attr = f"{stage.name}_steps"
    start, budget = time.time(), StepBudget(stage.minutes, step)
    while step < getattr(cfg, steps_attr) and not out_of_time(cfg, start):
        f = lr_factor(step, getattr(cfg, steps_attr), stage.warmup)
        for group, base in zip(stage.opt.param_groups, stage.base_lrs, strict=True):
            group["lr"] = base * f
        loss, values = stage.loss()
        stage.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(stage.params, 1.0)
        stage.opt.step()
        step += 1
        stage.after_step(step)
        if (fitted := budget.fit(step)) is not None:
            setattr(cfg, steps_attr, fitted)
            log(cfg, stage.name, fitted_steps=fitted)
        if step % cfg.log_every == 0:
            log(cfg, stage.name, step=step, **values(f))
        if step % cfg.ckpt_every == 0:
            stage.save(step)
    stage.save(step)
    return step
