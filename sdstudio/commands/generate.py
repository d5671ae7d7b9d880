"""`sdstudio generate PROMPT ... --out DIR`: write PNGs, print each path on its own line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sdstudio.core import defaults as d  # torch-free: `sdstudio --help` stays fast

if TYPE_CHECKING:
    from sdstudio.core.events import StepEvent
    from sdstudio.core.request import GenerationRequest

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from a prompt (txt2img, img2img, inpaint)")
    p.add_argument("prompt")
    add_generation_options(p)
    p.add_argument("--out", required=True, help="folder for the PNGs (created if missing)")
    p.set_defaults(func=run)


def add_generation_options(p: argparse.ArgumentParser) -> None:
    """Every option of one generation (`generate` and `grid` share them)."""
    p.add_argument("--model", default=d.DEMO_MODEL,
                   help='"demo", a diffusers folder, a .safetensors/.ckpt file or a cached HF id')
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--scheduler", default=d.DEFAULT_SAMPLER,
                   help='sampler name or slug, e.g. "Euler a", dpmpp_2m_karras (see `sdstudio schedulers`)')
    p.add_argument("--steps", type=int, default=d.DEFAULT_STEPS)
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale; <= 1 disables CFG (default: the model's own, else "
                   f"{d.DEFAULT_GUIDANCE:g})")
    p.add_argument("--seed", type=int, default=0, help="image i of the batch uses seed + i")
    p.add_argument("--width", type=int, default=None, help="default: the model's native size")
    p.add_argument("--height", type=int, default=None, help="default: the model's native size")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--init-image", default=None, help="PNG/JPEG to start from (img2img)")
    p.add_argument("--strength", type=float, default=d.DEFAULT_STRENGTH,
                   help="img2img/inpaint strength in (0, 1]")
    p.add_argument("--mask", default=None, help="inpainting mask: white = repaint, black = keep")
    p.add_argument("--device", default="auto", choices=d.DEVICES)
    p.add_argument("--dtype", default="auto", choices=d.DTYPES)


def request_from_args(args: argparse.Namespace) -> tuple[GenerationRequest, set[str]]:
    """The validated request of the options, and the fields of it the user chose (the model's
    own size and CFG scale fill the others once it is loaded)."""
    from sdstudio.core.errors import UserError
    from sdstudio.core.model_settings import recommended_guidance_for
    from sdstudio.core.request import GenerationRequest

    chosen = {name for name in ("width", "height", "guidance") if getattr(args, name) is not None}
    request = GenerationRequest(  # fail fast, before loading a model
        prompt=args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps,
        guidance=_or(args.guidance, recommended_guidance_for(args.model)),
        scheduler=args.scheduler, width=_or(args.width, d.DEFAULT_SIZE),
        height=_or(args.height, d.DEFAULT_SIZE), batch_size=args.batch,
        init_image=args.init_image, strength=args.strength, mask=args.mask, model=args.model,
        device=args.device, dtype=args.dtype,
    ).validate()
    for what, path in (("Init image", args.init_image), ("Mask", args.mask)):
        if path and not Path(path).is_file():
            raise UserError(f"{what} {path} does not exist.")
    return request, chosen


def run(args: argparse.Namespace) -> int:
    """Validate, load, apply the model's defaults to what was not given, generate, save."""
    from sdstudio.core.engine import Engine

    request, chosen = request_from_args(args)
    out = _out_dir(args.out)

    engine = Engine()
    engine.load(request.model, request.device, request.dtype)
    request = engine.with_model_defaults(request, chosen)
    with _Progress() as progress:
        result = engine.generate(request, on_step=progress)
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    from sdstudio.core.gallery.saving import PendingImage, save_to_folder

    code = 0
    jobs = (PendingImage(e.image, e.request, e.seed, e.record) for e in result.images)
    for saved in save_to_folder(out, jobs):  # every image tried; the rescue folder if out fails
        if saved.message:
            print(f"{'note' if saved.path else 'error'}: {saved.message}", file=sys.stderr)
        if saved.path:
            print(saved.path, flush=True)
        else:
            code = 1
    return code


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _out_dir(path: str) -> Path:
    from sdstudio.core.errors import UserError

    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the output folder {out}: {exc.strerror or exc}.") from None
    return out


class _Progress:
    """tqdm bar on stderr, created at the first step (the total is known then)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, event: StepEvent) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, file=sys.stderr, unit="step", leave=False)
        self.bar.update(1)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
