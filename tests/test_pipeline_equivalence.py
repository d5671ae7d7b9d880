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

# diffusers' schedulers trip numpy 2 deprecation warnings by the thousand: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

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


# -- engine behaviour: events, cancel, notices -----------------------------------------------------


def _req(tiny_model_dir, **kw) -> GenerationRequest:
    base = dict(prompt=PROMPT, steps=3, width=32, height=32, model=str(tiny_model_dir))
    return GenerationRequest(**{**base, **kw})


def test_step_events_and_image_events(model, tiny_model_dir):
    steps, images = [], []
    result = StableDiffusion(model).generate(
        _req(tiny_model_dir, batch_size=2, seed=4), on_step=steps.append, on_image=images.append
    )
    assert [e.step for e in steps] == [1, 2, 3] and {e.total for e in steps} == {3}
    assert steps[0].latents.shape == (2, 4, 4, 4) and steps[-1].elapsed >= steps[0].elapsed
    assert [(e.index, e.seed) for e in result.images] == [(0, 4), (1, 5)]
    assert images == result.images and result.images[0].image.size == (32, 32)


def test_cancel_is_checked_every_step(model, tiny_model_dir):
    from sdstudio.core.errors import GenerationCancelled

    seen = []
    with pytest.raises(GenerationCancelled):
        StableDiffusion(model).generate(
            _req(tiny_model_dir, steps=5), on_step=seen.append, should_cancel=lambda: len(seen) >= 2
        )
    assert len(seen) == 2


def test_guidance_one_skips_unconditional_pass(model, tiny_model_dir, monkeypatch):
    batches = []
    forward = model.unet.forward

    def spy(sample, *a, **kw):
        batches.append(sample.shape[0])
        return forward(sample, *a, **kw)

    monkeypatch.setattr(model.unet, "forward", spy)
    StableDiffusion(model).generate(_req(tiny_model_dir, guidance=1.0, steps=2))
    StableDiffusion(model).generate(_req(tiny_model_dir, guidance=7.0, steps=2))
    assert batches == [1, 1, 2, 2]


def test_long_prompt_is_encoded_in_chunks_not_truncated(model, tiny_model_dir):
    result = StableDiffusion(model).generate(_req(tiny_model_dir, prompt="cat " * 100, steps=1))
    assert result.images and not any("longer than" in n for n in result.notices)


def test_wrong_size_init_image_and_mask_are_resized_with_notice(model, tiny_model_dir, images):
    init, mask = images  # 48x32
    result = StableDiffusion(model).generate(
        _req(tiny_model_dir, init_image=str(init), mask=str(mask), steps=2, strength=1.0)
    )
    assert result.images[0].image.size == (32, 32)
    assert any(n.startswith("Init image was resized from 48x32 to 32x32") for n in result.notices)
    assert any(n.startswith("Mask was resized") for n in result.notices)


def test_strength_too_small_for_steps_is_a_user_error(model, tiny_model_dir, images):
    from sdstudio.core.errors import UserError

    with pytest.raises(UserError, match="leaves no step"):
        StableDiffusion(model).generate(
            _req(tiny_model_dir, init_image=str(images[0]), width=48, strength=0.1, steps=3)
        )
