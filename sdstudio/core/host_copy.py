"""Step events copied to the CPU without stopping the GPU.

A preview needs the step's latents on the CPU. A plain `.cpu()` of a CUDA tensor waits for every
kernel queued so far, so the loop could no longer queue the next step while the GPU runs this
one. `HostCopies` starts the copy instead (into pinned memory, on the current stream, marked by
a CUDA event) and hands the step back only once the event says the copy is done: a preview comes
a step or two late, and the loop never waits for it. The last step is waited for (its preview is
the one that must be exact). On the CPU (and MPS) the copy is a plain one and comes back at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import torch

from sdstudio.core.events import StepEvent

MAX_PENDING = 4  # copies in flight; past this a due preview is dropped rather than queued


class HostCopies:
    """Start copies of due steps (`start`), collect the finished ones in order (`ready`)."""

    def __init__(self) -> None:
        self._pending: deque[tuple[StepEvent, Any]] = deque()

    def start(self, ev: StepEvent) -> bool:
        """Copy `ev`'s latents (and x0 estimate) to the CPU; False if too many are in flight
        (the step is skipped; the last step never is)."""
        last = ev.step >= ev.total
        if not last and len(self._pending) >= MAX_PENDING:
            return False
        if ev.latents.device.type != "cuda":
            self._pending.append((_on_cpu(ev, non_blocking=False), None))
            return True
        copied = _on_cpu(ev, non_blocking=True, pin=True)
        done = torch.cuda.Event()
        done.record()
        self._pending.append((copied, done))
        return True

    def ready(self, wait: bool = False) -> list[StepEvent]:
        """The steps whose copy has finished, oldest first; `wait`: all of them, waiting."""
        out = []
        while self._pending:
            ev, done = self._pending[0]
            if done is not None and not done.query():
                if not wait:
                    break
                done.synchronize()
            out.append(ev)
            self._pending.popleft()
        return out


def _on_cpu(ev: StepEvent, non_blocking: bool, pin: bool = False) -> StepEvent:
    def copy(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        t = t.detach()
        if t.device.type == "cpu":
            return t
        host = torch.empty(t.shape, dtype=t.dtype, pin_memory=pin)
        return host.copy_(t, non_blocking=non_blocking)

    latents = copy(ev.latents)
    assert latents is not None
    return replace(ev, latents=latents, denoised=copy(ev.denoised))
