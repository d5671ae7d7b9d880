"""The fast path on CUDA, the dtype a model runs in, and compiled mode.

Loading on CUDA puts the UNet and VAE in channels-last memory order (cuDNN's fast convolutions
in half precision) and keeps attention on torch's scaled_dot_product_attention (diffusers'
`AttnProcessor2_0`, its default on torch 2). On the CPU the memory format is left alone:
channels-last measured no faster there on the demo model (a UNet call, 128², CFG: median 507 ms
contiguous, 477 ms channels-last, within the run's noise).

Compiled mode (`request.compile`) runs the UNet and the VAE decoder through `torch.compile`,
made once per loaded model, with one graph per shape (`dynamic=False`); on CUDA in
"reduce-overhead" mode, which replays CUDA graphs. Inductor's caches live in sdstudio's cache
folder, so a shape compiled once is reused by later runs and after a restart. While compiled,
a job can be cancelled between steps only: `interruptible`'s block hooks would break the graphs.
A compile that fails (no C++ compiler, an op inductor cannot handle) falls back to the eager
modules for the rest of the model's life, with one notice; it never fails the job.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from sdstudio.core.errors import GenerationCancelled, UserError, is_out_of_memory

log = logging.getLogger(__name__)

# torch.compile's mode on CUDA; SDSTUDIO_COMPILE_MODE picks another for a benchmark
# ("max-autotune" tunes kernels for minutes more, "max-autotune-no-cudagraphs", "default").
CUDA_COMPILE_MODE = "reduce-overhead"
CPU_COMPILE_MODE = "default"
_CUDAGRAPH_MODES = frozenset({"reduce-overhead", "max-autotune"})
RECOMPILE_LIMIT = 64
_SAFETENSORS_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}
_DTYPE_NAMES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# --- loading ---------------------------------------------------------------------------------
def prepare_for_device(unet: Any, vae: Any, device: torch.device) -> None:
    """What loading does on CUDA: channels-last UNet and VAE, SDPA attention, cuDNN autotuning
    (it picks the fastest convolution per shape once; sizes repeat from job to job)."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    for module in (unet, vae):
        module.to(memory_format=torch.channels_last)
        use_sdpa(module)
    pinned_sampler_noise()


def pinned_sampler_noise() -> None:
    """The samplers that add noise each step (Euler a, SDE, DPM2 a, ...) draw it from our CPU
    generators and copy it to the GPU with a blocking `.to(device)`, a wait for the GPU every
    step. In their modules diffusers' `randn_tensor` becomes `randn_pinned`: the same numbers,
    copied from pinned memory without waiting."""
    import sys

    import diffusers
    from diffusers.utils import torch_utils

    from sdstudio.core.samplers import SAMPLERS

    for spec in SAMPLERS:
        module = sys.modules[getattr(diffusers, spec.cls).__module__]
        if getattr(module, "randn_tensor", None) is torch_utils.randn_tensor:
            setattr(module, "randn_tensor", randn_pinned)  # noqa: B010 - a module, not typed


def randn_pinned(shape: Any, generator: Any = None, device: Any = None, dtype: Any = None,
                 layout: Any = None) -> torch.Tensor:
    """diffusers' `randn_tensor`; for CPU generators and a CUDA tensor, without a host wait."""
    from diffusers.utils.torch_utils import randn_tensor

    target = torch.device(device) if device is not None else None
    generators = generator if isinstance(generator, list) else [generator]
    if target is None or target.type != "cuda" or generator is None or any(
            g.device.type != "cpu" for g in generators):
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype, layout=layout)
    noise = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=dtype,
                         layout=layout)
    return noise.pin_memory().to(target, non_blocking=True)


