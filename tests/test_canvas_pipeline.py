"""The canvas's generation paths on tiny models: hires fix against diffusers' two pipelines run by
hand, and A1111's inpaint options (only masked, mask blur, masked content) for 4- and 9-channel
UNets: the geometry of the paste back, and what each masked content changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_pipeline_equivalence import _pipe  # diffusers' own pipeline on our components

from sdstudio.core.canvas import masks
from sdstudio.core.canvas import run as canvas
from sdstudio.core.canvas.crop import only_masked_box
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion
from sdstudio.core.request import GenerationRequest

PROMPT = "a red circle"
MAX_DIFF = 1  # 1/255


@pytest.fixture(scope="module")
def sd1(tiny_model_dir):
    return StableDiffusion(load_model(str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="module")
def sd1_9ch(tiny_inpaint_model_dir):
    return StableDiffusion(load_model(str(tiny_inpaint_model_dir), device="cpu"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 96x64 init image and a mask with a 20x12 white box at (50, 30)."""
    d = tmp_path_factory.mktemp("canvas")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(d / "init.png")
    mask = np.zeros((64, 96), np.uint8)
    mask[30:42, 50:70] = 255
    Image.fromarray(mask).save(d / "mask.png")
    return d / "init.png", d / "mask.png"


def _np(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize(("family", "upscaler"), [
    ("sd1", "Latent"), ("sd1", "Latent (nearest)"), ("sd1", "Lanczos"),
    ("sdxl", "Latent"), ("sdxl", "Lanczos"),
])
def test_hires_fix_equals_txt2img_upscale_img2img_in_diffusers(sd1, tiny_sdxl_model_dir,
                                                               family, upscaler):
    pipe = sd1 if family == "sd1" else StableDiffusion(
        load_model(str(tiny_sdxl_model_dir), device="cpu"))
    req = GenerationRequest(PROMPT, seed=7, steps=4, width=32, height=24, batch_size=2,
                            hires_scale=2, hires_steps=5, hires_strength=0.6,
                            hires_upscaler=upscaler, scheduler="Euler")
    steps = []
    ours = canvas.generate(pipe, req, on_step=steps.append).images
    assert [e.image.size for e in ours] == [(64, 48)] * 2
    assert {s.phase for s in steps} == {"first", "hires"}
    txt = _pipe("txt2img", pipe.model, "Euler")
    img = _pipe("img2img", pipe.model, "Euler")
    for ev, seed in zip(ours, (7, 8), strict=True):
        gen = torch.Generator("cpu").manual_seed(seed)
        if upscaler.startswith("Latent"):
            z = txt(PROMPT, guidance_scale=7.5, num_inference_steps=4, width=32, height=24, generator=gen,
                    output_type="latent").images
            mode = "nearest" if "nearest" in upscaler else "bilinear"
            init = torch.nn.functional.interpolate(z, size=(6, 8), mode=mode)
        else:
            first = txt(PROMPT, guidance_scale=7.5, num_inference_steps=4, width=32, height=24,
                        generator=gen).images[0]
            init = first.resize((64, 48), Image.Resampling.LANCZOS)
        gen = torch.Generator("cpu").manual_seed(seed)
        theirs = img(PROMPT, guidance_scale=7.5, image=init, strength=0.6, num_inference_steps=5, generator=gen,
                     output_type="np").images[0]
        a, b = _np(ev.image), np.round(theirs * 255).astype(np.int16)
        assert a.std() > 2
        assert np.abs(a - b).max() <= MAX_DIFF
        assert ev.request == req.validate() and ev.seed == seed


def test_hires_image_regenerates_alone(sd1):
    base = dict(steps=3, width=32, height=32, hires_scale=1.5, hires_steps=2)
    batch = canvas.generate(sd1, GenerationRequest(PROMPT, seed=3, batch_size=2, **base)).images
    alone = canvas.generate(sd1, GenerationRequest(PROMPT, seed=4, **base)).images[0]
    assert alone.image.size == (48, 48)
    assert np.abs(_np(batch[1].image) - _np(alone.image)).max() <= MAX_DIFF


@pytest.mark.parametrize("nine", [False, True], ids=["4ch", "9ch"])
@pytest.mark.parametrize("content", ["original", "fill", "latent-noise", "latent-nothing"])
def test_only_masked_changes_nothing_outside_the_feathered_mask(sd1, sd1_9ch, inputs, nine,
                                                                content):
    init, mask = inputs
    pipe = sd1_9ch if nine else sd1
    req = GenerationRequest(PROMPT, seed=1, steps=3, width=32, height=32, init_image=str(init),
                            mask=str(mask), strength=0.9, inpaint_area="only-masked",
                            inpaint_padding=8, masked_content=content, mask_blur=2)
    out = canvas.generate(pipe, req).images[0].image
    original = Image.open(init).convert("RGB")
    assert out.size == original.size  # only masked keeps the picture's size
    soft = masks.feather(Image.open(mask), 2)
    outside = np.asarray(soft) == 0
    changed = np.any(_np(out) != _np(original), axis=2)
    assert not changed[outside].any()  # byte for byte outside the blurred mask
    assert changed[np.asarray(soft) == 255].mean() > 0.9  # and repainted inside


def test_only_masked_works_at_the_request_size_on_the_crop(sd1, inputs, monkeypatch):
    init, mask = inputs
    seen = []
    real = sd1.generate
    monkeypatch.setattr(sd1, "generate",
                        lambda r, **kw: seen.append((r, Image.open(r.mask).copy())) or real(r, **kw))
    req = GenerationRequest(PROMPT, steps=2, width=32, height=32, init_image=str(init),
                            mask=str(mask), inpaint_area="only-masked", inpaint_padding=4)
    canvas.generate(sd1, req)
    inner, crop = seen[0]
    assert (inner.width, inner.height) == (32, 32)
    # mask box (50,30)-(70,42) padded by 4: 28x20, grown to square 28x28 about the centre
    assert only_masked_box(Image.open(mask), 4, 32, 32) == (46, 22, 74, 50)
    white = np.asarray(crop) > 127
    assert white.mean() == pytest.approx((20 * 12) / (28 * 28), abs=0.05)


def test_fill_repaints_the_masked_area_with_surrounding_colours():
    image = Image.new("RGB", (32, 32), (200, 40, 40))
    image.paste((0, 255, 0), (8, 8, 24, 24))  # green where the mask is
    mask = Image.new("L", (32, 32))
    mask.paste(255, (8, 8, 24, 24))
    out = np.asarray(masks.fill_masked(image, mask), dtype=np.int16)
    assert np.abs(out[16, 16] - (200, 40, 40)).max() <= 2  # the green is gone
    assert (out[0, 0] == (200, 40, 40)).all()


def test_latent_noise_and_nothing_replace_the_masked_latents(sd1, inputs):
    init, mask = inputs
    soft = Image.open(mask).resize((32, 32))
    encode = lambda: torch.ones(2, 4, 4, 4)  # noqa: E731
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    noise = canvas._masked_latents("latent-noise", soft)(encode, gens, torch.float32)
    nothing = canvas._masked_latents("latent-nothing", soft)(encode, gens, torch.float32)
    m = torch.from_numpy(np.asarray(soft.resize((4, 4), Image.Resampling.BICUBIC)) / 255).round()
    keep = m == 0
    assert (noise[:, :, keep] == 1).all() and (nothing[:, :, keep] == 1).all()
    assert (nothing[:, :, ~keep] == 0).all()
    expected = torch.randn((1, 4, 4, 4), generator=torch.Generator().manual_seed(6))
    assert torch.equal(noise[1][:, ~keep], expected[0][:, ~keep])


def test_whole_picture_original_no_blur_is_the_plain_pipeline(sd1, inputs, monkeypatch):
    init, mask = inputs
    req = GenerationRequest(PROMPT, steps=2, width=32, height=32, init_image=str(init),
                            mask=str(mask))
    assert not canvas.needs_canvas(req.validate())
    assert canvas.needs_canvas(GenerationRequest(PROMPT, init_image="a", mask="b", mask_blur=4))
    assert canvas.needs_canvas(GenerationRequest(PROMPT, hires_scale=2))


def test_sdxl_hires_and_9ch_only_masked(tiny_sdxl_model_dir, tiny_sdxl_inpaint_model_dir, inputs):
    """The canvas paths are the family's pipeline underneath: SDXL runs them too."""
    base = StableDiffusion(load_model(str(tiny_sdxl_model_dir), device="cpu"))
    out = canvas.generate(base, GenerationRequest(PROMPT, steps=2, width=32, height=32,
                                                  hires_scale=2, hires_steps=2)).images[0]
    assert out.image.size == (64, 64) and np.asarray(out.image).std() > 2
    nine = StableDiffusion(load_model(str(tiny_sdxl_inpaint_model_dir), device="cpu"))
    init, mask = inputs
    req = GenerationRequest(PROMPT, steps=2, width=32, height=32, init_image=str(init),
                            mask=str(mask), inpaint_area="only-masked", mask_blur=1,
                            masked_content="latent-noise", strength=0.8)
    image = canvas.generate(nine, req).images[0].image
    outside = np.asarray(masks.feather(Image.open(mask), 1)) == 0
    assert np.array_equal(_np(image)[outside], _np(Image.open(init).convert("RGB"))[outside])


def test_whole_picture_with_blur_pastes_back_with_the_doubled_soft_mask(sd1, inputs):
    init, mask = inputs
    req = GenerationRequest(PROMPT, seed=2, steps=3, width=96, height=64, init_image=str(init),
                            mask=str(mask), strength=0.9, mask_blur=3)
    out = canvas.generate(sd1, req).images[0].image
    soft = np.asarray(masks.feather(Image.open(mask), 3))
    original = _np(Image.open(init).convert("RGB"))
    changed = np.any(_np(out) != original, axis=2)
    assert not changed[soft == 0].any()
    assert changed[soft >= 128].mean() > 0.9  # doubled: half-strength edge is fully repainted


def test_the_engine_runs_the_canvas_and_checks_the_hires_size(tiny_model_dir, monkeypatch):
    from sdstudio.core.engine import Engine

    engine = Engine()
    seen = []
    real = Engine.check_fits
    monkeypatch.setattr(Engine, "check_fits", lambda self, r: seen.append(r) or real(self, r))
    result = engine.generate(GenerationRequest(PROMPT, steps=2, width=32, height=24,
                                               hires_scale=2, model=str(tiny_model_dir),
                                               device="cpu"))
    assert (seen[0].width, seen[0].height) == (64, 48)
    ev = result.images[0]
    assert ev.image.size == (64, 48) and ev.record and ev.request.hires_scale == 2
