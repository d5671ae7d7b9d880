"""Finding host synchronisations on the CPU: which values the host reads that a GPU run would
have to wait for.

On the CPU nothing waits, so `HostReads` plays the GPU: it marks the tensors a CUDA run would
hold on the device (the model's weights, the scheduler's tensors that `set_timesteps(device=...)`
moves there, found by running it on the "meta" device) and, through a `TorchDispatchMode`,
everything computed from them. A read of a marked tensor on the host (`.item()`, `float(t)`,
`bool(t)`, `nonzero`, a copy to the CPU, indexing a host table with it, `tolist`/`numpy`) is
recorded with the pipeline step it happened in. Host-to-device copies are not seen here (on the
CPU they are no-ops); `sdstudio.core.fastpath.SyncCheck` finds those on a GPU.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakTensorKeyDictionary

aten = torch.ops.aten
# ops whose result the host must see before it can go on (the output's size or a value)
_READS = {
    aten._local_scalar_dense, aten.nonzero, aten.is_nonzero, aten.equal, aten.masked_select,
    aten._unique2, aten.unique_consecutive, aten.unique_dim, aten.repeat_interleave,
    aten.nonzero_static, aten.argwhere,
}


@dataclass(frozen=True)
class HostRead:
    phase: int  # on_step calls before it: 0 = set-up and step 1, k = step k + 1, n = after
    op: str
    where: str  # the innermost frames outside torch


class HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.device = WeakTensorKeyDictionary()
        self.reads: list[HostRead] = []
        self.phase = 0

    def mark(self, *tensors: Any) -> None:
        for t in tree_leaves(tensors):
            if isinstance(t, torch.Tensor):
                self.device[t] = True

    def mark_model(self, model: Any) -> None:
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            module = getattr(model, name, None)
            if module is not None:
                self.mark(*module.parameters(), *module.buffers())

    def mark_scheduler(self, scheduler: Any, steps: int) -> None:
        """The scheduler's tensors that a GPU run holds on the device: those that
        `set_timesteps(steps, device=...)` leaves on the device it is given (tried with "meta")."""
        probe = copy.deepcopy(scheduler)
        try:
            type(probe).set_timesteps(probe, steps, device="meta")  # not a patched instance's
        except Exception:  # noqa: BLE001 - a scheduler that cannot: its timesteps at least
            self.mark(scheduler.timesteps)
            return
        for name, value in vars(probe).items():
            if isinstance(value, torch.Tensor) and value.device.type == "meta":
                self.mark(getattr(scheduler, name))

    def step_done(self) -> None:
        self.phase += 1

    def per_step(self, total: int) -> list[HostRead]:
        """The reads during steps 2..total (step 1 sets the scheduler's index up once)."""
        return [r for r in self.reads if 1 <= r.phase < total]

    def _record(self, op: str) -> None:
        frames = [f for f in traceback.extract_stack()[:-2]
                  if "/torch/" not in f.filename and "host_reads" not in f.filename]
        where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                            for f in reversed(frames[-3:]))
        self.reads.append(HostRead(self.phase, op, where))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        marked = [t in self.device for t in tensors]
        out = func(*args, **kwargs)
        if not any(marked):
            return out
        to_host = func.overloadpacket is aten._to_copy and kwargs.get("device") == torch.device(
            "cpu")
        host_table = func.overloadpacket is aten.index and not marked[0]
        if func.overloadpacket in _READS or to_host or host_table:
            self._record(str(func.overloadpacket.__name__))
        if not (to_host or host_table):
            self.mark(out)
        return out

    @contextmanager
    def python_reads(self) -> Iterator[None]:
        """Also record `tolist()`, `numpy()` and `__array__` of marked tensors (no dispatch on
        the CPU: they read the memory directly)."""
        saved = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy", "__array__")}
        probe = self

        def wrap(name: str, method: Any) -> Any:
            def read(self: torch.Tensor, *a: Any, **k: Any) -> Any:
                if self in probe.device:
                    probe._record(name)
                return method(self, *a, **k)
            return read

        try:
            for name, method in saved.items():
                setattr(torch.Tensor, name, wrap(name, method))
            yield
        finally:
            for name, method in saved.items():
                setattr(torch.Tensor, name, method)
