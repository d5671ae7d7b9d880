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
    add_generation_arguments(p)
    p.add_argument("--init-image", default=None, help="PNG/JPEG to start from (img2img)")
    p.add_argument("--mask", default=None, help="inpainting mask: white = repaint, black = keep")
    p.add_argument("--hires-scale", type=float, default=1.0,
                   help="hires fix: a second img2img pass at this scale (1 = off)")
    p.add_argument("--hires-steps", type=int, default=0,
                   help="the hires pass's steps (0 = the same as --steps)")
    p.add_argument("--hires-denoise", "--hires-strength", dest="hires_strength", type=float,
                   default=0.5, help="the hires pass's denoising strength in (0, 1]")
    p.add_argument("--hires-upscaler", default="Latent",
                   help="Latent, latent-nearest, latent-bicubic, lanczos, nearest")
    p.add_argument("--out", required=True, help="folder for the PNGs (created if missing)")
    p.set_defaults(func=run)


def add_generation_arguments(p: argparse.ArgumentParser, strength: float = d.DEFAULT_STRENGTH,
                             mask_blur: int = 0, inpaint_area: str = "whole") -> None:
    """The options of one generation that `generate`, `outpaint` and `grid` share."""
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
    p.add_argument("--strength", type=float, default=strength,
                   help="img2img/inpaint strength in (0, 1]")
    p.add_argument("--inpaint-area", choices=d.INPAINT_AREAS, default=inpaint_area,
                   help="inpaint the whole picture, or only the masked part (cropped, at the "
                   "model's size, pasted back)")
    p.add_argument("--padding", type=int, default=32,
                   help="only-masked: pixels of context around the mask")
    p.add_argument("--masked-content", choices=d.MASKED_CONTENTS, default="original",
                   help="what the masked area starts from")
    p.add_argument("--mask-blur", type=int, default=mask_blur,
                   help="Gaussian blur of the mask's edge in pixels (the soft paste back)")
    p.add_argument("--device", default="auto", choices=d.DEVICES)
    p.add_argument("--dtype", default="auto", choices=d.DTYPES,
                   help="auto: fp16 on CUDA (bf16 for a model stored in bf16), fp32 elsewhere")
    p.add_argument("--memory", default="auto", choices=d.MEMORY_MODES,
                   help="where the memory ladder starts (auto: fastest); on out of memory the "
                        "job is retried one rung down: " + ", ".join(d.MEMORY_RUNGS))
    p.add_argument("--low-vram", dest="memory", action="store_const", const="offload",
                   help="the same as --memory offload: models wait on the CPU until used")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the UNet and VAE decoder (slow first run at each size)")
    p.add_argument("--vae", default=None,
                   help='a separate VAE (file or folder) for this model, remembered; "none" for '
                        "the model's own")
    p.add_argument("--prediction", default=None, choices=["epsilon", "v"],
                   help="SD 2.x single files: epsilon or v-prediction (default: guessed, then "
                        "remembered per file)")
    p.add_argument("--clip-skip", type=int, default=1,
                   help="A1111's Clip skip: 1 = last text-encoder layer, 2 = penultimate")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]",
                   help="apply a LoRA file (repeatable; weight default 1)")
    p.add_argument("--lora-dir", default=None,
                   help="folder where the prompt's <lora:NAME:WEIGHT> tags find NAME.safetensors")
    p.add_argument("--embeddings-dir", default=None,
                   help="folder of textual-inversion embeddings, used by file name in the prompt")


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
        init_image=getattr(args, "init_image", None), strength=args.strength,
        mask=getattr(args, "mask", None), model=args.model,
        device=args.device, dtype=args.dtype, memory=getattr(args, "memory", "auto"),
        compile=bool(getattr(args, "compile", False)), inpaint_area=args.inpaint_area,
        inpaint_padding=args.padding, masked_content=args.masked_content,
        mask_blur=args.mask_blur, hires_scale=getattr(args, "hires_scale", 1.0),
        hires_steps=getattr(args, "hires_steps", 0),
        hires_strength=getattr(args, "hires_strength", 0.5),
        hires_upscaler=getattr(args, "hires_upscaler", "Latent"),
        vae=getattr(args, "vae", None), prediction=getattr(args, "prediction", None),
        clip_skip=getattr(args, "clip_skip", 1), loras=tuple(getattr(args, "lora", ())),
        lora_dir=getattr(args, "lora_dir", None),
        embeddings_dir=getattr(args, "embeddings_dir", None),
    ).validate()
    for what, path in (("Init image", request.init_image), ("Mask", request.mask)):
        if path and not Path(path).is_file():
            raise UserError(f"{what} {path} does not exist.")
    return request, chosen


def run(args: argparse.Namespace) -> int:
    """Validate, load, apply the model's defaults to what was not given, generate, save."""
    from sdstudio.core import threads
    from sdstudio.core.engine import Engine

    request, chosen = request_from_args(args)
    out = _out_dir(args.out)

    threads.configure()  # physical cores, shared with other running engine processes
    engine = Engine()
    engine.load(request.model, request.device, request.dtype, request.vae, request.prediction)
    request = engine.with_model_defaults(request, chosen)
    with _Progress() as progress:
        result = engine.generate(request, on_step=progress, on_notice=progress.notice)
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
        if self.bar is not None and event.step == 1:  # the next pass (hires fix, next image)
            self.bar.close()
            self.bar = None
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, file=sys.stderr, unit="step", leave=False,
                            desc=event.phase or None)
        self.bar.update(1)

    def notice(self, text: str) -> None:
        """Said while the job runs (compiled mode's warm-up): above the bar, not through it."""
        from tqdm import tqdm

        tqdm.write(f"note: {text}", file=sys.stderr)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
