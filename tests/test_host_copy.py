"""Step events copied off the device for previews: order kept, nothing lost at the last step,
and (on a GPU) no wait for the copy."""

from __future__ import annotations

import pytest
import torch

from sdstudio.core import host_copy
from sdstudio.core.events import StepEvent
from sdstudio.core.host_copy import HostCopies


def _step(i: int, total: int = 5, device: str = "cpu") -> StepEvent:
    z = torch.full((2, 4, 3, 3), float(i), device=device)
    return StepEvent(i, total, 999.0 - i, z, 0.1 * i, denoised=z * 2)


def test_cpu_steps_come_back_at_once_in_order_with_their_values():
    copies = HostCopies()
    for i in (1, 2, 3):
        assert copies.start(_step(i))
    got = copies.ready()
    assert [ev.step for ev in got] == [1, 2, 3]
    assert all(float(ev.latents[0, 0, 0, 0]) == ev.step for ev in got)
    assert all(ev.denoised is not None and float(ev.denoised.max()) == 2 * ev.step for ev in got)
    assert copies.ready() == []


class _SlowEvent:
    """Stands in for torch.cuda.Event: the copy finishes when the test says so."""

    done = False

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        self.done = True


def test_a_copy_in_flight_is_not_waited_for_except_at_the_last_step(monkeypatch):
    copies = HostCopies()
    slow = _SlowEvent()
    copies._pending.append((_step(1), slow))  # a GPU copy still running
    assert copies.ready() == []  # no wait: the loop goes on
    copies.start(_step(2))
    assert copies.ready() == []  # step 2 queues behind step 1: previews stay in order
    slow.done = True
    assert [ev.step for ev in copies.ready()] == [1, 2]
    copies._pending.append((_step(4), _SlowEvent()))
    assert [ev.step for ev in copies.ready(wait=True)] == [4]  # the last step waits


def test_too_many_in_flight_drops_a_due_step_but_never_the_last():
    copies = HostCopies()
    for i in range(host_copy.MAX_PENDING):
        copies._pending.append((_step(i + 1, total=99), _SlowEvent()))
    assert not copies.start(_step(50, total=99))
    assert copies.start(_step(99, total=99))
    assert [ev.step for ev in copies.ready(wait=True)][-1] == 99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_copies_land_in_pinned_memory():
    copies = HostCopies()
    copies.start(_step(5, device="cuda"))
    (ev,) = copies.ready(wait=True)
    assert ev.latents.device.type == "cpu" and ev.latents.is_pinned()
    assert float(ev.latents[1, 3, 2, 2]) == 5.0
