"""A prompt's conditioning per denoising step: prompt editing and alternation encoded once each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from sdstudio.core.conditioning.schedules import entry_at, schedule

T = TypeVar("T")


@dataclass
class Scheduled(Generic[T]):
    """[(until_step, conditioning), ...]; `at(i)` is the conditioning of 0-based step i."""

    entries: list[tuple[int, T]]

    def at(self, step: int) -> T:
        return self.entries[entry_at(self.entries, step)][1]

    @property
    def texts_change(self) -> bool:
        return len(self.entries) > 1


def scheduled(prompt: str, steps: int, encode_text: Callable[[str], T]) -> Scheduled[T]:
    """Encode each distinct text of the prompt's schedule once (`encode_text` is the family's)."""
    cache: dict[str, T] = {}
    entries = []
    for until, text in schedule(prompt, steps):
        if text not in cache:
            cache[text] = encode_text(text)
        entries.append((until, cache[text]))
    return Scheduled(entries)


@dataclass
class CfgConditioning:
    """The UNet's encoder_hidden_states per step for a batch, with CFG [negatives..., prompts...].

    Where the prompt and the negative prompt have different numbers of chunks at a step, `at`
    gives them apart and the UNet runs twice, as A1111 does by default (its "pad_cond_uncond"
    option, off by default, would pad the shorter one with empty-prompt chunks instead).
    """

    positive: Scheduled  # of tensors (1, tokens, width)
    negative: Scheduled | None
    batch: int

    def at(self, step: int) -> list:
        pos = self.positive.at(step).repeat(self.batch, 1, 1)
        if self.negative is None:
            return [pos]
        neg = self.negative.at(step).repeat(self.batch, 1, 1)
        if neg.shape == pos.shape:
            return [torch.cat([neg, pos])]
        return [neg, pos]

    @property
    def dtype(self):
        return self.positive.entries[0][1].dtype
