"""GenerationRequest: everything one job needs, validated with one clear message per bad field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sdstudio.core.errors import UserError
from sdstudio.core.model_settings import DEFAULT_GUIDANCE
from sdstudio.core.schedulers import DEFAULT_SAMPLER, canonical_name

DEMO_MODEL = "demo"  # the model id of the model shipped in resources/models/


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int = 0  # image i of a batch uses seed + i
    steps: int = 20
    guidance: float = DEFAULT_GUIDANCE  # <= 1 skips the unconditional pass
    scheduler: str = DEFAULT_SAMPLER
    width: int = 512
    height: int = 512
    batch_size: int = 1
    init_image: str | None = None  # path of a PNG/JPEG for img2img (and inpainting)
    strength: float = 0.75  # img2img/inpaint: fraction of the schedule that is re-noised
    mask: str | None = None  # path of a mask image: white = repaint, black = keep
    model: str = DEMO_MODEL  # "demo", a folder, a .safetensors/.ckpt file, or a HF id in the cache
    device: str = "auto"  # auto | cpu | cuda | mps
    dtype: str = "auto"  # auto | fp32 | fp16
    clip_skip: int = 1  # A1111's "Clip skip": 1 = the text encoder's last layer, 2 = penultimate
    loras: tuple[str, ...] = ()  # "PATH[:WEIGHT]" each, beside the prompt's <lora:NAME:WEIGHT>
    lora_dir: str | None = None  # where <lora:NAME> finds NAME.safetensors
    embeddings_dir: str | None = None  # textual-inversion embeddings, used by their file name

    def __post_init__(self) -> None:
        if not isinstance(self.loras, tuple):  # a list from JSON: keep the request hashable
            object.__setattr__(self, "loras", tuple(self.loras or ()))

    @property
    def mode(self) -> str:
        if self.mask and self.init_image:
            return "inpaint"
        if self.init_image:
            return "img2img"
        return "txt2img"

    def validate(self) -> GenerationRequest:
        """Raise UserError on the first bad field; return the request with names made canonical."""
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0 or v % 8:
                raise UserError(f"{name.capitalize()} must be a positive multiple of 8, got {v}.")
        if self.steps < 1:
            raise UserError(f"Steps must be at least 1, got {self.steps}.")
        if self.batch_size < 1:
            raise UserError(f"Batch size must be at least 1, got {self.batch_size}.")
        if not 0 <= self.seed < 2**63:
            raise UserError(f"Seed must be between 0 and 2^63-1, got {self.seed}.")
        if self.init_image and not 0 < self.strength <= 1:
            raise UserError(f"Strength must be in (0, 1], got {self.strength}.")
        if self.mask and not self.init_image:
            raise UserError("A mask needs an init image to paint into.")
        if not isinstance(self.clip_skip, int) or not 1 <= self.clip_skip <= 12:
            raise UserError(f"Clip skip must be a whole number from 1 to 12, got {self.clip_skip}.")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise UserError(f"Device must be auto, cpu, cuda or mps, got {self.device!r}.")
        if self.dtype not in ("auto", "fp32", "fp16"):
            raise UserError(f"Dtype must be auto, fp32 or fp16, got {self.dtype!r}.")
        return replace(self, scheduler=canonical_name(self.scheduler))

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