def use_sdpa(module: Any) -> None:
    """Swap diffusers' classic attention processor, which materialises the attention matrix,
    for SDPA where a model carries it; other processors (LoRA, IP-adapter, sliced) are kept."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processors = getattr(module, "attn_processors", None) or {}
    if any(type(p) is AttnProcessor for p in processors.values()):
        module.set_attn_processor({
            name: AttnProcessor2_0() if type(p) is AttnProcessor else p
            for name, p in processors.items()
        })


def choose_dtype(dtype: str, device: str, stored: torch.dtype | None,
                 bf16_supported: bool) -> torch.dtype:
    """The dtype to run in: `dtype` as asked ("auto", "fp32", "fp16", "bf16") on `device`.

    auto is fp16 on CUDA, bf16 there when the weights are stored in bf16 (`stored`) and the GPU
    has bf16 (`bf16_supported`), and fp32 elsewhere. bf16 runs on CUDA GPUs that have it and on
    the CPU; fp16 needs a GPU.
    """
    if dtype == "auto":
        if device != "cuda":
            return torch.float32
        return torch.bfloat16 if stored == torch.bfloat16 and bf16_supported else torch.float16
    if dtype not in _DTYPE_NAMES:
        raise UserError(f"Dtype must be auto, fp32, fp16 or bf16, got {dtype!r}.")
    if dtype == "fp16" and device == "cpu":
        raise UserError("fp16 needs a GPU; use fp32 (or bf16) on the CPU.")
    if dtype == "bf16" and device == "cuda" and not bf16_supported:
        raise UserError("This GPU has no bf16; use fp16.")
    if dtype == "bf16" and device == "mps":
        raise UserError("bf16 is not supported on MPS here; use fp16.")
    return _DTYPE_NAMES[dtype]


def stored_dtype(path: Path) -> torch.dtype | None:
    """The dtype most of a model's UNet weights are stored in, from a safetensors header (no
    weights read): a diffusers folder's unet/, or a single file's `model.diffusion_model.*`.
    None where it cannot be told (pickles, a missing or unreadable file)."""
    try:
        if path.is_dir():
            file = _unet_weights_file(path / "unet")
            return None if file is None else _majority_dtype(file, prefix="")
        if path.suffix.lower() == ".safetensors":
            return _majority_dtype(path, prefix="model.diffusion_model.")
    except (OSError, ValueError, KeyError, struct.error):
        log.debug("stored dtype of %s unknown", path, exc_info=True)
    return None


def _unet_weights_file(unet: Path) -> Path | None:
    if not unet.is_dir():
        return None
    index = sorted(unet.glob("*.safetensors.index.json"))
    if index:  # sharded: any shard tells
        shards = json.loads(index[0].read_text("utf-8"))["weight_map"].values()
        return unet / sorted(shards)[0]
    files = sorted(unet.glob("*.safetensors"), key=lambda p: (p.name.count("."), p.name))
    return files[0] if files else None  # the plain weights before a variant's


def _majority_dtype(file: Path, prefix: str) -> torch.dtype | None:
    with file.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        if size > 100 * 2**20:
            raise ValueError("implausible safetensors header")
        header = json.loads(f.read(size))
    counts = Counter(
        entry["dtype"] for key, entry in header.items()
        if key != "__metadata__" and key.startswith(prefix) and entry["dtype"] in _SAFETENSORS_DTYPES
    )
    return _SAFETENSORS_DTYPES[counts.most_common(1)[0][0]] if counts else None


# --- compiled mode ---------------------------------------------------------------------------
def compile_cache_dir() -> Path:
    from sdstudio.core.paths import cache_dir

    return cache_dir() / "torch-compile"


def use_compile_cache() -> None:
    """Inductor's caches (FX graphs, kernels, autotuning) in sdstudio's cache folder, unless the
    user chose another with TORCHINDUCTOR_CACHE_DIR (the default is a temp folder)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))


def compile_mode(device: torch.device) -> str:
    if device.type == "cuda":
        return os.environ.get("SDSTUDIO_COMPILE_MODE") or CUDA_COMPILE_MODE
    return CPU_COMPILE_MODE


Notify = Callable[[str], None]


