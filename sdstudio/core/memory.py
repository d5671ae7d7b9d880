"""The memory ladder: ways to run a job in less device memory, each slower than the one above.

Rungs are cumulative, fastest first (`defaults.MEMORY_RUNGS`):

- fast: nothing (PyTorch's scaled-dot-product attention, whole models on the device);
- sliced: attention computed a few heads at a time (diffusers' `set_attention_slice("auto")`)
  and the VAE sliced over the batch (the pipeline already decodes and encodes one image at a
  time, so this only matters to code that hands the VAE a batch);
- tiled: + VAE tiling, decoding (and encoding) in overlapping tiles, which is what makes 2048²
  decodes fit; it changes pixels slightly where tiles are blended;
- offload: + model CPU offload (accelerate's `cpu_offload_with_hook`, text encoder(s) -> UNet ->
  VAE, as diffusers' `enable_model_cpu_offload`): only the model running is on the device;
- sequential: + sequential CPU offload (accelerate's `cpu_offload`): weights reach the device one
  layer at a time.

On the CPU the two offload rungs move weights from the CPU to the CPU: `ladder` ends at "tiled"
there. The execution device stays `LoadedModel.device` under offload (accelerate's hooks move
modules and inputs there), while a module's own `.device` says cpu or meta: code that needs
where a module runs asks `execution_device`.

`apply_rung` goes to any rung from any rung, up as well as down, and does nothing when the model
is already there; `release` takes every hook off before a model is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from sdstudio.core.defaults import MEMORY_RUNGS

if TYPE_CHECKING:
    from sdstudio.core.models import LoadedModel

FAST = MEMORY_RUNGS[0]
OFFLOAD_RUNGS = ("offload", "sequential")
# What each rung adds to the one above it, for notices ("retried with ...").
ADDS = {
    "fast": "the fast path",
    "sliced": "attention slicing",
    "tiled": "VAE tiling",
    "offload": "model CPU offload",
    "sequential": "sequential CPU offload",
}


@dataclass
class MemoryState:
    """Where a loaded model stands on the ladder (LoadedModel.memory)."""

    rung: str = FAST
    device: torch.device | None = None  # the execution device of the offload hooks
    hooks: list[Any] = field(default_factory=list)  # accelerate's UserCpuOffloadHooks (offload)


def ladder(device: torch.device | str) -> tuple[str, ...]:
    """The rungs worth trying on `device`: all of them on a GPU, up to "tiled" on the CPU."""
    kind = getattr(device, "type", str(device))
    return MEMORY_RUNGS if kind != "cpu" else MEMORY_RUNGS[: MEMORY_RUNGS.index("tiled") + 1]


def clamp(rung: str, device: torch.device | str) -> str:
    """`rung`, or the lowest rung of `device`'s ladder where `rung` is below it (offload on the
    CPU is tiling: there is nowhere else to put the weights)."""
    rungs = ladder(device)
    return rung if rung in rungs else rungs[-1]


def next_rung(rung: str, device: torch.device | str) -> str | None:
    """The rung below `rung` on `device`'s ladder, None at the bottom."""
    rungs = ladder(device)
    i = rungs.index(clamp(rung, device))
    return rungs[i + 1] if i + 1 < len(rungs) else None


def at_least(rung: str, floor: str) -> bool:
    """Whether `rung` does everything `floor` does (rungs are cumulative)."""
    return MEMORY_RUNGS.index(rung) >= MEMORY_RUNGS.index(floor)


def describe_rung(rung: str) -> str:
    """What a rung changes, in words: "VAE tiling (slower, uses less memory)"."""
    if rung == FAST:
        return "the fast path (whole models on the device)"
    return f"{ADDS[rung]} (slower, uses less memory)"


def fallback_notice(width: int, height: int, failed: str, rung: str) -> str:
    """The notice of an automatic retry one rung down."""
    return (f"Out of memory at {width}×{height} with {ADDS[failed]}: retried with "
            f"{describe_rung(rung)}.")


def modules(loaded: LoadedModel) -> list[torch.nn.Module]:
    """The models a job runs, in the order it runs them (the offload chain)."""
    found = (loaded.text_encoder, loaded.text_encoder_2, loaded.unet, loaded.vae)
    return [m for m in found if isinstance(m, torch.nn.Module)]


