"""The AUTOMATIC1111 web UI's `parameters` text (its forks read and write it too), e.g.

    a cat, "best" quality
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model: demo
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio import __version__
from sdstudio.core.errors import UserError
from sdstudio.core.png.parameters import MetadataError, Parameters

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

PARAMETERS_KEY = "parameters"
NEGATIVE_MARKER = "Negative prompt:"
VERSION = f"sdstudio {__version__}"
MAX_SETTINGS_LINE = 1 << 16  # a longer last line is prompt text, not settings (A1111's are < 4 KB)

# A1111's pattern for one `Key: value` item of the last line (value JSON-quoted or up to `,`),
#   \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
# used with findall, costs the square of a run of key characters without a colon (every start
# position rescans the run). This one finds the same items in linear time: the key run is
# possessive (giving back never helps: a shorter key is followed by a key character, not `:`),
# and a failed start consumes its whole run (`\w[\w \-/]*+`) or one character, because a start
# inside the same run ends at the same place and fails the same way. Group 1 is empty for those.
_ITEM_RE = re.compile(
    r'\s*+(?:(\w[\w \-/]++):\s*("(?:\\.|[^\\"])++"|[^,]*)(?:,|$)|\w[\w \-/]*+|(?s:.)|$)')


def quote(value: str) -> str:
    """A1111's rule: a value holding `,` `:` or a newline is written as a JSON string."""
    if "," not in value and ":" not in value and "\n" not in value and not value.startswith('"'):
        return value
    return json.dumps(value, ensure_ascii=False)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            out = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return out if isinstance(out, str) else value
    return value


def format_number(value: float) -> str:
    """7.0 -> '7', 7.5 -> '7.5' (shortest exact form)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def model_name(model: str) -> str:
    """What A1111 writes as `Model`: the checkpoint's name without folder or extension."""
    p = Path(model)
    if p.suffix.lower() in (".safetensors", ".ckpt", ".pt", ".bin"):
        return p.stem
    if p.is_absolute() or model.startswith((".", "~")) or p.is_dir():
        return p.name or model  # a diffusers folder
    return model  # "demo" or a Hugging Face id like "runwayml/stable-diffusion-v1-5"


def settings_for(
    request: GenerationRequest, seed: int, model_hash: str | None = None,
    vae: str | None = None, vae_hash: str | None = None,
) -> dict[str, str]:
    """The `Key: value` items of the last line, in A1111's order. `vae`: a separate VAE's path
    (A1111 writes its file name and the first 10 hex digits of its SHA-256)."""
    from sdstudio.core.schedulers import get_sampler

    sampler = request.scheduler
    schedule = None
    try:
        spec = get_sampler(request.scheduler)
        sampler, schedule = spec.name, spec.schedule_type
        if schedule and sampler.endswith(" " + schedule):
            sampler = sampler[: -len(schedule) - 1]
    except UserError:
        pass
    items: dict[str, str | None] = {
        "Steps": str(request.steps),
        "Sampler": sampler,
        "Schedule type": schedule,
        "CFG scale": format_number(request.guidance),
        "Seed": str(seed),
        "Size": f"{request.width}x{request.height}",
        "Model hash": model_hash[:10] if model_hash else None,
        "Model": model_name(request.model),
        "VAE hash": vae_hash[:10] if vae and vae_hash else None,
        "VAE": Path(vae).name if vae else None,
        "Denoising strength": format_number(request.strength) if request.init_image else None,
        **_canvas_items(request),
        "Clip skip": str(request.clip_skip) if request.clip_skip != 1 else None,
        **_adapter_items(request),
        "Version": VERSION,
    }
    return {k: v for k, v in items.items() if v is not None}


def _adapter_items(request: GenerationRequest) -> dict[str, str | None]:
    """A1111's `Lora hashes` / `TI hashes` (imported only when a request can have them)."""
    if "<lora:" not in request.prompt and not request.loras and not request.embeddings_dir:
        return {}
    from sdstudio.core.adapters.apply import infotext_for

    return dict(infotext_for(request))


def _canvas_items(request: GenerationRequest) -> dict[str, str | None]:
    """Hires fix and inpaint options under A1111's names (`Size` stays the first pass's)."""
    if request.hires:
        return {"Denoising strength": format_number(request.hires_strength),
                "Hires upscale": format_number(request.hires_scale),
                "Hires steps": str(request.hires_steps) if request.hires_steps else None,
                "Hires upscaler": request.hires_upscaler}
    if request.mode != "inpaint":
        return {}
    only = request.inpaint_area == "only-masked"
    return {"Mask blur": str(request.mask_blur) if request.mask_blur else None,
            "Inpaint area": "Only masked" if only else None,
            "Masked area padding": str(request.inpaint_padding) if only else None,
            "Masked content": request.masked_content.replace("-", " ")}


def format_settings(settings: dict[str, str]) -> str:
    return ", ".join(f"{k}: {quote(v)}" for k, v in settings.items())


def format_parameters(
    request: GenerationRequest, seed: int, model_hash: str | None = None,
    vae: str | None = None, vae_hash: str | None = None,
) -> str:
    """The `parameters` text exactly as A1111 lays it out."""
    text = request.prompt
    if request.negative_prompt:
        text += f"\n{NEGATIVE_MARKER} {request.negative_prompt}"
    return f"{text}\n{format_settings(settings_for(request, seed, model_hash, vae, vae_hash))}"


def _items(line: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in _ITEM_RE.finditer(line) if m[1]]


def parse_settings(line: str) -> dict[str, str]:
    return {k.strip(): unquote(v.strip()) for k, v in _items(line)}


def parse_parameters(text: str) -> Parameters:
    """Parse A1111 `parameters` text (ours, A1111's and its forks'). Raises only MetadataError."""
    if not isinstance(text, str):
        raise MetadataError("The image parameters are not text.")
    try:
        return _parse_parameters(text)
    except Exception as exc:  # the promise: never anything but a clear parse error
        raise MetadataError(f"The image parameters could not be read ({exc}).") from exc


def _parse_parameters(text: str) -> Parameters:
    # String searches, not a loop over lines: a megabyte of short lines stays fast.
    text_ = text.rstrip("\r\n\t ")
    cut = text_.rfind("\n")
    body, last = (text_[:cut], text_[cut + 1:]) if cut >= 0 else ("", text_)
    items = _items(last) if len(last) <= MAX_SETTINGS_LINE else []
    if len(items) < 3:  # A1111's test for "this is the settings line"
        body, items = text_, []
    at = 0 if body.startswith(NEGATIVE_MARKER) else body.find("\n" + NEGATIVE_MARKER) + 1
    if at == 0 and not body.startswith(NEGATIVE_MARKER):  # no negative prompt
        prompt, negative = body, ""
    else:  # the first line starting with the marker begins the negative prompt
        prompt, negative = body[:max(at - 1, 0)], body[at + len(NEGATIVE_MARKER):]
        negative = negative.removeprefix(" ")
    return Parameters(
        prompt=prompt,
        negative_prompt=negative,
        settings={k.strip(): unquote(v.strip()) for k, v in items},
        text=text,
    )
