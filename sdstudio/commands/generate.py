"""`sdstudio generate PROMPT ... --out DIR`: write PNGs, print each path on its own line."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Literal copies of request.DEMO_MODEL and schedulers.DEFAULT_SAMPLER (tests check they agree):
# importing those modules would import torch, and `sdstudio --help` must stay fast.
DEMO_MODEL = "demo"
DEFAULT_SAMPLER = "Euler a"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from a prompt (txt2img, img2img, inpaint)")
    p.add_argument("prompt")
    p.add_argument("--model", default=DEMO_MODEL,
                   help='"demo", a diffusers folder, a .safetensors/.ckpt file or a cached HF id')
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--scheduler", default=DEFAULT_SAMPLER,
                   help='sampler name or slug, e.g. "Euler a", dpmpp_2m_karras (see `sdstudio schedulers`)')
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale; <= 1 disables CFG (default: the model's own, else 7.5)")
    p.add_argument("--seed", type=int, default=0, help="image i of the batch uses seed + i")
    p.add_argument("--width", type=int, default=None, help="default: the model's native size")
    p.add_argument("--height", type=int, default=None, help="default: the model's native size")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--init-image", default=None, help="PNG/JPEG to start from (img2img)")
    p.add_argument("--strength", type=float, default=0.75, help="img2img/inpaint strength in (0, 1]")
    p.add_argument("--mask", default=None, help="inpainting mask: white = repaint, black = keep")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16"])
    p.add_argument("--out", required=True, help="folder for the PNGs (created if missing)")
    p.add_argument("--clip-skip", type=int, default=1,
                   help="A1111's Clip skip: 1 = last text-encoder layer, 2 = penultimate")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]",
                   help="apply a LoRA file (repeatable; weight default 1)")
    p.add_argument("--lora-dir", default=None,
                   help="folder where the prompt's <lora:NAME:WEIGHT> tags find NAME.safetensors")
    p.add_argument("--embeddings-dir", default=None,
                   help="folder of textual-inversion embeddings, used by file name in the prompt")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sdstudio.core.errors import UserError
    from sdstudio.core.model_settings import DEFAULT_GUIDANCE
    from sdstudio.core.request import GenerationRequest

    request = GenerationRequest(
        prompt=args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps,
        guidance=_or(args.guidance, DEFAULT_GUIDANCE), scheduler=args.scheduler, width=_or(args.width, 8),
        height=_or(args.height, 8), batch_size=args.batch, init_image=args.init_image,
        strength=args.strength, mask=args.mask, model=args.model, device=args.device,
        dtype=args.dtype, clip_skip=args.clip_skip, loras=tuple(args.lora),
        lora_dir=args.lora_dir, embeddings_dir=args.embeddings_dir,
    ).validate()  # fail fast, before loading a model
    for what, path in (("Init image", args.init_image), ("Mask", args.mask)):
        if path and not Path(path).is_file():
            raise UserError(f"{what} {path} does not exist.")
    out = _out_dir(args.out)

    from sdstudio.core.models import load_model
    from sdstudio.core.pipeline import StableDiffusion

    model = load_model(args.model, args.device, args.dtype)
    native = model.native_size
    request = replace(request, width=_or(args.width, native), height=_or(args.height, native),
                      guidance=_or(args.guidance, model.guidance))
    with _Progress() as progress:
        result = _generate(StableDiffusion(model), request, progress)
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    extra = _record(model)
    for event in result.images:
        print(_save(out, event, extra), flush=True)
    return 0


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _generate(sd, request, progress):
    import torch

    from sdstudio.core.errors import UserError

    try:
        return sd.generate(request, on_step=progress)
    except torch.OutOfMemoryError:
        raise UserError(
            "Out of memory: lower the size or the batch, or use --dtype fp16 on a GPU."
        ) from None


def _out_dir(path: str) -> Path:
    from sdstudio.core.errors import UserError

    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the output folder {out}: {exc.strerror or exc}.") from None
    return out


def _record(model) -> dict:
    extra = {"device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
             "scheduler_config": model.scheduler_config}
    if model.sha256:
        extra["model_sha256"] = model.sha256
    return extra


def _save(out: Path, event, extra: dict) -> Path:
    """Write `NNNNN-SEED.png`, NNNNN one past the highest number already in the folder (as A1111)."""
    from sdstudio.core.metadata import write_png

    numbers = [int(p.name[:5]) for p in out.glob("[0-9][0-9][0-9][0-9][0-9]-*.png")]
    n = max(numbers, default=-1) + 1
    while (path := out / f"{n:05d}-{event.seed}.png").exists():
        n += 1
    return write_png(path, event.image, event.request, event.seed, extra, overwrite=False)


class _Progress:
    """tqdm bar on stderr, created at the first step (the total is known then)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, event) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, file=sys.stderr, unit="step", leave=False)
        self.bar.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
