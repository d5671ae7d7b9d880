"""Train the demo model: VAE first, then the UNet jointly with a small CLIP text encoder.

Stages (each resumable from `<work>/*.pt` checkpoints, each logging its loss):
1. `vae`     - AutoencoderKL (8x down, 4 latent channels) on random 64x64 crops of busy
               128x128 many-shape images; GroupNorm with one group (see `make_vae`).
2. `encode`  - the data set is encoded once to 16x16x4 latent means (cached); scaling = 1/std.
3. `unet`    - UNet2DConditionModel + CLIPTextModel trained jointly, epsilon prediction,
               min-SNR-5 weighting, 10% empty captions (classifier-free guidance), EMA weights.
4. `decoder` - the decoder alone fine-tuned on whole 128x128 images (encoder frozen, so it can
               run beside `unet` in another process).
5. `export`  - a diffusers Stable Diffusion folder (safetensors) in `out`.

On a busy 2-core CPU use one thread per process (`threads=1`): two OpenMP threads competing with
other work ran ~10x slower than one.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sdstudio.demo import dataset
from sdstudio.demo.tokenizer import build_tokenizer

MAX_TOKENS = 32  # the longest generator caption is ~20 tokens; pipelines pad to this length


@dataclass
class TrainConfig:
    out: Path
    work: Path
    seed: int = 0
    threads: int = 1
    vae_steps: int = 1300
    vae_batch: int = 8
    vae_crop: int = 64
    vae_lr: float = 5e-4
    vae_groups: int = 1
    decoder_steps: int = 1500
    n_images: int = 6000
    captions_per_image: int = 4
    unet_steps: int = 6000
    unet_batch: int = 32
    unet_lr: float = 8e-4
    text_lr: float = 4e-4
    ema_decay: float = 0.995
    cfg_dropout: float = 0.1
    max_minutes: float = 0.0  # 0: no time limit; else each stage stops (and saves) after this
    unet_channels: tuple[int, ...] = (32, 64, 96)
    text_width: int = 128
    log_every: int = 25
    ckpt_every: int = 100
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- components
def make_vae(groups: int, scaling_factor: float = 1.0, init_logvar: float | None = None):
    """GroupNorm over few channels per group erases the colour of flat regions (a plain crop
    normalises to zero), so the demo VAE uses groups=1: the colour survives as a pattern."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 64, 64), layers_per_block=1, norm_num_groups=groups,
        sample_size=128, scaling_factor=scaling_factor,
    )
    if init_logvar is not None:  # start with little posterior noise, or the decoder sees only noise
        with torch.no_grad():
            vae.encoder.conv_out.bias[4:].fill_(init_logvar)
    return vae


def make_unet(cfg: TrainConfig):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=tuple(cfg.unet_channels),
        # attention (self + cross) at 8x8 and 4x4 only: the 16x16 level is plain ResNets (speed)
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
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
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_ckpt(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def out_of_time(cfg: TrainConfig, start: float) -> bool:
    return cfg.max_minutes > 0 and (time.time() - start) / 60 > cfg.max_minutes


def images_batch(seed: int, start: int, n: int) -> torch.Tensor:
    arrs = [dataset.to_tensor_array(dataset.make_sample(seed, start + i).image) for i in range(n)]
    return torch.from_numpy(np.stack(arrs))


def dense_batch(seed: int, start: int, n: int) -> torch.Tensor:
    arrs = [dataset.to_tensor_array(dataset.make_dense_image(seed, start + i)) for i in range(n)]
    return torch.from_numpy(np.stack(arrs))


# ---------------------------------------------------------------- stage 1: VAE
def vae_batch(cfg: TrainConfig, rng: np.random.Generator, step: int) -> torch.Tensor:
    """Random crops of busy many-shape images (more edges and colours per pixel than the
    scenes, so the VAE learns objects, not just backgrounds), drawn with their own seed."""
    imgs = dense_batch(cfg.seed + 1, step * cfg.vae_batch, cfg.vae_batch)
    c = cfg.vae_crop
    ys, xs = rng.integers(0, 128 - c + 1, size=(2, len(imgs))) // 8 * 8
    return torch.stack([im[:, y:y + c, x:x + c] for im, y, x in zip(imgs, ys, xs, strict=True)])


def vae_loss(vae, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    post = vae.encode(x).latent_dist
    rec = vae.decode(post.sample()).sample
    l1, mse = (rec - x).abs().mean(), F.mse_loss(rec, x)
    kl = post.kl().mean() / x[0].numel()
    loss = l1 + mse + 1e-4 * kl
    psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))  # range [-1, 1] -> peak 2
    return loss, {"l1": l1.item(), "mse": mse.item(), "kl": kl.item(), "psnr": psnr}


