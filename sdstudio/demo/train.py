"""Train the demo model: VAE first, then the UNet jointly with a small CLIP text encoder.

Stages (each resumable from `<work>/*.pt` checkpoints, each logging its loss):
1. `vae`     - AutoencoderKL (8x down, 4 latent channels) on 128x128 scenes and busier many-shape
               images; GroupNorm with one group (see `make_vae`).
2. `encode`  - the data set is encoded once to 16x16x4 latent means (cached) and normalised per
               channel; the export folds that normalisation into the VAE (`fold_latent_norm`).
3. `unet`    - UNet2DConditionModel + CLIPTextModel trained jointly, epsilon prediction,
               min-SNR-5 weighting, 10% empty captions (classifier-free guidance), EMA weights.
4. `decoder` - optional: the decoder alone fine-tuned (encoder frozen, so the cached latents stay
               valid and it can run beside `unet` in another process).
5. `export`  - a diffusers Stable Diffusion folder (safetensors) in `out`.

The data set is drawn once per process by `workers` processes and kept in memory (uint8, on the
training device). On a GPU the whole recipe takes minutes; `vae_minutes`/`unet_minutes` fit a
stage's step count to a time budget after timing its first steps (the fitted count is logged and
written to `training_config.json`, so a rerun with that count is reproducible). On a busy 2-core
CPU use one thread per process (`threads=1`): two OpenMP threads competing with other work ran
~10x slower than one.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sdstudio.core import atomic
from sdstudio.core.model_settings import save_model_settings
from sdstudio.demo import dataset
from sdstudio.demo.tokenizer import EOS, build_tokenizer

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


# ---------------------------------------------------------------- components
def make_vae(cfg: TrainConfig, scaling_factor: float = 1.0, init_logvar: float | None = None):
    """GroupNorm over few channels per group erases the colour of flat regions (a plain crop
    normalises to zero), so the demo VAE uses groups=1: the colour survives as a pattern."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=tuple(cfg.vae_channels), layers_per_block=cfg.vae_layers,
        norm_num_groups=cfg.vae_groups, sample_size=128, scaling_factor=scaling_factor,
    )
    if init_logvar is not None:  # start with little posterior noise, or the decoder sees only noise
        with torch.no_grad():
            vae.encoder.conv_out.bias[4:].fill_(init_logvar)
    return vae


def fold_latent_norm(vae, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make the VAE's latents zero-mean, unit-std per channel without changing what it decodes.

    z' = (z - mean) / std is folded into `quant_conv` (the posterior's mean and log-variance) and
    undone in `post_quant_conv`, so the model keeps Stable Diffusion's layout (one scaling factor,
    here 1.0) while every latent channel gets the same amplitude for the UNet."""
    m, s = mean.double(), std.double()
    with torch.no_grad():
        qw, qb = vae.quant_conv.weight.double(), vae.quant_conv.bias.double()
        qw[:4] /= s.view(4, 1, 1, 1)
        qb[:4] = (qb[:4] - m) / s
        qb[4:] -= 2 * torch.log(s)
        pw, pb = vae.post_quant_conv.weight.double(), vae.post_quant_conv.bias.double()
        pb = pb + pw[:, :, 0, 0] @ m
        pw = pw * s.view(1, 4, 1, 1)
        for param, value in ((vae.quant_conv.weight, qw), (vae.quant_conv.bias, qb),
                             (vae.post_quant_conv.weight, pw), (vae.post_quant_conv.bias, pb)):
            param.copy_(value.to(param.dtype))


def make_unet(cfg: TrainConfig):
    from diffusers import UNet2DConditionModel

    attn = tuple(cfg.unet_attention)
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=tuple(cfg.unet_channels),
        # by default attention (self + cross) at 8x8 and 4x4 only: 16x16 is plain ResNets (speed)
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        cross_attention_dim=cfg.text_width, attention_head_dim=8, norm_num_groups=8,
    )


def make_text_encoder(cfg: TrainConfig, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    conf = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.text_width, intermediate_size=cfg.text_width * 4,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        projection_dim=cfg.text_width, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(conf)


def make_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", prediction_type="epsilon",
                         clip_sample=False, steps_offset=1, timestep_spacing="leading")


def tokenizer_for(cfg: TrainConfig):
    return build_tokenizer(dataset.vocabulary(), cfg.work / "tokenizer_src", MAX_TOKENS)


# ---------------------------------------------------------------- utilities
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


# ---------------------------------------------------------------- data set (drawn once)
_WORKER_TOKENIZER = None


def _init_worker(vocab_dir: str) -> None:
    """Reads the vocabulary files the parent wrote (writing them here would race)."""
    from transformers import CLIPTokenizer

    global _WORKER_TOKENIZER
    torch.set_num_threads(1)
    folder = Path(vocab_dir)
    _WORKER_TOKENIZER = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                      pad_token=EOS, model_max_length=MAX_TOKENS)


def _draw_chunk(job: tuple[str, int, int, int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (uint8 NCHW) and, for scenes, token ids [n, k, MAX_TOKENS] of k caption wordings."""
    kind, seed, start, n, k = job
    imgs, ids = [], []
    for i in range(start, start + n):
        if kind == "dense":
            imgs.append(np.asarray(dataset.make_dense_image(seed, i)))
            continue
        sample = dataset.make_sample(seed, i)
        imgs.append(np.asarray(sample.image))
        rng = random.Random(seed * 7919 + i)
        caps = [dataset.caption(sample.scene, rng) for _ in range(k)]
        ids.append(_WORKER_TOKENIZER(caps, padding="max_length", max_length=MAX_TOKENS,
                                     truncation=True, return_tensors="np").input_ids)
    images = np.stack(imgs).transpose(0, 3, 1, 2).copy()
    return images, (np.stack(ids).astype(np.int32) if ids else None)


