"""A prompt's conditioning per denoising step: prompt editing and alternation encoded once each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sdstudio.core.conditioning.schedules import entry_at, schedule

T = TypeVar("T")


@dataclass
class Scheduled(Generic[T]):
    """[(until_step, conditioning), ...]; `at(i)` is the conditioning of 0-based step i."""

    entries: list[tuple[int, T]]

    def at(self, step: int) -> T:
        return self.entries[entry_at(self.entries, step)][1]


def per_step(
    prompt: str, negative: str, steps: int, condition: Callable[[str, str], T]
) -> Scheduled[T]:
    """The conditioning of each step where the prompt and the negative prompt both follow their
    own editing/alternation schedules: `condition(prompt_text, negative_text)` (the family's)
    runs once per distinct pair of texts."""
    pos, neg = schedule(prompt, steps), schedule(negative, steps)
    cache: dict[tuple[str, str], T] = {}
    entries = []
    for until in sorted({u for u, _ in pos} | {u for u, _ in neg}):
        texts = (pos[entry_at(pos, until)][1], neg[entry_at(neg, until)][1])
        if texts not in cache:
            cache[texts] = condition(*texts)
        entries.append((until, cache[texts]))
    return Scheduled(entries)