def train_vae(cfg: TrainConfig) -> None:
    path = cfg.work / "vae.pt"
    vae = make_vae(cfg.vae_groups, init_logvar=-6.0)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    step, ck = 0, load_ckpt(path)
    if ck:
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
    rng = np.random.default_rng(cfg.seed + step)
    start = time.time()
    while step < cfg.vae_steps and not out_of_time(cfg, start):
        lr = cfg.vae_lr * min(1.0, (step + 1) / 30) * (0.1 + 0.9 * (1 - step / cfg.vae_steps))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, parts = vae_loss(vae, vae_batch(cfg, rng, step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        if step % cfg.log_every == 0:
            log(cfg, "vae", step=step, loss=loss.item(), lr=lr, **parts)
        if step % cfg.ckpt_every == 0 or step == cfg.vae_steps:
            save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)
    save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)


def train_decoder(cfg: TrainConfig) -> None:
    """Fine-tune the decoder alone on whole 128x128 images; the encoder (and so the cached
    latents the UNet learns from) stays fixed, so this can run beside the UNet stage."""
    path = cfg.work / "decoder.pt"
    vae = load_vae(cfg)
    ck = load_ckpt(path)
    step = 0
    if ck:
        vae.load_state_dict(ck["model"])
        step = ck["step"]
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.vae_lr * 0.5, weight_decay=0.0)
    if ck:
        opt.load_state_dict(ck["opt"])
    start = time.time()
    while step < cfg.decoder_steps and not out_of_time(cfg, start):
        x = torch.cat([images_batch(cfg.seed + 2, step * 2, 2), dense_batch(cfg.seed + 2, step * 2, 2)])
        loss, parts = vae_loss(vae, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % cfg.log_every == 0:
            log(cfg, "decoder", step=step, loss=loss.item(), **parts)
        if step % cfg.ckpt_every == 0:
            save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)
    save_ckpt(path, model=vae.state_dict(), opt=opt.state_dict(), step=step)


def load_vae(cfg: TrainConfig):
    vae = make_vae(cfg.vae_groups)
    ck = load_ckpt(cfg.work / "vae.pt")
    if ck is None:
        raise FileNotFoundError("train the VAE first (stage 'vae')")
    vae.load_state_dict(ck["model"])
    return vae.eval()


# ---------------------------------------------------------------- stage 2: encode
def encode_dataset(cfg: TrainConfig) -> None:
    """Latent means of `n_images` training images + a few captions each, cached as one file."""
    path = cfg.work / "latents.pt"
    if path.exists():
        return
    vae, tok = load_vae(cfg), tokenizer_for(cfg)
    means, ids = [], []
    with torch.no_grad():
        for start in range(0, cfg.n_images, 64):
            n = min(64, cfg.n_images - start)
            means.append(vae.encode(images_batch(cfg.seed, start, n)).latent_dist.mean)
            ids.append(caption_ids(cfg, tok, start, n))
            if start % 1024 == 0:
                log(cfg, "encode", done=start)
    lat = torch.cat(means)
    std = lat.std().item()
    save_ckpt(path, latents=lat, ids=torch.cat(ids), scaling_factor=1.0 / std)
    log(cfg, "encode", done=cfg.n_images, std=std, mean=lat.mean().item())


def caption_ids(cfg: TrainConfig, tok, start: int, n: int) -> torch.Tensor:
    """[n, captions_per_image, MAX_TOKENS] token ids: several wordings of each image's scene."""
    out = []
    for i in range(start, start + n):
        scene = dataset.make_sample(cfg.seed, i).scene
        rng = random.Random(cfg.seed * 7919 + i)
        caps = [dataset.caption(scene, rng) for _ in range(cfg.captions_per_image)]
        out.append(tok(caps, padding="max_length", max_length=MAX_TOKENS, truncation=True,
                       return_tensors="pt").input_ids)
    return torch.stack(out).to(torch.int32)


