"""The shipped demo model: it loads with our core, generates, and draws the colour it is asked for."""

from __future__ import annotations

import functools

import pytest

from sdstudio.core.paths import demo_model_dir
from sdstudio.demo import dataset
from sdstudio.demo.analyse import analyse

HAVE_WEIGHTS = (demo_model_dir() / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_analyser_reads_generator_images() -> None:
    for i in range(20):
        sample = dataset.make_sample(42, i, two_object_rate=0.0, allow_held_out=True)
        found, obj = analyse(sample.image), sample.scene.objects[0]
        assert found.background == sample.scene.background
        assert found.main is not None
        assert (found.main.colour, found.main.shape, found.main.position, found.main.size) == (
            obj.colour, obj.shape, obj.position, obj.size)


def test_tokenizer_gives_each_caption_word_one_token(tmp_path) -> None:
    from sdstudio.demo.tokenizer import build_tokenizer

    tok = build_tokenizer(dataset.vocabulary(), tmp_path)
    ids = tok("a small red circle in the top left on a grey background").input_ids
    assert len(ids) == 2 + 12
    assert len(tok("a dog").input_ids) > 3  # unknown words still tokenize, letter by letter


@functools.cache
def _pipeline():
    import torch

    from sdstudio.core.models import load_model
    from sdstudio.core.pipeline import StableDiffusion

    torch.set_num_threads(1)
    return StableDiffusion(load_model("demo", device="cpu"))


def _generate(prompt: str, seed: int = 3, steps: int = 12):
    from sdstudio.core.request import GenerationRequest

    pipe = _pipeline()
    req = GenerationRequest(prompt=prompt, seed=seed, steps=steps, width=128, height=128,
                            guidance=pipe.model.guidance, model="demo", device="cpu")
    return pipe.generate(req).images[0].image


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="demo model weights not in resources/models/demo")
def test_demo_model_generates_an_object() -> None:
    image = _generate("a large pink cross in the centre on a black background")
    assert image.size == (128, 128)
    assert analyse(image).objects, "no object found in the generated image"


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="demo model weights not in resources/models/demo")
@pytest.mark.parametrize(("colour", "background"), [("red", "white"), ("blue", "black")])
def test_demo_model_draws_the_asked_colour(colour: str, background: str) -> None:
    found = analyse(_generate(f"a large {colour} square in the centre on a {background} background"))
    assert found.main is not None, "no object found in the generated image"
    assert found.main.colour == colour


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="demo model weights not in resources/models/demo")
def test_demo_model_recommends_a_low_guidance_and_draws_the_readme_prompt() -> None:
    """The README's first prompt: 'blue background' is the navy of the training data."""
    assert 1.0 < _pipeline().model.guidance < 7.5
    found = [analyse(_generate("a red circle on a blue background", seed=s)) for s in (1, 2, 3)]
    assert all(f.background == "navy" for f in found)
    assert sum(f.main is not None and f.main.colour == "red" for f in found) >= 2


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="demo model weights not in resources/models/demo")
def test_diffusers_loads_the_demo_model_and_matches_our_pipeline_pixel_for_pixel() -> None:
    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    prompt = "a large red circle in the centre on a white background"
    ref = StableDiffusionPipeline.from_pretrained(
        str(demo_model_dir()), safety_checker=None, requires_safety_checker=False)
    ref.set_progress_bar_config(disable=True)
    theirs = ref(prompt, num_inference_steps=6, guidance_scale=3.0, height=128, width=128,
                 generator=torch.Generator().manual_seed(5)).images[0]
    ours = _generate(prompt, seed=5, steps=6)
    assert np.array_equal(np.asarray(theirs), np.asarray(ours))
