"""`sdstudio train-demo`: train the built-in demo model from scratch on the procedural data set."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-demo", help="train the small demo model (coloured shapes) on this machine",
        description="Train the demo text-to-image model: VAE, then UNet + CLIP text encoder. "
                    "Checkpoints go to --work; rerun with --resume to continue after a stop.")
    p.add_argument("--out", type=Path, required=True, help="folder for the diffusers model")
    p.add_argument("--work", type=Path, default=None,
                   help="checkpoints, latent cache and log (default: OUT/../OUT.work)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in --work")
    p.add_argument("--stages", default="vae,encode,unet,export",
                   help="comma-separated subset of vae,encode,unet,decoder,export,preview")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (1 is best on a busy CPU)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes drawing the data set (default: one per CPU core)")
    p.add_argument("--images", type=int, default=None, help="training images for the UNet")
    for stage in ("vae", "unet", "decoder", "preview"):
        p.add_argument(f"--{stage}-steps", type=int, default=None)
        p.add_argument(f"--{stage}-minutes", type=float, default=None,
                       help=f"fit the {stage} step count to this many minutes (after timing 50 steps)")
    p.add_argument("--unet-batch", type=int, default=None)
    p.add_argument("--unet-lr", type=float, default=None)
    p.add_argument("--text-lr", type=float, default=None)
    p.add_argument("--vae-batch", type=int, default=None)
    p.add_argument("--unet-attention", default=None,
                   help="attention per UNet level, e.g. 0,1,1 (default) or 1,1,1")
    p.add_argument("--warm-restart", action="store_true",
                   help="unet: keep the checkpoint's weights, start a new optimiser and schedule")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop each training stage after this many minutes (checkpoint saved)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sdstudio.core.errors import UserError
    from sdstudio.demo.train import STAGES, TrainConfig
    from sdstudio.demo.train import run as train

    work = args.work or args.out.parent / f"{args.out.name}.work"
    if work.exists() and any(work.iterdir()) and not args.resume:
        raise UserError(f"{work} already holds a training run; pass --resume to continue it.")
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise UserError(f"Unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}.")
    cfg = TrainConfig(out=args.out, work=work, seed=args.seed, device=args.device,
                      threads=args.threads, workers=args.workers, max_minutes=args.max_minutes,
                      warm_restart=args.warm_restart)
    if args.unet_attention is not None:
        flags = tuple(v.strip() in ("1", "true", "yes") for v in args.unet_attention.split(","))
        if len(flags) != len(cfg.unet_channels):
            raise UserError(f"--unet-attention needs {len(cfg.unet_channels)} values, one per UNet level.")
        cfg.unet_attention = flags
    for field in ("vae_steps", "unet_steps", "decoder_steps", "vae_minutes", "unet_minutes",
                  "decoder_minutes", "preview_steps", "preview_minutes", "unet_batch", "unet_lr",
                  "text_lr", "vae_batch"):
        if (value := getattr(args, field)) is not None:
            setattr(cfg, field, value)
    if args.images is not None:
        cfg.n_images = args.images
    train(cfg, stages)
    print(f"model written to {args.out}" if "export" in stages else "stages done")
    return 0
