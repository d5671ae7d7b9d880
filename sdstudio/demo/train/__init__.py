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
6. `preview` - optional, after `export`: a tiny preview decoder (AutoencoderTiny) for the
               exported VAE's latents, written to `out/vae_tiny`.

The data set is drawn once per process by `workers` processes and kept in memory (uint8, on the
training device). On a GPU the whole recipe takes minutes; `vae_minutes`/`unet_minutes` fit a
stage's step count to a time budget after timing its first steps (the fitted count is logged and
written to `training_config.json`, so a rerun with that count is reproducible). On a busy 2-core
CPU use one thread per process (`threads=1`): two OpenMP threads competing with other work ran
~10x slower than one.

Modules, one per stage: `common` (configuration, utilities and the one training loop every
stage runs), `components`, `data`, `vae` (stage 1 and the decoder), `encode`, `unet`, `export`, `preview`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sdstudio.demo.train.common import (
    MAX_TOKENS,
    TrainConfig,
    load_ckpt,
    log,
    lr_factor,
    seed_everything,
    torch_device,
)
from sdstudio.demo.train.components import fold_latent_norm, make_vae
from sdstudio.demo.train.encode import encode_dataset
from sdstudio.demo.train.export import export
from sdstudio.demo.train.preview import train_preview
from sdstudio.demo.train.unet import train_unet
from sdstudio.demo.train.vae import train_decoder, train_vae

__all__ = ["MAX_TOKENS", "STAGES", "TrainConfig", "fold_latent_norm", "load_ckpt", "lr_factor",
           "make_vae", "run"]

STAGES = ("vae", "encode", "unet", "decoder", "export", "preview")


def run(cfg: TrainConfig, stages: tuple[str, ...] = ("vae", "encode", "unet", "export")) -> None:
    torch.set_num_threads(cfg.threads)
    if torch_device(cfg).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg.work.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    steps: dict[str, Callable[[TrainConfig], object]] = {
        "vae": train_vae, "encode": encode_dataset, "unet": train_unet,
        "decoder": train_decoder, "export": export, "preview": train_preview}
    for name in stages:
        log(cfg, "stage", name=name)
        steps[name](cfg)
    log(cfg, "stage", name="done", device=str(torch_device(cfg)))
