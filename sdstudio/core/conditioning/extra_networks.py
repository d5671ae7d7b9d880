"""A1111's extra-network tags, `<lora:NAME:WEIGHT>`: taken out of the text that is encoded."""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")  # modules/extra_networks.py re_extra_net


@dataclass(frozen=True)
class ExtraNetwork:
    kind: str  # "lora", "hypernet", ...
    items: tuple[str, ...]  # the ":"-separated arguments: name, weight, ...

    @property
    def name(self) -> str:
        return self.items[0]

    @property
    def weight(self) -> float:
        """The multiplier (A1111: the second item, default 1); ValueError if it is no number."""
        return float(self.items[1]) if len(self.items) > 1 else 1.0


def parse_extra_networks(prompt: str) -> tuple[str, list[ExtraNetwork]]:
    """(prompt without its tags, the tags in order), as A1111's `extra_networks.parse_prompt`."""
    found: list[ExtraNetwork] = []

    def take(m: re.Match) -> str:
        found.append(ExtraNetwork(m.group(1), tuple(m.group(2).split(":"))))
        return ""

    return _EXTRA_NET.sub(take, prompt), found
