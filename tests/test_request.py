"""GenerationRequest: validation messages, canonical names, seeds, JSON round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdstudio.core.errors import UserError
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedulers import SAMPLERS, canonical_name, make_scheduler, slug


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"width": 100}, "Width must be a positive multiple of 8, got 100."),
        ({"height": -8}, "Height must be a positive multiple of 8, got -8."),
        ({"steps": 0}, "Steps must be between 1 and 1000, got 0."),
        ({"batch_size": 0}, "Batch size must be between 1 and 64, got 0."),
        # issue 13: what used to pass validation and then allocate until it died
        ({"width": 100000}, "Width must be at most 8192, got 100000."),
        ({"batch_size": 1000000}, "Batch size must be between 1 and 64, got 1000000."),
        ({"steps": 1000000000}, "Steps must be between 1 and 1000, got 1000000000."),
        ({"steps": 2000, "scheduler": "DDIM"}, "Steps must be between 1 and 1000, got 2000."),
        ({"guidance": float("inf")},
         "Guidance (CFG scale) must be a number between 0 and 100, got inf."),
        ({"guidance": float("nan")},
         "Guidance (CFG scale) must be a number between 0 and 100, got nan."),
        ({"guidance": 1e308},
         "Guidance (CFG scale) must be a number between 0 and 100, got 1e+308."),
        ({"guidance": -1.0},
         "Guidance (CFG scale) must be a number between 0 and 100, got -1.0."),
        ({"seed": 2**63 - 1, "batch_size": 2},
         "Seed 9223372036854775807 with a batch of 2 runs past 2^63-1; choose a smaller seed."),
        ({"steps": "20"}, "Steps must be a whole number, got '20'."),
        ({"width": True}, "Width must be a whole number, got True."),
        ({"init_image": "a.png", "strength": float("nan")}, "Strength must be in (0, 1], got nan."),
        ({"init_image": "a.png", "strength": 0.0}, "Strength must be in (0, 1], got 0.0."),
        ({"init_image": "a.png", "strength": 1.01}, "Strength must be in (0, 1], got 1.01."),
        ({"mask": "m.png"}, "A mask needs an init image to paint into."),
        ({"device": "tpu"}, "Device must be auto, cpu, cuda or mps, got 'tpu'."),
        ({"dtype": "fp8"}, "Dtype must be auto, fp32, fp16 or bf16, got 'fp8'."),
        ({"memory": "turbo"}, "Memory mode must be one of auto, fast, sliced, tiled, offload, "
                              "sequential, got 'turbo'."),
        ({"compile": "yes"}, "Compile must be true or false, got 'yes'."),
    ],
)
def test_validate_messages(kw, msg):
    with pytest.raises(UserError) as err:
        GenerationRequest("cat", **kw).validate()
    assert str(err.value) == msg


def test_unknown_scheduler_lists_valid_names():
    with pytest.raises(UserError, match="Unknown scheduler 'Foo'; choose one of: Euler a, Euler"):
        GenerationRequest("cat", scheduler="Foo").validate()


@pytest.mark.parametrize("spec", SAMPLERS, ids=lambda s: s.name)
def test_scheduler_names_and_slugs(spec):
    assert canonical_name(spec.name) == spec.name
    assert canonical_name(slug(spec.name)) == spec.name
    assert canonical_name(spec.name.upper()) == spec.name
    from sdstudio.testing.tiny_models import SD_SCHEDULER_CONFIG

    sched = make_scheduler(spec.name, SD_SCHEDULER_CONFIG)
    assert type(sched).__name__ == spec.cls
    assert sched.config.beta_schedule == "scaled_linear" and sched.config.beta_end == 0.012


def test_usual_spellings():
    assert canonical_name("euler_a") == "Euler a"
    assert canonical_name("dpmpp_2m_karras") == "DPM++ 2M Karras"
    assert GenerationRequest("cat", scheduler="dpm++ 2m karras").validate().scheduler == "DPM++ 2M Karras"


def test_request_and_defaults_import_without_torch():
    """The window validates a request before torch has loaded: importing it must not need torch."""
    import subprocess
    import sys

    code = ("import sys; import sdstudio.core.request, sdstudio.core.defaults, "
            "sdstudio.core.engine, sdstudio.core.events; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", SAMPLERS, ids=lambda s: s.name)
def test_every_sampler_takes_the_most_steps_a_request_allows(spec):
    """MAX_STEPS must be a step count every scheduler of the menu accepts."""
    from sdstudio.core.defaults import MAX_STEPS
    from sdstudio.testing.tiny_models import SD_SCHEDULER_CONFIG

    sched = make_scheduler(spec.name, SD_SCHEDULER_CONFIG)
    sched.set_timesteps(MAX_STEPS)
    assert len(sched.timesteps) >= MAX_STEPS


def test_mode_and_seeds():
    assert GenerationRequest("cat").mode == "txt2img"
    assert GenerationRequest("cat", init_image="a.png").mode == "img2img"
    assert GenerationRequest("cat", init_image="a.png", mask="m.png").mode == "inpaint"
    assert GenerationRequest("cat", seed=41, batch_size=3).seeds() == [41, 42, 43]


@given(
    prompt=st.text(max_size=50), seed=st.integers(0, 2**63 - 1), steps=st.integers(1, 200),
    guidance=st.floats(0, 30, allow_nan=False), w=st.integers(1, 128), h=st.integers(1, 128),
)
def test_json_round_trip(prompt, seed, steps, guidance, w, h):
    req = GenerationRequest(prompt, seed=seed, steps=steps, guidance=guidance, width=w * 8, height=h * 8)
    assert GenerationRequest.from_json(req.to_json()) == req
    assert req.validate() == req
