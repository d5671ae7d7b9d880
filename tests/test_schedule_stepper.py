"""Step-through mode: the loop one model call at a time, with what each step predicted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdstudio.core.errors import UserError
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedule import noise_schedule
from sdstudio.core.stepper import StepThrough

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return StableDiffusion(load_model(str(tiny_model_dir), device="cpu"))


@pytest.mark.parametrize("name", ["Euler a", "DPM++ 2M", "Heun"])
def test_stepping_to_the_end_gives_generate_s_image(engine, tiny_model_dir, name):
    req = GenerationRequest(prompt="a red cat", model=str(tiny_model_dir), steps=5, width=32,
                            height=32, scheduler=name, seed=4, guidance=4.0)
    events = []
    expected = engine.generate(req, on_step=events.append).images[0].image
    stepper = StepThrough(engine, req)
    details = []
    while not stepper.done:
        details.append(stepper.step())
    assert len(details) == len(events) == stepper.total
    for d, ev in zip(details, events, strict=True):
        torch.testing.assert_close(d.next_latents, ev.latents, rtol=0, atol=0)
        torch.testing.assert_close(d.denoised, ev.denoised, rtol=0, atol=0)
        assert d.timestep == ev.timestep and d.guidance == 4.0
    assert np.array_equal(np.asarray(stepper.decode()), np.asarray(expected))
    first = details[0]
    assert first.guidance_difference is not None
    schedule = noise_schedule(name, 5, engine.model.scheduler_config)
    assert [d.sigma for d in details] == pytest.approx(list(schedule.step_sigmas))
    # guided = uncond + g * (text - uncond): the difference is what guidance scales up.
    assert float(first.guidance_difference.abs().max()) > 0
    with pytest.raises(UserError, match="All steps are done"):
        stepper.step()


def test_without_cfg_there_is_no_difference(engine, tiny_model_dir):
    req = GenerationRequest(prompt="a cat", model=str(tiny_model_dir), steps=2, width=32,
                            height=32, scheduler="Euler", seed=0, guidance=1.0)
    assert StepThrough(engine, req).step().guidance_difference is None


def test_img2img_is_refused(engine, tiny_model_dir, tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "i.png")
    req = GenerationRequest(prompt="a cat", model=str(tiny_model_dir), steps=2, width=32,
                            height=32, init_image=str(tmp_path / "i.png"))
    with pytest.raises(UserError, match="text-to-image only"):
        StepThrough(engine, req)
