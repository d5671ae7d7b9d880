"""From another tool's settings to ours: a GenerationRequest ("Use these settings"), the
A1111 `Parameters` the gallery indexes, and A1111 text to copy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdstudio.core.png.a1111 import NEGATIVE_MARKER, format_number, format_settings
from sdstudio.core.png.parameters import Parameters
from sdstudio.core.png.readers.model import ParsedMetadata
from sdstudio.core.png.readers.samplers import menu_sampler

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest


def request_fields(p: ParsedMetadata) -> tuple[dict[str, Any], list[str]]:
    """GenerationRequest keyword arguments for what the image says, and notices for what
    could not be carried over as it was (sampler not in the menu, size not a multiple of 8...).

    The model is left out: another tool's checkpoint name is not a path here; the caller
    keeps the current model (a notice names the image's)."""
    fields: dict[str, Any] = {"prompt": p.prompt, "negative_prompt": p.negative_prompt}
    notices = list(p.notices)
    if p.seed is not None:
        if 0 <= p.seed < 2**63:
            fields["seed"] = p.seed
        else:
            notices.append(f"Seed {p.seed} is outside our range; it was not used.")
    if p.steps:
        fields["steps"] = p.steps
    if p.cfg is not None:
        fields["guidance"] = p.cfg
    if p.sampler:
        name, notice = menu_sampler(p.sampler)
        if name:
            fields["scheduler"] = name
        if notice:
            notices.append(notice)
    for key in ("width", "height"):
        value = getattr(p, key)
        if value:
            rounded = max(8, value // 8 * 8)
            fields[key] = rounded
            if rounded != value:
                notices.append(f"{key.capitalize()} {value} rounded to {rounded} "
                               "(a multiple of 8).")
    if p.strength is not None and 0 < p.strength <= 1:
        fields["strength"] = p.strength
    if p.model:
        notices.append(f"The image was made with the model {p.model!r}; choose it in the model "
                       "menu if you have it.")
    if p.loras:
        names = ", ".join(lora.name for lora in p.loras[:5])
        notices.append(f"The image used LoRAs ({names}); they are in the prompt settings only "
                       "where this app supports them.")
    if p.hires is not None:
        notices.append("The image had a hires (upscale) pass; this request makes the first pass.")
    return fields, notices


def to_request(p: ParsedMetadata, base: GenerationRequest | None = None
               ) -> tuple[GenerationRequest, list[str]]:
    """`base` (or a default request) with the image's settings put in."""
    from dataclasses import replace

    from sdstudio.core.request import GenerationRequest

    fields, notices = request_fields(p)
    request = replace(base, **fields) if base is not None else GenerationRequest(**fields)
    return request, notices


def to_parameters(p: ParsedMetadata) -> Parameters:
    """The A1111-shaped Parameters the gallery and viewer show and index; what no field maps
    is kept as further items, so it is still shown."""
    if p.a1111_items:  # A1111 text: its own items, exactly as written
        settings = dict(p.a1111_items)
        if p.source not in ("a1111", "sdstudio"):
            settings.setdefault("Source", p.source)
    else:
        settings = a1111_settings(p)
        for key, value in list(p.extra.items())[:100]:
            settings.setdefault(key, value[:500])
    return Parameters(prompt=p.prompt, negative_prompt=p.negative_prompt, settings=settings,
                      source=p.source)  # .text stays empty: the raw text is the file's


def a1111_settings(p: ParsedMetadata) -> dict[str, str]:
    """The `Key: value` items of A1111's last line for these settings, in A1111's order."""
    num = format_number
    items: dict[str, str | None] = {
        "Steps": str(p.steps) if p.steps else None,
        "Sampler": p.sampler or None,
        "CFG scale": num(p.cfg) if p.cfg is not None else None,
        "Seed": str(p.seed) if p.seed is not None else None,
        "Size": f"{p.width}x{p.height}" if p.size else None,
        "Model hash": p.model_hash[:100] or None,
        "Model": p.model or None,
        "Denoising strength": num(p.strength) if p.strength is not None else None,
        "Clip skip": str(p.clip_skip) if p.clip_skip else None,
    }
    if p.hires is not None:
        h = p.hires
        items["Denoising strength"] = num(h.denoise) if h.denoise is not None else None
        items["Hires upscale"] = num(h.scale) if h.scale else None
        items["Hires resize"] = f"{h.width}x{h.height}" if h.width and h.height else None
        items["Hires steps"] = str(h.steps) if h.steps else None
        items["Hires upscaler"] = h.upscaler or None
    if p.loras:
        items["Lora weights"] = ", ".join(
            f"{lora.name}: {num(lora.weight) if lora.weight is not None else '?'}"
            for lora in p.loras[:50])
    items["Version"] = p.version or None
    items["Source"] = p.source if p.source not in ("a1111", "sdstudio") else None
    return {k: v for k, v in items.items() if v}


def to_a1111_text(p: ParsedMetadata) -> str:
    """'Copy parameters': A1111's layout, which every other tool's paste understands."""
    return a1111_text(to_parameters(p))


def a1111_text(params: Parameters) -> str:
    """Parameters (any tool's, as the gallery reads them) laid out as A1111 writes them."""
    text = params.prompt
    if params.negative_prompt:
        text += f"\n{NEGATIVE_MARKER} {params.negative_prompt}"
    return f"{text}\n{format_settings(params.settings)}"
