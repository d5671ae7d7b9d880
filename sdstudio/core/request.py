"""GenerationRequest: everything one job needs, validated with one clear message per bad field.

Torch-free (a contract in pyproject.toml keeps it so): the window builds and validates a request
the moment Generate is pressed, before torch has even finished importing.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sdstudio.core import defaults as d
from sdstudio.core.defaults import DEFAULT_GUIDANCE, DEFAULT_SAMPLER, DEMO_MODEL
from sdstudio.core.errors import UserError
from sdstudio.core.samplers import canonical_name

__all__ = ["DEMO_MODEL", "GenerationRequest"]


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int = 0  # image i of a batch uses seed + i
    steps: int = d.DEFAULT_STEPS
    guidance: float = DEFAULT_GUIDANCE  # <= 1 skips the unconditional pass
    scheduler: str = DEFAULT_SAMPLER
    width: int = d.DEFAULT_SIZE
    height: int = d.DEFAULT_SIZE
    batch_size: int = 1
    init_image: str | None = None  # path of a PNG/JPEG for img2img (and inpainting)
    strength: float = d.DEFAULT_STRENGTH  # img2img/inpaint: fraction of the schedule that is re-noised
    mask: str | None = None  # path of a mask image: white = repaint, black = keep
    model: str = DEMO_MODEL  # "demo", a folder, a .safetensors/.ckpt file, or a HF id in the cache
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | fp32 | fp16

    @property
    def mode(self) -> str:
        if self.mask and self.init_image:
            return "inpaint"
        if self.init_image:
            return "img2img"
        return "txt2img"

    def validate(self) -> GenerationRequest:
        """Raise UserError on the first bad field; return the request with names made canonical.

        These are the limits no device lifts; whether a device can hold the job is the engine's
        check (`Engine.check_fits`), which knows the model."""
        for name in ("width", "height"):
            v = _integer(self, name)
            if v <= 0 or v % 8:
                raise UserError(f"{name.capitalize()} must be a positive multiple of 8, got {v}.")
            if v > d.MAX_SIDE:
                raise UserError(f"{name.capitalize()} must be at most {d.MAX_SIDE}, got {v}.")
        if not 1 <= _integer(self, "steps") <= d.MAX_STEPS:
            raise UserError(f"Steps must be between 1 and {d.MAX_STEPS}, got {self.steps}.")
        if not 1 <= _integer(self, "batch_size") <= d.MAX_BATCH:
            raise UserError(
                f"Batch size must be between 1 and {d.MAX_BATCH}, got {self.batch_size}.")
        if not 0 <= _integer(self, "seed") <= d.MAX_SEED:
            raise UserError(f"Seed must be between 0 and 2^63-1, got {self.seed}.")
        if self.seed + self.batch_size - 1 > d.MAX_SEED:
            raise UserError(f"Seed {self.seed} with a batch of {self.batch_size} runs past 2^63-1; "
                            "choose a smaller seed.")
        if not _finite(self.guidance) or not 0 <= self.guidance <= d.MAX_GUIDANCE:
            raise UserError(
                f"Guidance (CFG scale) must be a number between 0 and {d.MAX_GUIDANCE:g}, "
                f"got {_short(self.guidance)}.")
        if self.init_image and not (_finite(self.strength) and 0 < self.strength <= 1):
            raise UserError(f"Strength must be in (0, 1], got {_short(self.strength)}.")
        if self.mask and not self.init_image:
            raise UserError("A mask needs an init image to paint into.")
        if self.device not in d.DEVICES:
            raise UserError(f"Device must be auto, cpu, cuda or mps, got {self.device!r}.")
        if self.dtype not in d.DTYPES:
            raise UserError(f"Dtype must be auto, fp32 or fp16, got {self.dtype!r}.")
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise UserError("The prompt and the negative prompt must be text.")
        return replace(self, scheduler=canonical_name(str(self.scheduler)))

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_size)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        return cls.from_dict(json.loads(text))


def _integer(request: GenerationRequest, name: str) -> int:
    value = getattr(request, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name.replace('_', ' ').capitalize()} must be a whole number, "
                        f"got {_short(value)}.")
    return value


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object) -> str:
    """A value as a message shows it, cut short (a pasted novel is not repeated back)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
