"""Our hand-assembled loop gives diffusers' pixels, for every family and every registered sampler.

Families: SD 1.x, SD 2.x (epsilon and v-prediction), SDXL (base, inpainting, refiner), each a tiny
random model built in a fixture, against diffusers' own `StableDiffusionPipeline` /
`StableDiffusionXLPipeline` and their img2img and inpaint siblings. Every sampler runs txt2img
for every family; img2img and inpainting run every sampler for SD 1.x and a few for the others.
"""

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
FEW = ["Euler a", "DPM++ 2M SDE", "Heun"]  # ancestral, SDE noise, second order
PROMPT = "a photo of a red cat on a blue background"
FAMILIES = ["sd1", "sd2", "sd2v", "sdxl"]
BASE = {  # family under test -> fixture of its tiny model
    "sd1": "tiny_model_dir", "sd2": "tiny_sd2_model_dir", "sd2v": "tiny_sd2v_model_dir",
    "sdxl": "tiny_sdxl_model_dir", "sdxl-refiner": "tiny_sdxl_refiner_model_dir",
}
NINE = {"sd1": "tiny_inpaint_model_dir", "sd2": "tiny_sd2_inpaint_model_dir",
        "sdxl": "tiny_sdxl_inpaint_model_dir"}


@pytest.fixture(scope="module")
def models(request):
    """models(fixture_name) -> that tiny model loaded on the CPU, once per module."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_model(str(request.getfixturevalue(name)), device="cpu")
        return cache[name]

    return get


@pytest.fixture(scope="module")
def model(models):
    return models("tiny_model_dir")


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


def _pipe(mode: str, m, scheduler: str):
    """diffusers' own pipeline for `mode` on the components of our loaded model `m`."""
    import diffusers

    xl = m.family.name == "sdxl"
    suffix = {"txt2img": "Pipeline", "img2img": "Img2ImgPipeline", "inpaint": "InpaintPipeline"}
    cls = getattr(diffusers, ("StableDiffusionXL" if xl else "StableDiffusion") + suffix[mode])
    if xl:
        flags = m.pipeline_config
        extra = dict(
            text_encoder_2=m.text_encoder_2, tokenizer_2=m.tokenizer_2, add_watermarker=False,
            force_zeros_for_empty_prompt=flags.get("force_zeros_for_empty_prompt", True),
        )
        if mode != "txt2img":
            extra["requires_aesthetics_score"] = flags.get("requires_aesthetics_score", False)
    else:
        extra = dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = cls(
        vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=m.unet,
        scheduler=fresh_scheduler(scheduler, m.scheduler_config), **extra,
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


def test_tiny_models_are_the_families_they_stand_for(models):
    labels = {name: models(fixture).family_label for name, fixture in BASE.items()}
    labels.update({f"{k}-9ch": models(v).family_label for k, v in NINE.items()})
    assert labels["sd1"] == "SD 1.x" and labels["sd1-9ch"] == "SD 1.x inpainting"
    assert labels["sd2"] == "SD 2.x (epsilon)" and labels["sd2v"] == "SD 2.x (v)"
    assert labels["sd2-9ch"] == "SD 2.x inpainting (epsilon)"
    assert labels["sdxl"] == "SDXL" and labels["sdxl-9ch"] == "SDXL inpainting"
    assert labels["sdxl-refiner"] == "SDXL refiner"


@pytest.mark.parametrize("scheduler", NAMES)
@pytest.mark.parametrize("family", FAMILIES)
def test_txt2img_cfg_negative_batch_nonsquare(models, family, scheduler):
    m = models(BASE[family])
    req = GenerationRequest(
        PROMPT, negative_prompt="green square", seed=7, steps=4, guidance=6.0,
        scheduler=scheduler, width=48, height=32, batch_size=2,
    )
    ours = _ours(m, req)
    theirs = _theirs(_pipe("txt2img", m, scheduler), req, width=48, height=32)
    _assert_same(ours, theirs)
    # image 1 of the batch is seed 8 alone
    alone = _ours(m, GenerationRequest(**{**req.to_dict(), "seed": 8, "batch_size": 1}))
    assert np.abs(alone[0] - ours[1]).max() <= MAX_DIFF


@pytest.mark.parametrize(
    "family, scheduler", [("sd1", n) for n in NAMES] + [(f, n) for f in FAMILIES[1:] for n in FEW]
)
def test_txt2img_no_cfg_square(models, family, scheduler):
    m = models(BASE[family])
    req = GenerationRequest(
        PROMPT, seed=3, steps=3, guidance=1.0, scheduler=scheduler, width=32, height=32
    )
    theirs = _theirs(_pipe("txt2img", m, scheduler), req, width=32, height=32)
    _assert_same(_ours(m, req), theirs)


@pytest.mark.parametrize("scheduler", FEW)
@pytest.mark.parametrize("family", FAMILIES)
def test_txt2img_cfg_empty_negative(models, family, scheduler):
    """SDXL's empty negative prompt is zeros (`force_zeros_for_empty_prompt`), SD's is ""."""
    m = models(BASE[family])
    req = GenerationRequest(
        PROMPT, seed=2, steps=3, guidance=7.0, scheduler=scheduler, width=32, height=48
    )
    theirs = _theirs(_pipe("txt2img", m, scheduler), req, width=32, height=48)
    _assert_same(_ours(m, req), theirs)


@pytest.mark.parametrize(
    "family, scheduler",
    [("sd1", n) for n in NAMES] + [(f, n) for f in [*FAMILIES[1:], "sdxl-refiner"] for n in FEW],
)
def test_img2img(models, images, family, scheduler):
    m = models(BASE[family])
    init, _ = images
    req = GenerationRequest(
        PROMPT, negative_prompt="blurry", seed=11, steps=5, guidance=5.0, scheduler=scheduler,
        width=48, height=32, batch_size=2, init_image=str(init), strength=0.6,
    )
    pipe = _pipe("img2img", m, scheduler)
    theirs = _theirs(pipe, req, image=Image.open(init).convert("RGB"), strength=req.strength)
    _assert_same(_ours(m, req), theirs)


def test_refiner_img2img_encodes_an_empty_negative_prompt(models, images):
    """The refiner says `force_zeros_for_empty_prompt: false`: "" is encoded, as diffusers does."""
    m = models(BASE["sdxl-refiner"])
    init, _ = images
    req = GenerationRequest(
        PROMPT, seed=4, steps=4, guidance=6.0, width=48, height=32, init_image=str(init),
        strength=0.8,
    )
    pipe = _pipe("img2img", m, req.scheduler)
    theirs = _theirs(pipe, req, image=Image.open(init).convert("RGB"), strength=req.strength)
    _assert_same(_ours(m, req), theirs)


@pytest.mark.parametrize("kind", ["4ch", "9ch"])
@pytest.mark.parametrize(
    "family, scheduler",
    [("sd1", n) for n in NAMES] + [(f, n) for f in ("sd2", "sdxl") for n in FEW],
)
def test_inpaint(models, images, family, scheduler, kind):
    m = models(BASE[family] if kind == "4ch" else NINE[family])
    init, mask = images
    strength = 0.75 if kind == "4ch" else 1.0
    req = GenerationRequest(
        PROMPT, seed=5, steps=4, guidance=4.0, scheduler=scheduler, width=48, height=32,
        batch_size=2, init_image=str(init), mask=str(mask), strength=strength,
    )
    pipe = _pipe("inpaint", m, scheduler)
    # one init image per generator: diffusers then encodes image i with generator i
    im, mk = Image.open(init).convert("RGB"), Image.open(mask).convert("L")
    theirs = _theirs(
        pipe, req, image=[im, im], mask_image=[mk, mk], strength=strength, width=48, height=32
    )
    _assert_same(_ours(m, req), theirs)


@pytest.mark.parametrize("scheduler", FEW)
def test_inpaint_9ch_below_full_strength(models, images, scheduler):
    """A 9-channel UNet at strength < 1 starts from the noised init image (SDXL inpainting)."""
    m = models(NINE["sdxl"])
    init, mask = images
    req = GenerationRequest(
        PROMPT, negative_prompt="dark", seed=9, steps=5, guidance=3.0, scheduler=scheduler,
        width=48, height=32, batch_size=2, init_image=str(init), mask=str(mask), strength=0.7,
    )
    im, mk = Image.open(init).convert("RGB"), Image.open(mask).convert("L")
    theirs = _theirs(
        _pipe("inpaint", m, scheduler), req, image=[im, im], mask_image=[mk, mk],
        strength=0.7, width=48, height=32,
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