def apply_rung(loaded: LoadedModel, rung: str,
               execution_device: torch.device | str | None = None) -> None:
    """Put `loaded` on `rung` (from wherever it is; nothing happens when it is there already).
    `execution_device` (default: the model's device) is where offloaded modules run."""
    if rung not in MEMORY_RUNGS:
        raise ValueError(f"unknown memory rung {rung!r}")
    device = torch.device(execution_device if execution_device is not None else loaded.device)
    state = loaded.memory if loaded.memory is not None else MemoryState()
    offload = rung if rung in OFFLOAD_RUNGS else None
    held = state.rung if state.rung in OFFLOAD_RUNGS else None
    if state.rung == rung and (offload is None or state.device == device):
        return
    loaded.memory = state
    if held is not None and (held != offload or state.device != device):
        _remove_hooks(loaded, state)  # weights come back where they were: on the CPU
        state.rung, held = "", None  # until the new rung is in place (a move to the device
        # can run out of memory: the next call must then start over, not trust the old rung)
    _set_attention_slicing(loaded.unet, at_least(rung, "sliced"))
    loaded.vae.use_slicing = at_least(rung, "sliced")
    loaded.vae.use_tiling = at_least(rung, "tiled")
    if offload is None:
        for module in modules(loaded):
            module.to(loaded.device)
    elif held != offload or state.device != device:
        _offload(loaded, state, offload, device)
    state.rung, state.device = rung, device if offload else None


def after_job(loaded: LoadedModel) -> None:
    """Model offload leaves the last model (the VAE) on the device: send it back, as diffusers'
    `maybe_free_model_hooks` does at the end of a call."""
    state = loaded.memory
    if state is not None:
        for hook in state.hooks:
            hook.offload()


def release(loaded: LoadedModel) -> None:
    """Take every hook off (they hold references to the modules) before the model is dropped."""
    state = loaded.memory
    if state is not None and state.rung in OFFLOAD_RUNGS:
        _remove_hooks(loaded, state)
    loaded.memory = None


def execution_device(module: Any) -> torch.device:
    """Where `module` runs: its offload hook's execution device where it has one (its weights
    then sit on the CPU, or on "meta" under sequential offload), else its own device."""
    for sub in module.modules() if isinstance(module, torch.nn.Module) else ():
        hook = getattr(sub, "_hf_hook", None)
        for h in (hook, *getattr(hook, "hooks", ())):
            device = getattr(h, "execution_device", None)
            if device is not None:
                return torch.device(device)
        if hook is None and any(True for _ in sub.parameters(recurse=False)):
            break  # a module with weights and no hook: nothing is offloaded
    return torch.device(module.device)


# --- the pieces --------------------------------------------------------------------------------
def _set_attention_slicing(unet: Any, on: bool) -> None:
    """diffusers' "auto" slicing (half the heads at a time) on, or every attention layer back on
    its default processor (scaled-dot-product attention) off."""
    if not hasattr(unet, "set_attention_slice"):
        return
    if on:
        dims = [m.sliceable_head_dim for m in unet.modules() if hasattr(m, "set_attention_slice")
                and m is not unet]
        unet.set_attention_slice([max(1, d // 2) for d in dims])  # "auto", never 0 heads
    else:
        unet.set_attention_slice(None)


def _offload(loaded: LoadedModel, state: MemoryState, kind: str, device: torch.device) -> None:
    from accelerate import cpu_offload, cpu_offload_with_hook

    for module in modules(loaded):
        module.to("cpu")
    _empty_cache(device)
    state.hooks = []
    if kind == "offload":
        hook = None
        for module in modules(loaded):
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
            state.hooks.append(hook)
    else:  # as diffusers' enable_sequential_cpu_offload
        for module in modules(loaded):
            cpu_offload(module, device, offload_buffers=len(module._parameters) > 0)


def _remove_hooks(loaded: LoadedModel, state: MemoryState) -> None:
    from accelerate.hooks import remove_hook_from_module

    for module in modules(loaded):
        remove_hook_from_module(module, recurse=True)  # restores offloaded weights (to the CPU)
    state.hooks = []


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- what stays on the device -----------------------------------------------------------------
def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def weights_on_device(loaded: LoadedModel) -> int:
    """Bytes of weights now on the model's device (an offloaded module's are on the CPU)."""
    device = torch.device(loaded.device)
    return sum(_bytes(t for t in (*m.parameters(), *m.buffers()) if t.device == device
                      or (device.index is None and t.device.type == device.type))
               for m in modules(loaded))


def resident_weights(loaded: LoadedModel, rung: str) -> int:
    """Bytes of weights a job at `rung` keeps on the device at once: all of them, the largest
    model (model offload) or about nothing (sequential offload: one layer at a time)."""
    if torch.device(loaded.device).type == "cpu":
        return weights_on_device(loaded)  # nothing leaves the CPU
    sizes = [_bytes((*m.parameters(), *m.buffers())) for m in modules(loaded)]
    if rung == "sequential":
        return 0
    if rung == "offload":
        return max(sizes, default=0)
    return sum(sizes)
