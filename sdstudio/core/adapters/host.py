"""A diffusers pipeline object around a loaded model's own modules, for diffusers' loader mixins.

diffusers keeps its LoRA and textual-inversion logic (key conversion, PEFT adapters, weights,
unloading) on its pipelines; this object lends it to our components. Nothing is copied.
"""

from __future__ import annotations

import weakref

_HOSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # UNet module -> pipeline


def host_pipeline(model):
    found = _HOSTS.get(model.unet)
    if found is None:
        found = _HOSTS[model.unet] = _build(model)
    return found


def _build(model):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = EulerDiscreteScheduler.from_config(model.scheduler_config)  # unused; required

    if getattr(model, "text_encoder_2", None) is not None:
        pipe = StableDiffusionXLPipeline(
            vae=model.vae, text_encoder=model.text_encoder, text_encoder_2=model.text_encoder_2,
            tokenizer=model.tokenizer, tokenizer_2=model.tokenizer_2, unet=model.unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
            unet=model.unet, scheduler=scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def forget(model) -> None:
    """Drop what the adapter caches keep for `model` before it is unloaded: a cached pipeline
    holds the UNet it is keyed by, so the weak key alone would never let the model go."""
    from sdstudio.core.adapters import lora

    _HOSTS.pop(model.unet, None)
    lora._SETS.pop(model.unet, None)
