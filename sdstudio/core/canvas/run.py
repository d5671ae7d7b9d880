"""The canvas's generation paths, built on the pipeline: A1111's inpaint options (only masked,
mask blur, masked content) and hires fix. `generate` is what the engine calls; a request that
needs none of them goes to the pipeline unchanged (so "whole picture" + "original" stays
diffusers' inpaint pipeline, pixel for pixel).

Each path runs the pipeline on an inner request (inputs written as lossless PNGs in a temporary
folder) and gives back events that carry the user's request.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from sdstudio.core.canvas import masks
from sdstudio.core.canvas.crop import only_masked_box, overlay_mask, paste_back
from sdstudio.core.canvas.upscale import upscale_latents
from sdstudio.core.canvas.upscalers import get_upscaler, upscale_image
from sdstudio.core.errors import UserError
from sdstudio.core.events import GenerationResult, ImageEvent, StepEvent
from sdstudio.core.request import GenerationRequest

OnStep = Callable[[StepEvent], None] | None
OnImage = Callable[[ImageEvent], None] | None
Cancel = Callable[[], bool] | None


def needs_canvas(req: GenerationRequest) -> bool:
    if req.hires:
        return True
    return req.mode == "inpaint" and (req.inpaint_area != "whole" or req.mask_blur > 0
                                      or req.masked_content != "original")


def generate(pipe: Any, request: GenerationRequest, on_step: OnStep = None,
             should_cancel: Cancel = None, on_image: OnImage = None) -> GenerationResult:
    """`pipe.generate(request, ...)`, or the canvas path the request asks for."""
    req = request.validate()
    if not needs_canvas(req):
        return pipe.generate(req, on_step=on_step, should_cancel=should_cancel, on_image=on_image)
    with tempfile.TemporaryDirectory(prefix="sdstudio-canvas-") as tmp:
        if req.hires:
            return hires_fix(pipe, req, Path(tmp), on_step, should_cancel, on_image)
        return inpaint(pipe, req, Path(tmp), on_step, should_cancel, on_image)


# --- inpainting ------------------------------------------------------------------------------
def inpaint(pipe: Any, req: GenerationRequest, tmp: Path, on_step: OnStep = None,
            should_cancel: Cancel = None, on_image: OnImage = None) -> GenerationResult:
    """A1111's img2img inpaint: blur the mask, crop to it (only masked) or not, fill the masked
    content, inpaint at width x height, paste back with the soft mask."""
    assert req.init_image and req.mask
    notices: list[str] = []
    original = _open_rgb(req.init_image)
    mask = masks.load_mask(req.mask, original.size)
    whole = req.inpaint_area == "whole"
    size = (req.width, req.height)
    if whole and original.size != size:  # the pipeline would resize it: do it here, once
        notices.append(f"Init image was resized from {original.size[0]}x{original.size[1]} "
                       f"to {size[0]}x{size[1]}.")
        original = original.resize(size, Image.Resampling.LANCZOS)
        mask = mask.resize(size, Image.Resampling.LANCZOS)
    mask = masks.feather(mask, req.mask_blur)
    box = None if whole else only_masked_box(mask, req.inpaint_padding, *size)
    work, work_mask = original, mask
    if box is not None:
        work = original.crop(box).resize(size, Image.Resampling.LANCZOS)
        work_mask = mask.crop(box).resize(size, Image.Resampling.LANCZOS)
    if req.masked_content != "original":
        work = masks.fill_masked(work, work_mask)
    inner = replace(req, init_image=_save(work, tmp / "init.png"),
                    mask=_save(work_mask, tmp / "mask.png"), inpaint_area="whole",
                    masked_content="original", mask_blur=0)
    edit = _masked_latents(req.masked_content, work_mask)
    with _init_latents(pipe, edit) if edit else _nothing():
        result = pipe.generate(inner, on_step=on_step, should_cancel=should_cancel)
    overlay = overlay_mask(mask, whole)
    events = []
    for ev in result.images:
        image = paste_back(original, ev.image, box, overlay)
        events.append(_emit(ImageEvent(ev.index, ev.seed, image, req, ev.notices, ev.record),
                            on_image))
    return GenerationResult(events, notices + result.notices)


def _masked_latents(content: str, mask: Image.Image):
    """Masked content "latent noise" / "latent nothing": the init image's latents under the
    (rounded) mask replaced by unit noise from the image's seed / by zeros, as A1111 does."""
    if content not in ("latent-noise", "latent-nothing"):
        return None

    def edit(encode: Callable[[], torch.Tensor], generators, dtype) -> torch.Tensor:
        latents = encode()
        h, w = latents.shape[-2:]
        small = mask.resize((w, h), Image.Resampling.BICUBIC)
        m = torch.from_numpy(_array(small)).round().to(latents)[None, None]
        if content == "latent-nothing":
            fill = torch.zeros_like(latents)
        else:
            fill = torch.cat([torch.randn((1, *latents.shape[1:]),
                                          generator=torch.Generator("cpu").manual_seed(
                                              g.initial_seed())) for g in generators])
            fill = fill.to(latents)
        return latents * (1 - m) + fill * m
    return edit


