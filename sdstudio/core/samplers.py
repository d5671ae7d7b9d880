"""The sampler menu: names users know from other SD tools (A1111's spelling) and the diffusers
scheduler class and options behind each. Torch-free: the request validates against these names
before torch is imported; `schedulers.make_scheduler` builds one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sdstudio.core.defaults import DEFAULT_SAMPLER
from sdstudio.core.errors import UserError

__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "SamplerSpec", "canonical_name", "get_sampler",
           "sampler_names", "slug"]


@dataclass(frozen=True)
class SamplerSpec:
    name: str  # the display name, as the AUTOMATIC1111 web UI writes it in PNG metadata
    cls: str  # diffusers class name
    options: dict[str, Any] = field(default_factory=dict)
    schedule_type: str | None = None  # "Karras" where A1111 writes a separate `Schedule type`


# Order is the order shown in menus.
SAMPLERS: tuple[SamplerSpec, ...] = (
    SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler"),
    SamplerSpec("Euler", "EulerDiscreteScheduler"),
    SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler"),
    SamplerSpec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "Karras"),
    SamplerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    SamplerSpec("DPM++ 2S", "DPMSolverSinglestepScheduler"),
    SamplerSpec("DDIM", "DDIMScheduler"),
    SamplerSpec("PNDM", "PNDMScheduler"),
    SamplerSpec("LMS", "LMSDiscreteScheduler"),
    SamplerSpec("LMS Karras", "LMSDiscreteScheduler", {"use_karras_sigmas": True}, "Karras"),
    SamplerSpec("Heun", "HeunDiscreteScheduler"),
    SamplerSpec("DPM2", "KDPM2DiscreteScheduler"),
    SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    SamplerSpec("UniPC", "UniPCMultistepScheduler"),
    SamplerSpec("DEIS", "DEISMultistepScheduler"),
    SamplerSpec("DDPM", "DDPMScheduler"),
)

def slug(name: str) -> str:
    """'DPM++ 2M Karras' -> 'dpmpp_2m_karras'; 'Euler a' -> 'euler_a'."""
    s = name.strip().lower().replace("++", "pp")
    return re.sub(r"[^a-z0-9]+", "_", s).strip("_")


_BY_SLUG = {slug(s.name): s for s in SAMPLERS}


def sampler_names() -> list[str]:
    return [s.name for s in SAMPLERS]


def get_sampler(name: str) -> SamplerSpec:
    """Look a sampler up by display name or slug (case and punctuation are ignored)."""
    spec = _BY_SLUG.get(slug(name))
    if spec is None:
        raise UserError(
            f"Unknown scheduler {name!r}; choose one of: {', '.join(sampler_names())}."
        )
    return spec


def canonical_name(name: str) -> str:
    return get_sampler(name).name
