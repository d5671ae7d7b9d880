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
    dtype: str = "auto"  # auto | fp32 | fp16 | bf16
    # Speed and memory (sdstudio.core.memory, sdstudio.core.fastpath): where the memory ladder
    # starts (auto: at its fastest rung), and torch.compile of the UNet and VAE decoder.
    memory: str = "auto"  # auto | fast | sliced | tiled | offload | sequential
    compile: bool = False
    # The canvas (sdstudio.core.canvas): A1111's inpaint options and hires fix.
    inpaint_area: str = "whole"  # whole | only-masked (crop to the mask's box + padding)
    inpaint_padding: int = 32  # only-masked: pixels around the mask's bounding box
    masked_content: str = "original"  # original | fill | latent-noise | latent-nothing
    mask_blur: int = 0  # Gaussian blur radius of the mask; > 0 pastes back with the soft mask
    hires_scale: float = 1.0  # > 1: hires fix, a second img2img pass at this scale
    hires_steps: int = 0  # the second pass's steps (0: the first pass's)
    hires_strength: float = 0.5  # the second pass's denoising strength
    hires_upscaler: str = "Latent"  # a name of sdstudio.core.canvas.upscalers.UPSCALERS
    vae: str | None = None  # a separate VAE (file or folder), "none" for the model's own
    prediction: str | None = None  # single SD 2.x files: epsilon | v (else guessed/remembered)
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
        if not isinstance(self.clip_skip, int) or not 1 <= self.clip_skip <= 12:
            raise UserError(f"Clip skip must be a whole number from 1 to 12, got {self.clip_skip}.")
        if self.device not in d.DEVICES:
            raise UserError(f"Device must be auto, cpu, cuda or mps, got {self.device!r}.")
        if self.dtype not in d.DTYPES:
            raise UserError(f"Dtype must be auto, fp32, fp16 or bf16, got {self.dtype!r}.")
        if self.memory not in d.MEMORY_MODES:
            raise UserError(f"Memory mode must be one of {', '.join(d.MEMORY_MODES)}, "
                            f"got {_short(self.memory)}.")
        if not isinstance(self.compile, bool):
            raise UserError(f"Compile must be true or false, got {_short(self.compile)}.")
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt, str):
            raise UserError("The prompt and the negative prompt must be text.")
        if self.prediction not in (None, "epsilon", "eps", "v", "v_prediction"):
            raise UserError(f"Prediction must be epsilon or v, got {_short(self.prediction)}.")
        return replace(self, scheduler=canonical_name(str(self.scheduler)),
                       hires_upscaler=self._validate_canvas())

    def _validate_canvas(self) -> str:
        """The inpaint and hires fields; returns the upscaler's canonical name."""
        if self.inpaint_area not in d.INPAINT_AREAS:
            raise UserError(f"Inpaint area must be whole or only-masked, got "
                            f"{_short(self.inpaint_area)}.")
        if not 0 <= _integer(self, "inpaint_padding") <= d.MAX_SIDE:
            raise UserError(f"Padding must be between 0 and {d.MAX_SIDE} pixels, "
                            f"got {self.inpaint_padding}.")
        if self.masked_content not in d.MASKED_CONTENTS:
            raise UserError("Masked content must be original, fill, latent-noise or "
                            f"latent-nothing, got {_short(self.masked_content)}.")
        if not 0 <= _integer(self, "mask_blur") <= d.MAX_MASK_BLUR:
            raise UserError(f"Mask blur must be between 0 and {d.MAX_MASK_BLUR} pixels, "
                            f"got {self.mask_blur}.")
        if not _finite(self.hires_scale) or not 1 <= self.hires_scale <= d.MAX_HIRES_SCALE:
            raise UserError(f"Hires scale must be a number between 1 and {d.MAX_HIRES_SCALE:g}, "
                            f"got {_short(self.hires_scale)}.")
        if self.hires_scale == 1:
            return str(self.hires_upscaler)
        if self.init_image:
            raise UserError("Hires fix is for txt2img: remove the init image or set the hires "
                            "scale to 1.")
        if not 0 <= _integer(self, "hires_steps") <= d.MAX_STEPS:
            raise UserError(f"Hires steps must be between 0 and {d.MAX_STEPS}, "
                            f"got {self.hires_steps}.")
        if not (_finite(self.hires_strength) and 0 < self.hires_strength <= 1):
            raise UserError(f"Hires denoising strength must be in (0, 1], "
                            f"got {_short(self.hires_strength)}.")
        for side in self.hires_size:
            if side > d.MAX_SIDE:
                raise UserError(f"The hires size {self.hires_size[0]}x{self.hires_size[1]} is "
                                f"above {d.MAX_SIDE}: lower the hires scale.")
        from sdstudio.core.canvas.upscalers import canonical_upscaler

        return canonical_upscaler(str(self.hires_upscaler))

    @property
    def hires(self) -> bool:
        """Whether hires fix runs (a scale above 1 that changes the size)."""
        return _finite(self.hires_scale) and self.hires_scale > 1 and not self.init_image

    @property
    def hires_size(self) -> tuple[int, int]:
        """The second pass's width and height: the scaled size, down to a multiple of 8."""
        return (int(self.width * self.hires_scale) // 8 * 8,
                int(self.height * self.hires_scale) // 8 * 8)

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
