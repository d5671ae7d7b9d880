"""What every metadata reader produces: `Parameters`, and the one error they may raise."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdstudio.core.errors import UserError

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

_SIZE_RE = re.compile(r"^(\d{1,9})x(\d{1,9})$")


class MetadataError(UserError):
    """A PNG or parameters text that cannot be read."""


def clean_text(text: str) -> str:
    """`text` fit to store or print: lone surrogates (from JSON escapes or pastes) replaced."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


@dataclass
class Parameters:
    """Generation parameters read from an image, whichever tool wrote them."""

    prompt: str = ""
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # last line, in order, unquoted
    source: str = "a1111"  # a1111 | sdstudio | comfyui | invokeai
    request: dict[str, Any] | None = None  # our full request, when the `sdstudio` chunk exists
    record: dict[str, Any] = field(default_factory=dict)  # our reproducibility record
    text: str = ""  # the raw `parameters` text, if any

    def cleaned(self) -> Parameters:
        """The same, with every text fit to store or print (see clean_text)."""
        self.prompt, self.negative_prompt = clean_text(self.prompt), clean_text(self.negative_prompt)
        self.settings = {clean_text(k): clean_text(v) for k, v in self.settings.items()
                         if isinstance(k, str) and isinstance(v, str)}
        self.text = clean_text(self.text)
        return self

    def _int(self, key: str) -> int | None:
        try:
            return int(self.settings[key])
        except (KeyError, ValueError, TypeError):
            return None

    def _float(self, key: str) -> float | None:
        try:
            return float(self.settings[key])
        except (KeyError, ValueError, TypeError):
            return None

    @property
    def seed(self) -> int | None:
        return self._int("Seed")

    @property
    def steps(self) -> int | None:
        return self._int("Steps")

    @property
    def cfg(self) -> float | None:
        return self._float("CFG scale")

    @property
    def strength(self) -> float | None:
        return self._float("Denoising strength")

    @property
    def model(self) -> str:
        return self.settings.get("Model", "")

    @property
    def sampler(self) -> str:
        """Sampler with its schedule type folded in, as our menus name it ('DPM++ 2M Karras')."""
        name = self.settings.get("Sampler", "")
        schedule = self.settings.get("Schedule type", "")
        if schedule and schedule.lower() not in ("automatic", "") and schedule not in name:
            name = f"{name} {schedule}"
        return name

    @property
    def size(self) -> tuple[int, int] | None:
        m = _SIZE_RE.match(self.settings.get("Size", ""))
        return (int(m.group(1)), int(m.group(2))) if m else None

    def to_request(self) -> GenerationRequest:
        """The request that makes this image again (exact for our own PNGs)."""
        try:
            return self._to_request()
        except UserError:
            raise
        except Exception as exc:  # any odd value in a file: one sentence, never a traceback
            raise MetadataError(f"The parameters in this image do not make a valid request "
                                f"({exc}).") from exc

    def _to_request(self) -> GenerationRequest:
        from sdstudio.core.request import DEMO_MODEL, GenerationRequest
        from sdstudio.core.schedulers import DEFAULT_SAMPLER, canonical_name

        if self.request is not None:
            return GenerationRequest.from_dict(self.request)
        try:
            scheduler = canonical_name(self.sampler)
        except UserError:
            scheduler = DEFAULT_SAMPLER
        width, height = self.size or (512, 512)
        kwargs: dict[str, Any] = {
            "prompt": self.prompt, "negative_prompt": self.negative_prompt,
            "seed": self.seed or 0, "steps": self.steps or 20, "scheduler": scheduler,
            "width": width, "height": height, "model": self.model or DEMO_MODEL,
        }
        if self.cfg is not None:
            kwargs["guidance"] = self.cfg
        if self.strength is not None:
            kwargs["strength"] = self.strength
        clip_skip = self._int("Clip skip")
        if clip_skip is not None and 1 <= clip_skip <= 12:
            kwargs["clip_skip"] = clip_skip
        kwargs.update(self._hires())
        return GenerationRequest(**kwargs)

    def _hires(self) -> dict[str, Any]:
        """A1111's hires fix items (its `Denoising strength` is then the second pass's)."""
        scale = self._float("Hires upscale")
        if scale is None or scale <= 1:
            return {}
        out: dict[str, Any] = {"hires_scale": scale, "hires_steps": self._int("Hires steps") or 0,
                               "hires_upscaler": self.settings.get("Hires upscaler", "Latent")}
        if self.strength is not None:
            out["hires_strength"] = self.strength
        return out
