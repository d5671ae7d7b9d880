"""Cancel inside a step: between UNet blocks and VAE decoder blocks, not only before each step."""

from __future__ import annotations

import pytest

from sdstudio.core.engine import Engine
from sdstudio.core.errors import GenerationCancelled
from sdstudio.core.interrupt import _blocks
from sdstudio.core.request import GenerationRequest


def _request(model) -> GenerationRequest:
    return GenerationRequest("a red circle", model=str(model), steps=3, width=32, height=32,
                             scheduler="Euler", device="cpu", dtype="fp32", seed=1)


def test_cancel_stops_inside_the_first_unet_call(tiny_model_dir):
    engine = Engine()
    asked: list[int] = []
    steps: list[int] = []

    def should_cancel() -> bool:  # false at the pipeline's check before step 1, true after
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(GenerationCancelled):
        engine.generate(_request(tiny_model_dir), on_step=lambda ev: steps.append(ev.step),
                        should_cancel=should_cancel)
    assert steps == [] and len(asked) == 2  # stopped at the first UNet block of step 1
    loaded = engine.model
    assert all(not block._forward_pre_hooks for block in _blocks(loaded))  # hooks removed
    result = engine.generate(_request(tiny_model_dir), should_cancel=lambda: False)
    assert len(result.images) == 1


def test_cancel_stops_inside_the_vae_decode(tiny_model_dir):
    engine = Engine()
    steps: list[int] = []
    engine.load(str(tiny_model_dir), "cpu", "fp32")
    vae_blocks = list(engine.model.vae.decoder.up_blocks)
    assert vae_blocks and all(b in _blocks(engine.model) for b in vae_blocks)
    with pytest.raises(GenerationCancelled):  # true once the last step is done: in the decode
        engine.generate(_request(tiny_model_dir), on_step=lambda ev: steps.append(ev.step),
                        should_cancel=lambda: len(steps) == 3)
    assert steps == [1, 2, 3]
