"""Our hand-assembled loop gives diffusers' pixels, for every registered sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedulers import SAMPLERS

MAX_DIFF = 1  # in 0..255 pixel levels: 1/255
NAMES = [s.name for s in SAMPLERS]
PROMPT = "a photo of a red cat on a blue background"


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def inpaint_model(tiny_inpaint_model_dir):
    return load_model(str(tiny_inpaint_model_dir), device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A 48x32 init image and a mask (white = repaint) as files."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    init = Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))
    mask = np.zeros((32, 48), dtype=np.uint8)
    mask[8:24, 16:40] = 255
    init.save(d / "init.png")
    Image.fromarray(mask).save(d / "mask.png")
    return d / "init.png", d / "mask.png"


def _pipe(cls, m, scheduler: str):
    pipe = cls(
        vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=m.unet,
        scheduler=fresh_scheduler(scheduler, m.scheduler_config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _ours(m, req: GenerationRequest) -> list[np.ndarray]:
    result = StableDiffusion(m).generate(req)
    return [np.asarray(ev.image, dtype=np.int16) for ev in result.images]


def _theirs(pipe, req: GenerationRequest, **kwargs) -> list[np.ndarray]:
    gens = [torch.Generator("cpu").manual_seed(s) for s in req.seeds()]
    out = pipe(
        req.prompt, negative_prompt=req.negative_prompt or None,
        num_inference_steps=req.steps, guidance_scale=req.guidance, generator=gens,
        num_images_per_prompt=req.batch_size, output_type="np", **kwargs,
    ).images
    return list(np.round(out * 255).astype(np.int16))  # as their PIL output would hold


def _assert_same(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert a.std() > 2, "degenerate image: the comparison would mean nothing"
        assert np.abs(a - b).max() <= MAX_DIFF


@pytest.mark.parametrize("scheduler", NAMES)
def test_txt2img_cfg_negative_batch_nonsquare(model, tiny_model_dir, scheduler):
    from diffusers import StableDiffusionPipeline

    req = GenerationRequest(
        PROMPT, negative_prompt="green square", seed=7, steps=4, guidance=6.0,
        scheduler=scheduler, width=48, height=32, batch_size=2, model=str(tiny_model_dir),
    )
    ours = _ours(model, req)
    theirs = _theirs(_pipe(StableDiffusionPipeline, model, scheduler), req, width=48, height=32)
    _assert_same(ours, theirs)
    # image 1 of the batch is seed 8 alone
    alone = _ours(model, GenerationRequest(**{**req.to_dict(), "seed": 8, "batch_size": 1}))
    assert np.abs(alone[0] - ours[1]).max() <= MAX_DIFF


@pytest.mark.parametrize("scheduler", NAMES)
def test_txt2img_no_cfg_square(model, tiny_model_dir, scheduler):
    from diffusers import StableDiffusionPipeline

    req = GenerationRequest(
        PROMPT, seed=3, steps=3, guidance=1.0, scheduler=scheduler, width=32, height=32,
        model=str(tiny_model_dir),
    )
    theirs = _theirs(_pipe(StableDiffusionPipeline, model, scheduler), req, width=32, height=32)
    _assert_same(_ours(model, req), theirs)


@pytest.mark.parametrize("scheduler", NAMES)
def test_img2img(model, tiny_model_dir, images, scheduler):
    from diffusers import StableDiffusionImg2ImgPipeline

    init, _ = images
    req = GenerationRequest(
        PROMPT, negative_prompt="blurry", seed=11, steps=5, guidance=5.0, scheduler=scheduler,
        width=48, height=32, batch_size=2, init_image=str(init), strength=0.6,
        model=str(tiny_model_dir),
    )
    pipe = _pipe(StableDiffusionImg2ImgPipeline, model, scheduler)
    theirs = _theirs(pipe, req, image=Image.open(init).convert("RGB"), strength=req.strength)
    _assert_same(_ours(model, req), theirs)


@pytest.mark.parametrize("scheduler", NAMES)
@pytest.mark.parametrize("kind", ["4ch", "9ch"])
def test_inpaint(model, inpaint_model, tiny_model_dir, images, scheduler, kind):
    from diffusers import StableDiffusionInpaintPipeline

    m = model if kind == "4ch" else inpaint_model
    init, mask = images
    strength = 0.75 if kind == "4ch" else 1.0
    req = GenerationRequest(
        PROMPT, seed=5, steps=4, guidance=4.0, scheduler=scheduler, width=48, height=32,
        batch_size=2, init_image=str(init), mask=str(mask), strength=strength,
        model=str(tiny_model_dir),
    )
    pipe = _pipe(StableDiffusionInpaintPipeline, m, scheduler)
    # one init image per generator: diffusers then encodes image i with generator i
    im, mk = Image.open(init).convert("RGB"), Image.open(mask).convert("L")
    theirs = _theirs(
        pipe, req, image=[im, im], mask_image=[mk, mk], strength=strength, width=48, height=32
    )
    _assert_same(_ours(m, req), theirs)