# --- hires fix -------------------------------------------------------------------------------
def hires_fix(pipe: Any, req: GenerationRequest, tmp: Path, on_step: OnStep = None,
              should_cancel: Cancel = None, on_image: OnImage = None) -> GenerationResult:
    """A1111's hires fix: txt2img at width x height, upscale (the latents, or the decoded image),
    then img2img at the hires size with its own steps and strength; each image's second pass
    draws from a generator seeded again with its seed, so it regenerates alone."""
    upscaler = get_upscaler(req.hires_upscaler)
    size = req.hires_size
    first = replace(req, hires_scale=1.0)
    final: dict[str, torch.Tensor] = {}

    def first_step(ev: StepEvent) -> None:
        final["latents"] = ev.latents  # the last step's latents are the ones decoded
        if on_step is not None:
            on_step(replace(ev, phase="first"))

    def second_step(ev: StepEvent) -> None:
        if on_step is not None:
            on_step(replace(ev, phase="hires"))

    result = pipe.generate(first, on_step=first_step, should_cancel=should_cancel)
    notices = list(result.notices)
    events = []
    for ev in result.images:
        if upscaler.space == "latent":
            latents = upscale_latents(upscaler, final["latents"][ev.index:ev.index + 1], size)
            init = ev.image.resize(size, Image.Resampling.LANCZOS)  # the mode's stand-in only
        else:
            latents, init = None, upscale_image(upscaler, ev.image, size)
        second = replace(first, seed=ev.seed, batch_size=1, width=size[0], height=size[1],
                         steps=req.hires_steps or req.steps, strength=req.hires_strength,
                         init_image=_save(init, tmp / f"hires-{ev.index}.png"))
        edit = (lambda encode, generators, dtype, z=latents: z.to(dtype)) if latents is not None \
            else None
        with _init_latents(pipe, edit) if edit else _nothing():
            out = pipe.generate(second, on_step=second_step, should_cancel=should_cancel)
        notices += [n for n in out.notices if n not in notices]
        done = out.images[0]
        events.append(_emit(ImageEvent(ev.index, ev.seed, done.image, req, ev.notices,
                                       done.record), on_image))
    return GenerationResult(events, notices)


# --- helpers ---------------------------------------------------------------------------------
@contextmanager
def _init_latents(pipe: Any, edit: Callable[..., torch.Tensor]) -> Iterator[None]:
    """While active, the pipeline's VAE encoding of the init image (and only of it: not of the
    masked image a 9-channel UNet also gets) is `edit(encode, generators, dtype)`, where
    `encode()` does the encoding. `edit` may skip `encode` (hires fix's latent upscale: no
    sample is drawn, as diffusers given latents draws none)."""
    load, encode = pipe.load_inputs, pipe.encode_image
    seen: dict[str, Any] = {}

    def load_inputs(req, notices):
        inputs = load(req, notices)
        seen["init"] = inputs.init
        return inputs

    def encode_image(image, generators, dtype):
        if image is not None and image is seen.get("init"):
            return edit(lambda: encode(image, generators, dtype), generators, dtype)
        return encode(image, generators, dtype)

    pipe.load_inputs, pipe.encode_image = load_inputs, encode_image
    try:
        yield
    finally:
        del pipe.load_inputs, pipe.encode_image  # the class's methods again


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _emit(event: ImageEvent, on_image: OnImage) -> ImageEvent:
    if on_image is not None:
        on_image(event)
    return event


def _open_rgb(path: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"Init image {path} cannot be opened ({exc}).") from None


def _save(image: Image.Image, path: Path) -> str:
    image.save(path, format="PNG", compress_level=1)
    return str(path)


def _array(image: Image.Image):
    import numpy as np

    return np.asarray(image, dtype=np.float32) / 255.0