class Compiler:
    """The compiled UNet and VAE decoder of one loaded model (made on first use), the shapes
    compiled so far, and whether compiling failed. Dropped with the model."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.mode = compile_mode(loaded.device)
        self.failed = False
        self.seen: set[tuple[int, int, int]] = set()
        self._notify: Notify = lambda _text: None
        self._calls: dict[torch.nn.Module, _CompiledCall] = {}  # module -> its compiled call

    def warmup_notice(self, shapes: list[tuple[int, int, int]]) -> str | None:
        """The notice for a job of (UNet batch, latent height, latent width) passes, when one of
        them was not compiled yet (and remember them)."""
        new = [s for s in dict.fromkeys(shapes) if s not in self.seen]
        self.seen.update(new)
        if not new:
            return None
        sizes = " and ".join(f"{w}×{h}" for _b, h, w in new)
        return (f"Compiling the UNet for {sizes} latents — the first run at a new size takes a "
                "while; later runs reuse it.")

    @contextmanager
    def active(self, notify: Notify, shapes: list[tuple[int, int, int]]) -> Iterator[bool]:
        """Within: calling the model's UNet or VAE decoder runs its compiled version (True), or,
        after a failed compile or on an offloaded model, the module itself (False). The modules
        stay the same objects (LoRAs, the record, the memory helpers see no difference).
        `shapes` (see `unet_shapes`) not compiled yet are announced first."""
        m = self.loaded
        if self.failed:
            yield False
            return
        if _has_hooks(m.unet):  # CPU offload (accelerate hooks): dynamo cannot trace them
            notify("Compile is off for this job: the model is offloaded to the CPU.")
            yield False
            return
        notice = self.warmup_notice(shapes)
        if notice:
            notify(notice)
        use_compile_cache()
        # one graph per shape (and dtype): more than dynamo's default 8 in a long session
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit,
                                                   RECOMPILE_LIMIT)
        modules = ((m.unet, "UNet"), (m.vae.decoder, "VAE decoder"))
        for module, what in modules:
            if module not in self._calls:
                self._calls[module] = _CompiledCall(module, self, what)
        self._notify = notify
        for module, _what in modules:  # nn.Module.__call__ runs this in place of its own
            module._compiled_call_impl = self._calls[module]
        try:
            yield True
        finally:
            for module, _what in modules:
                module._compiled_call_impl = None
            self._notify = lambda _text: None

    def fail(self, what: str, exc: BaseException) -> None:
        log.warning("torch.compile of the %s failed; running eager", what, exc_info=exc)
        if not self.failed:
            self.failed = True
            self._notify(f"Compiling the {what} failed ({_reason(exc)}), so the model runs "
                         "uncompiled.")


def _reason(exc: BaseException) -> str:
    """The first line of the innermost error (dynamo wraps the compiler's in its own)."""
    while True:
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__).rstrip(":")[:160]


def unet_shapes(loaded: Any, request: Any) -> list[tuple[int, int, int]]:
    """(UNet batch, latent height, latent width) of each pass a request runs (hires: two)."""
    cfg = request.guidance > 1 and loaded.unet.config.time_cond_proj_dim is None
    batch = request.batch_size * (2 if cfg else 1)
    f = loaded.vae_scale_factor
    sizes = [(request.width, request.height)]
    if request.hires:
        sizes.append(request.hires_size)
    return [(batch, h // f, w // f) for w, h in sizes]


def _has_hooks(module: Any) -> bool:
    return any(hasattr(m, "_hf_hook") for m in module.modules())  # modules() includes itself


class _CompiledCall:
    """What `nn.Module.__call__` runs while compiled (as `Module.compile()` sets it up): the
    compiled forward (the module's own hooks are not run: compiled mode takes models without
    them), or the module's own call once compiling failed.

    With CUDA graphs, each call starts a new graph step and its outputs are cloned: the graph's
    output memory is overwritten by the next replay, and schedulers keep model outputs."""

    def __init__(self, module: torch.nn.Module, compiler: Compiler, what: str) -> None:
        self.eager = module._call_impl
        # its forward, not `_call_impl` (Module.compile's choice): that code object is every
        # module's, so the UNet's and the decoder's graphs would share one recompile limit
        self.compiled = torch.compile(module.forward, mode=compiler.mode, dynamic=False)
        self.compiler = compiler
        self.what = what
        self.graphs = compiler.mode in _CUDAGRAPH_MODES and compiler.loaded.device.type == "cuda"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiler.failed:
            return self.eager(*args, **kwargs)
        try:
            if self.graphs:
                torch.compiler.cudagraph_mark_step_begin()
                return _clone_tensors(self.compiled(*args, **kwargs))
            return self.compiled(*args, **kwargs)
        except GenerationCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - any compiler failure: run eager instead
            if is_out_of_memory(exc):
                raise
            out = self.eager(*args, **kwargs)  # the model's own error, if it was not the compiler's
            self.compiler.fail(self.what, exc)
            return out


def _clone_tensors(out: Any) -> Any:
    from torch.utils._pytree import tree_map

    return tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, out)


# --- host synchronisation --------------------------------------------------------------------
class SyncCheck:
    """For a GPU benchmark: `torch.cuda.set_sync_debug_mode` on from the end of the first step
    (whose scheduler set-up looks its timestep up once) to the last, outside the `on_step`
    callback it wraps (a preview copies to the host when it is due). mode "error" raises at the
    first synchronising call, "warn" warns. Does nothing without CUDA."""

    def __init__(self, mode: str = "error",
                 on_step: Callable[[Any], None] | None = None) -> None:
        self.mode = mode
        self.inner = on_step
        self._active = torch.cuda.is_available()

    def _set(self, mode: str | int) -> None:
        if self._active:
            torch.cuda.set_sync_debug_mode(mode)

    def __call__(self, event: Any) -> None:
        self._set(0)
        if self.inner is not None:
            self.inner(event)
        if event.step < event.total:
            self._set(self.mode)

    def __enter__(self) -> SyncCheck:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._set(0)