_POOLS: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}


def data_pool(cfg: TrainConfig, kind: str, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`n` images of `kind` ("scene" or "dense") as uint8 [n, 3, 128, 128] (+ caption ids for
    scenes), drawn in parallel once per process and cached."""
    key = (kind, seed, n, cfg.captions_per_image)
    if key in _POOLS:
        return _POOLS[key]
    tokenizer_for(cfg)  # writes the vocabulary files the workers read
    workers = cfg.workers or os.cpu_count() or 1
    chunk = 500
    jobs = [(kind, seed, s, min(chunk, n - s), cfg.captions_per_image) for s in range(0, n, chunk)]
    t0 = time.time()
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(cfg.work / "tokenizer_src"),)) as pool:
        parts = pool.map(_draw_chunk, jobs)
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    ids = torch.from_numpy(np.concatenate([p[1] for p in parts])) if kind == "scene" else None
    log(cfg, "data", kind=kind, n=n, seconds=round(time.time() - t0, 1))
    _POOLS[key] = (images, ids)
    return images, ids


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the VAE's input range."""
    return images.float() / 127.5 - 1.0


# ---------------------------------------------------------------- stage 1: VAE
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
    start, budget = time.time(), StepBudget(cfg.vae_minutes, step)
    while step < cfg.vae_steps and not out_of_time(cfg, start):
        lr = cfg.vae_lr * lr_factor(step, cfg.vae_steps, 100)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, parts = vae_loss(vae, vae_batch(pools, gen, dev, cfg.vae_batch, cfg.vae_crop))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if (fitted := budget.fit(step)) is not None:
            cfg.vae_steps = fitted
            log(cfg, "vae", fitted_steps=fitted)
        if step % cfg.log_every == 0:
            log(cfg, "vae", step=step, lr=lr, **vae_log_values(loss, parts))
        if step % cfg.ckpt_every == 0:
            _save_vae(path, vae, opt, step, cfg.vae_steps)
    _save_vae(path, vae, opt, step, cfg.vae_steps)


def _save_vae(path: Path, vae, opt, step: int, total: int) -> None:
    save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step, total=total)


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
    opt = torch.optim.AdamW(params, lr=cfg.vae_lr * 0.25, weight_decay=0.0)
    if ck:
        opt.load_state_dict(ck["opt"])
    gen = torch.Generator().manual_seed(cfg.seed * 19 + step)
    start, budget = time.time(), StepBudget(cfg.decoder_minutes, step)
    while step < cfg.decoder_steps and not out_of_time(cfg, start):
        for g in opt.param_groups:
            g["lr"] = cfg.vae_lr * 0.25 * lr_factor(step, cfg.decoder_steps, 100)
        loss, parts = vae_loss(vae, vae_batch(pools, gen, dev, cfg.vae_batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if (fitted := budget.fit(step)) is not None:
            cfg.decoder_steps = fitted
            log(cfg, "decoder", fitted_steps=fitted)
        if step % cfg.log_every == 0:
            log(cfg, "decoder", step=step, **vae_log_values(loss, parts))
        if step % cfg.ckpt_every == 0:
            save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)
    save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)


def load_vae(cfg: TrainConfig):
    vae = make_vae(cfg)
    ck = load_ckpt(cfg.work / "vae.pt")
    if ck is None:
        raise FileNotFoundError("train the VAE first (stage 'vae')")
    vae.load_state_dict(ck["model"])
    return vae.eval()


# ---------------------------------------------------------------- stage 2: encode
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


# ---------------------------------------------------------------- stage 3: UNet + text encoder
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