# ---------------------------------------------------------------- stage 3: UNet + text encoder
class Ema:
    def __init__(self, modules: list[torch.nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]

    def update(self, modules: list[torch.nn.Module], step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for sh, m in zip(self.shadow, modules, strict=True):
                for k, v in m.state_dict().items():
                    if v.dtype.is_floating_point:
                        sh[k].mul_(d).add_(v.detach(), alpha=1 - d)
                    else:
                        sh[k].copy_(v)


def unet_loss(unet, text, sched, lat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    noise = torch.randn_like(lat)
    t = torch.randint(0, sched.config.num_train_timesteps, (len(lat),))
    noisy = sched.add_noise(lat, noise, t)
    ehs = text(ids.long())[0]
    pred = unet(noisy, t, ehs).sample
    snr = sched.alphas_cumprod[t] / (1 - sched.alphas_cumprod[t])
    weight = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weighting for epsilon prediction
    per = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    return (per * weight).mean()


def sample_batch(cfg: TrainConfig, data: dict, empty: torch.Tensor, gen: torch.Generator):
    n = len(data["latents"])
    idx = torch.randint(0, n, (cfg.unet_batch,), generator=gen)
    which = torch.randint(0, data["ids"].shape[1], (cfg.unet_batch,), generator=gen)
    ids = data["ids"][idx, which].clone()
    drop = torch.rand(cfg.unet_batch, generator=gen) < cfg.cfg_dropout
    ids[drop] = empty
    return data["latents"][idx] * data["scaling_factor"], ids


def train_unet(cfg: TrainConfig) -> None:
    path = cfg.work / "unet.pt"
    data = load_ckpt(cfg.work / "latents.pt")
    tok = tokenizer_for(cfg)
    empty = tok("", padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids[0].int()
    unet, text, sched = make_unet(cfg), make_text_encoder(cfg, tok), make_scheduler()
    opt = torch.optim.AdamW([{"params": unet.parameters(), "lr": cfg.unet_lr},
                             {"params": text.parameters(), "lr": cfg.text_lr}], weight_decay=0.01)
    ema, step = Ema([unet, text], cfg.ema_decay), 0
    ck = load_ckpt(path)
    if ck:
        unet.load_state_dict(ck["unet"])
        text.load_state_dict(ck["text"])
        opt.load_state_dict(ck["opt"])
        ema.shadow, step = ck["ema"], ck["step"]
    gen = torch.Generator().manual_seed(cfg.seed * 31 + step)
    start, t0, acc = time.time(), time.time(), 0.0
    while step < cfg.unet_steps and not out_of_time(cfg, start):
        warm = min(1.0, (step + 1) / 200)
        for g, base in zip(opt.param_groups, (cfg.unet_lr, cfg.text_lr), strict=True):
            g["lr"] = base * warm
        loss = unet_loss(unet, text, sched, *sample_batch(cfg, data, empty, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*unet.parameters(), *text.parameters()], 1.0)
        opt.step()
        step += 1
        ema.update([unet, text], step)
        acc += loss.item()
        if step % cfg.log_every == 0:
            log(cfg, "unet", step=step, loss=acc / cfg.log_every,
                s_per_step=(time.time() - t0) / cfg.log_every)
            acc, t0 = 0.0, time.time()
        if step % cfg.ckpt_every == 0:
            _save_unet(path, unet, text, opt, ema, step)
    _save_unet(path, unet, text, opt, ema, step)


def _save_unet(path: Path, unet, text, opt, ema: Ema, step: int) -> None:
    save_ckpt(path, unet=unet.state_dict(), text=text.state_dict(), opt=opt.state_dict(),
              ema=ema.shadow, step=step)


# ---------------------------------------------------------------- stage 4: export
def export(cfg: TrainConfig, use_ema: bool = True) -> Path:
    """Write the diffusers folder: model_index.json, vae/, unet/, text_encoder/, tokenizer/, scheduler/."""
    from diffusers import StableDiffusionPipeline

    data = load_ckpt(cfg.work / "latents.pt")
    ck = load_ckpt(cfg.work / "unet.pt")
    tok = tokenizer_for(cfg)
    vae = make_vae(cfg.vae_groups, scaling_factor=round(float(data["scaling_factor"]), 5))
    dec = cfg.work / "decoder.pt"  # the fine-tuned decoder, where there is one
    vae.load_state_dict(load_ckpt(dec if dec.exists() else cfg.work / "vae.pt")["model"])
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
    (cfg.out / "training_config.json").write_text(
        json.dumps(_public_config(cfg, ck["step"]), indent=2) + "\n")
    return cfg.out


def _public_config(cfg: TrainConfig, unet_step: int) -> dict:
    d = {k: v for k, v in asdict(cfg).items() if k not in ("out", "work", "extra")}
    d["unet_channels"] = list(cfg.unet_channels)
    d["unet_steps_done"] = unet_step
    return d


def _euler_a_config():
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler.from_config(make_scheduler().config)


# ---------------------------------------------------------------- driver
STAGES = ("vae", "encode", "unet", "decoder", "export")


def run(cfg: TrainConfig, stages: tuple[str, ...] = STAGES) -> None:
    torch.set_num_threads(cfg.threads)
    cfg.work.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    steps = {"vae": train_vae, "encode": encode_dataset, "unet": train_unet,
             "decoder": train_decoder, "export": export}
    for name in stages:
        log(cfg, "stage", name=name)
        steps[name](cfg)
    log(cfg, "stage", name="done")
