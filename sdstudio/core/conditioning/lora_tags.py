"""Putting `<lora:NAME:WEIGHT>` tags into a prompt, as A1111's extra-networks cards do."""

from __future__ import annotations

import re


def format_weight(weight: float) -> str:
    return f"{round(weight, 2):g}"


def set_lora_tag(prompt: str, name: str, weight: float) -> str:
    """The prompt with `<lora:name:weight>`: the weight of an existing tag for `name` changed
    (its other fields kept), else the tag added at the end."""
    pattern = re.compile(r"<lora:" + re.escape(name) + r"(:[^:>]*)?((?::[^>]*)?)>")
    tag_weight = format_weight(weight)
    found = pattern.search(prompt)
    if found:
        tag = f"<lora:{name}:{tag_weight}{found.group(2)}>"
        return prompt[: found.start()] + tag + prompt[found.end():]
    tag = f"<lora:{name}:{tag_weight}>"
    return f"{prompt.rstrip()} {tag}" if prompt.strip() else tag


def lora_prefix(text_before_cursor: str) -> str | None:
    """The partial name after an open `<lora:` just before the cursor, else None."""
    found = re.search(r"<lora:([^:<>]*)$", text_before_cursor)
    return found.group(1) if found else None