def sample_batch(cfg: TrainConfig, data: dict, empty: torch.Tensor, gen: torch.Generator):
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
    data = {k: v.to(dev) for k, v in load_ckpt(cfg.work / "latents.pt").items()
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
    start, t0, acc = time.time(), time.time(), torch.zeros((), device=dev)
    budget = StepBudget(cfg.unet_minutes, step)
    while step < cfg.unet_steps and not out_of_time(cfg, start):
        f = lr_factor(step, cfg.unet_steps, 200)
        for g, base in zip(opt.param_groups, (cfg.unet_lr, cfg.text_lr), strict=True):
            g["lr"] = base * f
        loss = unet_loss(unet, text, alphas, *sample_batch(cfg, data, empty, gen), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*unet.parameters(), *text.parameters()], 1.0)
        opt.step()
        step += 1
        ema.update([unet, text], step)
        acc += loss.detach()
        if (fitted := budget.fit(step)) is not None:
            cfg.unet_steps = fitted
            log(cfg, "unet", fitted_steps=fitted)
        if step % cfg.log_every == 0:
            log(cfg, "unet", step=step, loss=acc.item() / cfg.log_every, lr_factor=f,
                s_per_step=(time.time() - t0) / cfg.log_every)
            acc, t0 = torch.zeros((), device=dev), time.time()
        if step % cfg.ckpt_every == 0:
            _save_unet(path, unet, text, opt, ema, step, cfg.unet_steps)
    _save_unet(path, unet, text, opt, ema, step, cfg.unet_steps)


def _save_unet(path: Path, unet, text, opt, ema: Ema, step: int, total: int) -> None:
    cpu = [{k: v.cpu() for k, v in sh.items()} for sh in ema.shadow]
    save_ckpt(path, unet=unet.state_dict(), text=text.state_dict(), opt=opt.state_dict(),
              ema=cpu, step=step, total=total)


# ---------------------------------------------------------------- stage 4: export
def export(cfg: TrainConfig, use_ema: bool = True) -> Path:
    """Write the diffusers folder: model_index.json, vae/, unet/, text_encoder/, tokenizer/, scheduler/."""
    from diffusers import StableDiffusionPipeline

    data = load_ckpt(cfg.work / "latents.pt")
    ck = load_ckpt(cfg.work / "unet.pt")
    tok = tokenizer_for(cfg)
    vae = make_vae(cfg, scaling_factor=1.0)  # latents are unit-std per channel after the fold
    dec = cfg.work / "decoder.pt"  # the fine-tuned decoder, where there is one
    vae_ck = load_ckpt(dec if dec.exists() else cfg.work / "vae.pt")
    vae.load_state_dict(vae_ck["model"])
    cfg.unet_steps = ck.get("total", cfg.unet_steps)  # the step counts actually run, for the record
    if dec.exists():
        cfg.decoder_steps = vae_ck["step"]
    fold_latent_norm(vae, data["latent_mean"], data["latent_std"])
    unet, text = make_unet(cfg), make_text_encoder(cfg, tok)
    unet.load_state_dict(ck["ema"][0] if use_ema else ck["unet"])
    text.load_state_dict(ck["ema"][1] if use_ema else ck["text"])
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=_euler_a_config(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    cfg.out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(cfg.out, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):  # also the classic CLIP files, for older transformers
        (cfg.out / "tokenizer" / name).write_bytes((cfg.work / "tokenizer_src" / name).read_bytes())
    _save_preview_projection(cfg, vae, cfg.out / "vae")
    save_model_settings(cfg.out, cfg.guidance)
    atomic.write_text(cfg.out / "training_config.json",
        json.dumps(_public_config(cfg, ck["step"], data), indent=2) + "\n")
    return cfg.out


def _save_preview_projection(cfg: TrainConfig, vae, folder: Path, n: int = 512) -> None:
    """The model's own latent -> RGB preview projection, fitted on `n` held-out scenes."""
    from sdstudio.core.latents import fit_latent_rgb, save_latent_rgb

    images = torch.from_numpy(np.stack([
        np.asarray(dataset.make_sample(cfg.seed + 3, i).image) for i in range(n)])).permute(0, 3, 1, 2)
    x = to_unit(images)
    with torch.no_grad():
        lat = torch.cat([vae.encode(x[i:i + 64]).latent_dist.mean for i in range(0, n, 64)])
    save_latent_rgb(folder, fit_latent_rgb(lat * vae.config.scaling_factor, x))


def _public_config(cfg: TrainConfig, unet_step: int, data: dict) -> dict:
    d = {k: v for k, v in asdict(cfg).items() if k not in ("out", "work", "extra")}
    d.update(unet_channels=list(cfg.unet_channels), vae_channels=list(cfg.vae_channels),
             unet_attention=list(cfg.unet_attention),
             unet_steps_done=unet_step, latent_mean=data["latent_mean"].tolist(),
             latent_std=data["latent_std"].tolist())
    return d


def _euler_a_config():
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler.from_config(make_scheduler().config)


# ---------------------------------------------------------------- driver
STAGES = ("vae", "encode", "unet", "decoder", "export")


def run(cfg: TrainConfig, stages: tuple[str, ...] = ("vae", "encode", "unet", "export")) -> None:
    torch.set_num_threads(cfg.threads)
    if torch_device(cfg).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg.work.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    steps = {"vae": train_vae, "encode": encode_dataset, "unet": train_unet,
             "decoder": train_decoder, "export": export}
    for name in stages:
        log(cfg, "stage", name=name)
        steps[name](cfg)
    log(cfg, "stage", name="done", device=str(torch_device(cfg)))
