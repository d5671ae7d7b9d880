"""Stage 4: the diffusers folder of the finished model (safetensors), with its record."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sdstudio.core import atomic
from sdstudio.core.model_settings import save_model_settings
from sdstudio.demo import dataset
from sdstudio.demo.train.common import TrainConfig, require_ckpt
from sdstudio.demo.train.components import (
    fold_latent_norm,
    make_scheduler,
    make_text_encoder,
    make_unet,
    make_vae,
    tokenizer_for,
)
from sdstudio.demo.train.data import to_unit


def export(cfg: TrainConfig, use_ema: bool = True) -> Path:
    """Write the diffusers folder: model_index.json, vae/, unet/, text_encoder/, tokenizer/, scheduler/."""
    from diffusers import StableDiffusionPipeline

    data = require_ckpt(cfg.work / "latents.pt", "encode")
    ck = require_ckpt(cfg.work / "unet.pt", "unet")
    tok = tokenizer_for(cfg)
    vae = make_vae(cfg, scaling_factor=1.0)  # latents are unit-std per channel after the fold
    dec = cfg.work / "decoder.pt"  # the fine-tuned decoder, where there is one
    vae_ck = require_ckpt(dec if dec.exists() else cfg.work / "vae.pt", "vae")
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
    atomic.write_text(cfg.out / "training_config.json", json.dumps(_public_config(cfg, ck["step"], data), indent=2) + "\n")
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
