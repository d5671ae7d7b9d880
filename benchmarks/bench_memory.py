"""Benchmark: memory given back on unload and switch, and peak memory per rung of the ladder.

Prints
  1. the process's RSS before loading, after loading, after a job, after unloading, and after
     switching to a second model and back (on CUDA also torch.cuda.memory_allocated), so a model
     that is not given back shows as RSS / VRAM that does not come down;
  2. for each rung of the device's memory ladder (sdstudio.core.memory): seconds, the peak RSS
     above the loaded model (sampled every 2 ms), and on CUDA memory_allocated before the job
     (the weights the rung keeps on the GPU) and max_memory_allocated during it;
  3. one VAE decode at each --decode size, whole ("fast") and tiled: seconds and peak memory.

Runs on the CPU at small sizes (the CPU's ladder ends at "tiled") and on a GPU at real ones.
Usage: python benchmarks/bench_memory.py [--model demo|PATH] [--device auto|cpu|cuda]
       [--size 256] [--steps 4] [--batch 1] [--rungs fast,sliced,...] [--decode 1024,2048]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psutil  # noqa: E402
import torch  # noqa: E402

from sdstudio.core import memory  # noqa: E402
from sdstudio.core.engine import Engine  # noqa: E402
from sdstudio.core.paths import demo_model_dir  # noqa: E402
from sdstudio.core.pipeline import StableDiffusion  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402

MIB = 2**20


def _trim() -> None:
    """Collect, and hand glibc's freed heap back to the OS, so RSS shows what is really held."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    libc = ctypes.util.find_library("c")
    if libc:
        try:
            ctypes.CDLL(libc).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _rss() -> float:
    return psutil.Process().memory_info().rss / MIB


def _vram() -> str:
    if not torch.cuda.is_available():
        return ""
    return f"   cuda allocated {torch.cuda.memory_allocated() / MIB:8.1f} MiB"


@dataclass
class _Peak:
    """Peak RSS while a block runs, sampled from a thread."""

    peak: float = 0.0
    running: bool = True

    def __enter__(self) -> _Peak:
        self.peak = _rss()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *_exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rungs", default="", help="comma-separated; default: the device's ladder")
    parser.add_argument("--decode", default="1024,2048", help="VAE decode sizes, comma-separated")
    args = parser.parse_args()

    engine = Engine()

    def request(rung: str = "auto") -> GenerationRequest:
        return GenerationRequest(
            "a red circle on a blue background", model=args.model, device=args.device,
            dtype=args.dtype, steps=args.steps, width=args.size, height=args.size,
            batch_size=args.batch, seed=1, memory=rung)

    # 1. memory given back (a first load and job import diffusers and friends, whose code
    #    stays: the figures start after them)
    print(f"model {args.model}, {args.size}x{args.size}, batch {args.batch}, {args.steps} steps")
    engine.generate(request("fast"))
    engine.unload()
    _trim()
    before = _rss()
    print(f"before load    RSS {before:8.1f} MiB{_vram()}")
    engine.load(args.model, args.device, args.dtype)
    _trim()
    weights = sum(t.numel() * t.element_size() for m in memory.modules(engine.model)
                  for t in (*m.parameters(), *m.buffers())) / MIB
    print(f"after load     RSS {_rss():8.1f} MiB{_vram()}   ({engine.info.device}, "
          f"{engine.info.dtype}, weights {weights:.1f} MiB)")
    engine.generate(request("fast"))
    _trim()
    print(f"after a job    RSS {_rss():8.1f} MiB{_vram()}")
    unet = weakref.ref(engine.model.unet)
    engine.unload()
    _trim()
    print(f"after unload   RSS {_rss():8.1f} MiB{_vram()}   ({_rss() - before:+.1f} MiB vs before;"
          f" UNet {'still alive' if unet() is not None else 'freed'})")
    with tempfile.TemporaryDirectory() as tmp:
        source = demo_model_dir() if args.model == "demo" else args.model
        other = shutil.copytree(source, f"{tmp}/other")
        engine.load(args.model, args.device, args.dtype)
        engine.load(str(other), args.device, args.dtype)
        engine.load(args.model, args.device, args.dtype)  # switched twice: one model held
        _trim()
        print(f"after 2 switch RSS {_rss():8.1f} MiB{_vram()}")

    # 2. the ladder
    device = engine.model.device
    rungs = [r for r in args.rungs.split(",") if r] or list(memory.ladder(device))
    print(f"\n{'rung':<11}{'seconds':>9}{'peak RSS +MiB':>15}"
          + (f"{'weights on GPU MiB':>20}{'peak VRAM MiB':>15}" if device.type == "cuda" else ""))
    for rung in rungs:
        engine.generate(request(rung))  # warm-up, and the rung's hooks in place
        _trim()
        base = _rss()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            resident = torch.cuda.memory_allocated() / MIB
        t0 = time.perf_counter()
        with _Peak() as peak:
            result = engine.generate(request(rung))
            if device.type == "cuda":
                torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        used = result.images[0].record.get("memory", "fast")
        line = f"{rung:<11}{seconds:9.2f}{peak.peak - base:15.1f}"
        if device.type == "cuda":
            line += f"{resident:20.1f}{torch.cuda.max_memory_allocated() / MIB:15.1f}"
        print(line + ("" if used == rung else f"   (ran as {used})"))

    # 3. what VAE tiling buys: one decode of random latents, whole vs tiled
    sizes = [int(x) for x in args.decode.split(",") if x]
    if sizes:
        print(f"\n{'decode':<11}{'rung':<8}{'seconds':>9}{'peak RSS +MiB':>15}"
              + (f"{'peak VRAM MiB':>15}" if device.type == "cuda" else ""))
    loaded = engine.model
    pipe = StableDiffusion(loaded)
    for size in sizes:
        f = loaded.vae_scale_factor
        shape = (1, loaded.vae.config.latent_channels, size // f, size // f)
        latents = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
        for rung in ("fast", "tiled"):
            memory.apply_rung(loaded, rung)
            _trim()
            base = _rss()
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            try:
                with _Peak() as peak, torch.no_grad():
                    pipe.decode(latents, [])
                    if device.type == "cuda":
                        torch.cuda.synchronize()
            except torch.OutOfMemoryError:
                print(f"{size}²{'':<6}{rung:<8}   out of memory")
                continue
            line = f"{f'{size}²':<11}{rung:<8}{time.perf_counter() - t0:9.2f}{peak.peak - base:15.1f}"
            if device.type == "cuda":
                line += f"{torch.cuda.max_memory_allocated() / MIB:15.1f}"
            print(line)
    memory.apply_rung(loaded, "fast")


if __name__ == "__main__":
    main()
