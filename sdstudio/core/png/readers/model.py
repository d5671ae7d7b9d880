"""ParsedMetadata: what any tool's image metadata says, in one shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Lora:
    name: str
    weight: float | None = None  # the model strength; None when the tool does not say


@dataclass
class Hires:
    """A second, upscaled pass (A1111's hires fix, ComfyUI's upscale-then-sample, ...)."""

    scale: float | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    denoise: float | None = None
    upscaler: str = ""


@dataclass
class ParsedMetadata:
    """Generation parameters read from an image, whichever tool wrote them.

    `sampler` is the A1111-style display name when the tool's sampler and scheduler are known
    ("DPM++ 2M Karras"), else the tool's own text; `sampler_raw`/`scheduler` keep the tool's words.
    Everything a reader does not map goes to `extra` as short text, so it can still be shown.
    """

    source: str  # a1111 | sdstudio | comfyui | invokeai | fooocus | novelai | swarmui | ...
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    sampler: str = ""
    sampler_raw: str = ""
    scheduler: str = ""
    cfg: float | None = None
    width: int | None = None
    height: int | None = None
    model: str = ""
    model_hash: str = ""
    loras: list[Lora] = field(default_factory=list)
    hires: Hires | None = None
    strength: float | None = None  # img2img denoising strength (< 1)
    clip_skip: int | None = None
    version: str = ""  # the tool's version, when it writes one
    a1111_items: dict[str, str] = field(default_factory=dict)  # as written, when it was A1111 text
    extra: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int] | None:
        if self.width and self.height:
            return (self.width, self.height)
        return None

    def set_sampler(self, sampler: Any, scheduler: Any = "", tool: str = "This tool's") -> None:
        """Keep the tool's sampler words and our display name for them (a notice if unknown)."""
        from sdstudio.core.png.readers.samplers import sampler_display_name

        self.sampler_raw = sampler.strip()[:100] if isinstance(sampler, str) else ""
        self.scheduler = scheduler.strip()[:100] if isinstance(scheduler, str) else ""
        if not self.sampler_raw:
            return
        self.sampler, known = sampler_display_name(self.sampler_raw, self.scheduler)
        if not known:
            self.notices.append(f"{tool} sampler {self.sampler!r} has no equivalent in our menu.")

    def keep_unmapped(self, data: dict[Any, Any], mapped: set[str], *, prefix: str = "",
                      limit: int = 500) -> None:
        """Put what a reader did not map into `extra`, as short text (the first 200 keys)."""
        for key, value in list(data.items())[:200]:
            if key not in mapped and value not in (None, "", [], {}, "None"):
                self.extra[f"{prefix}{str(key)[:100]}"] = short_text(value, limit)

    def mapped_fields(self) -> list[str]:
        """Names of the main fields this image filled (for reports and tests)."""
        names = ("prompt", "negative_prompt", "seed", "steps", "sampler", "scheduler", "cfg",
                 "width", "height", "model", "model_hash", "loras", "hires", "strength",
                 "clip_skip", "version")
        return [n for n in names if getattr(self, n) not in (None, "", [])]


def short_text(value: Any, limit: int = 2000) -> str:
    """A value of unknown shape as display text, bounded, never raising (deep JSON included)."""
    import json

    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError):
            text = "…"
    return text if len(text) <= limit else text[: limit - 1] + "…"
