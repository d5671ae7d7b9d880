"""Build a diffusers scheduler for a sampler of the menu (`samplers.py`) from a model's config.

diffusers is imported only when a scheduler is built; the names live torch-free in samplers.py.
"""

from __future__ import annotations

from typing import Any

from sdstudio.core.samplers import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    SamplerSpec,
    canonical_name,
    get_sampler,
    sampler_names,
    slug,
)

__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "SamplerSpec", "canonical_name", "get_sampler",
           "make_scheduler", "sampler_names", "slug"]


def make_scheduler(name: str, base_config: dict[str, Any]) -> Any:
    """Build the named scheduler from the model's own scheduler config (like `from_config`)."""
    import diffusers

    spec = get_sampler(name)
    cls = getattr(diffusers, spec.cls)
    return cls.from_config(dict(base_config), **spec.options)


def import_scheduler_classes() -> None:
    """Resolve every class the engine and the panels take from diffusers and transformers, once.
    Both import their classes lazily, and two threads resolving lazy attributes at once (the
    worker loading a model, a panel building a schedule or loading the VAE lab's model) can see
    a half-imported module: "no attribute EulerAncestralDiscreteScheduler", "cannot import name
    'AutoencoderKL' from 'diffusers'"."""
    import diffusers
    import transformers

    for spec in SAMPLERS:
        getattr(diffusers, spec.cls)
    for name in ("AutoencoderKL", "AutoencoderTiny", "UNet2DConditionModel",
                 "StableDiffusionPipeline", "StableDiffusionXLPipeline"):
        getattr(diffusers, name)
    for name in ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer"):
        getattr(transformers, name)
