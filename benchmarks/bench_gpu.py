"""Benchmark: sdstudio's Engine vs diffusers' own pipeline on the same full-size random-weight
components, per memory mode (and torch.compile), on CUDA or the CPU.

For each case (model, size, steps), batch and mode, interleaved runs (medians) give:
  s/image, it/s (UNet steps of the batch per second), ratio ours / diffusers,
  peak memory (CUDA: torch.cuda.max_memory_allocated; CPU: the RSS peak above the run's start,
  which is not comparable to VRAM), time to the first preview (ours: the worker's preview work
  on the first step's latents) and that preview work as % of a step; on CUDA the host syncs
  inside the loop (steps 2..N) counted with torch.cuda.set_sync_debug_mode("warn").
Each mode passes `memory=<rung>` / `compile=True` through the request to the Engine and sets
diffusers' pipeline up the matching way (enable_attention_slicing + enable_vae_slicing,
+ enable_vae_tiling, enable_model_cpu_offload, enable_sequential_cpu_offload,
torch.compile(pipe.unet)); the offload modes need an accelerator and are skipped on the CPU.
`--cases single-file`: time from choosing a full-size SD 1.5 fp32 single file (~4 GB, written
with random weights to a temporary folder and deleted after) to the first step at 256².

  python benchmarks/bench_gpu.py                            # CUDA: every case, batch 1 and 4
  python benchmarks/bench_gpu.py --device cpu               # CPU: SD 1.5 256², 3 steps, fast
  python benchmarks/bench_gpu.py --device cpu --cases single-file
  python benchmarks/bench_gpu.py --small --modes fast sliced  # tiny models, under a minute

Every run is warmed up once (torch.compile compiles there, once per batch shape). The whole
CUDA default is long: sequential offload of SDXL at batch 4 alone takes minutes a run. Within a
ten-minute device slot, for example:
  python benchmarks/bench_gpu.py --repeats 2 --modes fast sliced tiled offload --json gpu.json
  python benchmarks/bench_gpu.py --repeats 1 --modes sequential compile --batches 1
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pipeline, run as a script or not

import torch  # noqa: E402
from bench_pipeline import diffusers_pipeline, interleaved, run_diffusers  # noqa: E402

from sdstudio.core.engine import Engine  # noqa: E402
from sdstudio.core.errors import GenerationCancelled  # noqa: E402
from sdstudio.core.latents import channel_images, preview_rgb  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402

MODES = ("fast", "sliced", "tiled", "offload", "sequential", "compile")
OFFLOAD_MODES = ("offload", "sequential")
PROMPT, NEGATIVE = "a photo of a red circle on a blue background", "blurry"


@dataclass(frozen=True)
class Case:
    config: str  # folder under resources/configs (diffusers layout)
    size: int
    steps: int


CASES = {
    "sd15-512-20": Case("sd15", 512, 20),
    "sd15-512-50": Case("sd15", 512, 50),
    "sdxl-1024-30": Case("sdxl-base", 1024, 30),
    "sd15-256-3": Case("sd15", 256, 3),  # the CPU target: ours <= 1.00x diffusers
}
SINGLE_FILE = "single-file"


@dataclass
class Result:
    case: str
    mode: str
    batch: int
    device: str
    ours_s_per_image: float = math.nan
    diffusers_s_per_image: float = math.nan
    ratio: float = math.nan  # ours / diffusers, wall time of the whole generation
    ours_it_s: float = math.nan
    diffusers_it_s: float = math.nan
    memory: str = ""  # what the peaks measure
    ours_peak_mb: float = math.nan
    diffusers_peak_mb: float = math.nan
    ours_start_mb: float = math.nan  # allocated when the run started (weights resident)
    diffusers_start_mb: float = math.nan
    ours_first_preview_s: float = math.nan
    diffusers_first_step_s: float = math.nan
    preview_pct_of_step: float = math.nan
    ours_syncs: int | None = None  # host syncs in steps 2..N (CUDA only)
    diffusers_syncs: int | None = None
    # CPU time of the process per image (median): steadier than wall time on a shared CPU
    ours_cpu_s_per_image: float = math.nan
    diffusers_cpu_s_per_image: float = math.nan
    ours_runs_s: list[float] = field(default_factory=list)  # each timed run, in order
    diffusers_runs_s: list[float] = field(default_factory=list)
    mode_wall_s: float = math.nan  # the timed runs with their warm-ups (compile: its cost)
    skipped: str = ""


# --- models with random weights ------------------------------------------------------------
def build_random(config: str, device: torch.device, dtype: torch.dtype):
    """The components of a shipped config folder, full size, random weights, built on `device`:
    created on the meta device (no init) and filled with uniform(+-1/sqrt(fan_in)) -- what
    PyTorch's default init draws, without its seconds per billion weights on a CPU."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sdstudio.core.paths import resources_dir

    folder = resources_dir() / "configs" / config
    index = json.loads((folder / "model_index.json").read_text())
    classes = {"CLIPTextModel": CLIPTextModel,
               "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
    gen = torch.Generator(device).manual_seed(0)
    parts: dict[str, Any] = {}
    with init_empty_weights():
        parts["unet"] = UNet2DConditionModel.from_config(
            json.loads((folder / "unet" / "config.json").read_text()))
        parts["vae"] = AutoencoderKL.from_config(
            json.loads((folder / "vae" / "config.json").read_text()))
        for name in ("text_encoder", "text_encoder_2"):
            entry = index.get(name) or [None, None]
            if entry[1]:
                parts[name] = classes[entry[1]](CLIPTextConfig.from_pretrained(str(folder / name)))
    for module in parts.values():
        _fill_random(module, device, dtype, gen)
    return parts, folder, index


def _fill_random(module: torch.nn.Module, device, dtype, gen) -> None:
    from accelerate.utils import set_module_tensor_to_device

    with torch.no_grad():
        for name, p in list(module.named_parameters()):
            t = torch.empty(p.shape, device=device, dtype=dtype)
            if p.ndim >= 2:
                bound = 1 / math.sqrt(p[0].numel())
                t.uniform_(-bound, bound, generator=gen)
            else:  # norms' scales 1, biases 0
                t.fill_(1.0 if name.endswith("weight") else 0.0)
            set_module_tensor_to_device(module, name, device, value=t, dtype=dtype)
    module.to(device)  # the buffers (position ids), built for real by init_empty_weights


def full_size_model(config: str, device: torch.device, dtype: torch.dtype):
    """A LoadedModel of full-size random components, as the loaders assemble one."""
    from transformers import CLIPTokenizer

    from sdstudio.core.models.loading import PIPELINE_FLAGS, _assemble
    from sdstudio.core.models.single_file import clip_tokenizer_folder

    parts, folder, index = build_random(config, device, dtype)
    tok = str(clip_tokenizer_folder())
    sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return _assemble(
        f"random {config}", config, CLIPTokenizer.from_pretrained(tok), parts["text_encoder"],
        parts["unet"], parts["vae"], sched, device, dtype,
        tokenizer_2=CLIPTokenizer.from_pretrained(tok, pad_token="!") if "text_encoder_2" in parts
        else None, text_encoder_2=parts.get("text_encoder_2"),
        pipeline_config={k: index[k] for k in PIPELINE_FLAGS if k in index},
    )


def small_model(config: str, device: torch.device, dtype: torch.dtype, workdir: Path):
    """The tiny random model of the case's family (CPU-sized runs and the suite's test)."""
    from sdstudio.core.models import load_model
    from sdstudio.testing.tiny_models import build_tiny_model, build_tiny_sdxl_model

    build = build_tiny_sdxl_model if config.startswith("sdxl") else build_tiny_model
    folder = build(workdir / config)  # the suite's tiny size: --small checks the plumbing
    return load_model(str(folder), device=device.type, dtype=_dtype_name(dtype))


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")


# --- measuring ----------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of what runs inside: CUDA's allocator peak, or the process's RSS sampled every
    few ms on the CPU (RssAnon on Linux: private memory, not the mapped pages of a file)."""

    def __init__(self, device: torch.device):
        self.device, self.start, self.peak = device, 0, 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def label(device: torch.device) -> str:
        return ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
                "CPU RSS peak above the run's start (NOT comparable to VRAM)")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = self.peak = torch.cuda.memory_allocated(self.device)
        else:
            self.start = self.peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self.peak = max(self.peak, _rss())

    @property
    def peak_mb(self) -> float:
        return (self.peak if self.device.type == "cuda" else self.peak - self.start) / 2**20


def _rss() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process().memory_info().rss)


class SyncCounter:
    """Host syncs between the ends of the first and the last step: set_sync_debug_mode("warn")
    is switched on by the first step's callback and off by the last one's."""

    def __init__(self, device: torch.device, steps: int):
        self.on = device.type == "cuda"
        self.steps, self.count = steps, 0
        self._caught: list[warnings.WarningMessage] = []

    def step(self, index: int) -> None:  # 1-based
        if not self.on:
            return
        if index == 1:
            torch.cuda.set_sync_debug_mode("warn")
        if index == self.steps:
            torch.cuda.set_sync_debug_mode("default")

    @contextlib.contextmanager
    def watching(self):
        if not self.on:
            yield self
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield self
            finally:
                torch.cuda.set_sync_debug_mode("default")
        self.count = sum("synchroniz" in str(w.message) for w in caught)


def worker_preview(latents: torch.Tensor, x0: torch.Tensor | None, projection) -> None:
    """What the window's worker does with a step's event before Qt gets it (make_preview:
    channels, the latent projection and the x0 estimate; Qt's image conversion left out)."""
    channel_images(latents[:1])
    preview_rgb(latents[:1], projection)
    if x0 is not None:
        preview_rgb(x0[:1], projection)


# --- the two pipelines in one mode --------------------------------------------------------
@contextlib.contextmanager
def diffusers_mode(pipe, mode: str):
    """`pipe` set up as diffusers' docs say for `mode` (cumulative, as sdstudio's ladder), and the
    shared components put back as they were afterwards."""
    unet, vae = pipe.unet, pipe.vae
    processors = unet.attn_processors
    flags = (vae.use_slicing, vae.use_tiling)
    if mode in ("sliced", "tiled", *OFFLOAD_MODES):
        pipe.enable_attention_slicing()
        vae.enable_slicing()  # what pipe.enable_vae_slicing() did (gone in diffusers 0.40)
    if mode in ("tiled", *OFFLOAD_MODES):
        vae.enable_tiling()
    if mode == "compile":
        pipe.unet = _compiled(unet)
    try:
        yield pipe
    finally:
        pipe.unet = unet
        unet.set_attn_processor(processors)
        vae.use_slicing, vae.use_tiling = flags


_COMPILED: dict[int, Any] = {}


def _compiled(unet):
    if id(unet) not in _COMPILED:  # once: the warm-up run pays the compile
        _COMPILED[id(unet)] = torch.compile(unet)
    return _COMPILED[id(unet)]


def offload_pipeline(model, mode: str):
    """diffusers' pipeline on a CPU copy of the components, offloaded: its hooks move weights,
    so it cannot share modules with the Engine (whose own offload hooks are on them)."""
    import copy

    from sdstudio.core.pipeline import fresh_scheduler

    cpu = copy.copy(model)
    for name in ("text_encoder", "text_encoder_2", "unet", "vae"):
        module = getattr(model, name)
        if module is not None:
            setattr(cpu, name, copy.deepcopy(module).to("cpu"))
    pipe = diffusers_pipeline(cpu, fresh_scheduler("Euler", model.scheduler_config))
    if mode == "offload":
        pipe.enable_model_cpu_offload(device=model.device)
    else:
        pipe.enable_sequential_cpu_offload(device=model.device)
    return pipe


def bench_mode(model, engine: Engine, pipe, name: str, case: Case, mode: str, batch: int,
               repeats: int, scheduler: str, progress: bool = False) -> Result:
    device = model.device
    res = Result(name, mode, batch, str(device), memory=PeakMemory.label(device))
    if mode in OFFLOAD_MODES and device.type == "cpu":
        res.skipped = "offload needs an accelerator (the CPU has nowhere to offload to)"
        return res
    req = GenerationRequest(
        PROMPT, negative_prompt=NEGATIVE, seed=1, steps=case.steps, guidance=7.5,
        scheduler=scheduler, width=case.size, height=case.size, batch_size=batch, model="bench",
        memory="fast" if mode == "compile" else mode, compile=mode == "compile",
    )
    theirs_pipe = offload_pipeline(model, mode) if mode in OFFLOAD_MODES else pipe
    peaks: dict[str, list[PeakMemory]] = {"ours": [], "theirs": []}
    cpu: dict[str, list[float]] = {"ours": [], "theirs": []}

    def ours(on_step=None):
        return engine.generate(req, on_step=on_step)

    def theirs(callback=None):
        with diffusers_mode(theirs_pipe, mode):  # offload: its copy, sliced and tiled too
            return run_diffusers(theirs_pipe, model, req, callback_on_step_end=callback)

    def measured(side: str, fn):
        def run():
            t, c = time.perf_counter(), time.process_time()
            with PeakMemory(device) as peak, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # random weights: NaN pixels on casts
                fn()
            cpu[side].append(time.process_time() - c)
            peaks[side].append(peak)
            if progress:
                print(f"    {mode} {side} run {len(peaks[side])}: {time.perf_counter() - t:.2f} s",
                      file=sys.stderr, flush=True)
        return run

    t0 = time.perf_counter()
    t_ours, t_theirs = interleaved([measured("ours", ours), measured("theirs", theirs)], repeats,
                                   before=gc.collect)
    res.mode_wall_s = time.perf_counter() - t0
    res.ours_runs_s, res.diffusers_runs_s = t_ours, t_theirs
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    res.ours_s_per_image, res.diffusers_s_per_image = m_ours / batch, m_theirs / batch
    res.ratio = m_ours / m_theirs
    res.ours_cpu_s_per_image = statistics.median(cpu["ours"][-repeats:]) / batch
    res.diffusers_cpu_s_per_image = statistics.median(cpu["theirs"][-repeats:]) / batch
    # the timed runs only: a first run also holds what a process allocates once (caches)
    res.ours_peak_mb = max(p.peak_mb for p in peaks["ours"][-repeats:])
    res.diffusers_peak_mb = max(p.peak_mb for p in peaks["theirs"][-repeats:])
    if device.type == "cuda":
        res.ours_start_mb = peaks["ours"][-1].start / 2**20
        res.diffusers_start_mb = peaks["theirs"][-1].start / 2**20

    # Steps and previews: ours with the worker's preview work on every step, timed apart from
    # the step; diffusers with a callback that only stamps the time.
    projection = model.latent_rgb
    stamps: list[float] = []
    previews: list[float] = []
    start = time.perf_counter()

    def our_step(ev) -> None:
        _sync(device)
        stamps.append(time.perf_counter())
        worker_preview(ev.latents, ev.denoised, projection)
        previews.append(time.perf_counter() - stamps[-1])
        if len(previews) == 1:
            res.ours_first_preview_s = time.perf_counter() - start

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours(our_step)
    n = len(stamps)
    if n >= 2:
        loop = stamps[-1] - stamps[0] - sum(previews[:-1])
        res.ours_it_s = (n - 1) / loop
        res.preview_pct_of_step = 100 * statistics.median(previews) * res.ours_it_s
    their_stamps: list[float] = []
    start = time.perf_counter()

    def their_step(_pipe, _i, _t, kwargs):
        _sync(device)
        their_stamps.append(time.perf_counter())
        return kwargs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs(their_step)
    res.diffusers_first_step_s = their_stamps[0] - start
    if len(their_stamps) >= 2:
        res.diffusers_it_s = (len(their_stamps) - 1) / (their_stamps[-1] - their_stamps[0])

    if device.type == "cuda":  # host syncs inside the loop, each side
        counter = SyncCounter(device, case.steps)
        with counter.watching():
            ours(lambda ev: counter.step(ev.step))
        res.ours_syncs = counter.count
        counter = SyncCounter(device, case.steps)
        with counter.watching():
            theirs(lambda _p, i, _t, kw: (counter.step(i + 1), kw)[1])
        res.diffusers_syncs = counter.count
    if theirs_pipe is not pipe:
        theirs_pipe.remove_all_hooks()
        del theirs_pipe
        gc.collect()
    return res


def bench_case(name: str, modes: list[str], batches: list[int], repeats: int,
               device: torch.device, dtype: torch.dtype, small: bool, scheduler: str,
               workdir: Path, progress: bool = False) -> list[Result]:
    case = CASES[name]
    t0 = time.perf_counter()
    model = (small_model(case.config, device, dtype, workdir) if small
             else full_size_model(case.config, device, dtype))
    if small:
        case = replace(case, size=model.native_size, steps=min(case.steps, 3))
    print(f"{name}: random {model.family.label} ({'tiny' if small else 'full size'}, "
          f"{_dtype_name(dtype)}) built in {time.perf_counter() - t0:.1f} s; {case.size}², "
          f"{case.steps} steps, {scheduler}, CFG 7.5, torch threads {torch.get_num_threads()}",
          flush=True)
    from sdstudio.core.pipeline import fresh_scheduler

    engine = Engine(loader=lambda *_: model)
    pipe = diffusers_pipeline(model, fresh_scheduler(scheduler, model.scheduler_config))
    out = []
    for mode in sorted(modes, key=MODES.index):  # offload last: their hooks stay on the modules
        for batch in batches:
            res = bench_mode(model, engine, pipe, name, case, mode, batch, repeats, scheduler,
                             progress)
            print_result(res)
            out.append(res)
    engine.unload()
    del engine, pipe  # and the model with them (the loader held it)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def print_result(r: Result) -> None:
    head = f"  {r.case} {r.mode:<10} batch {r.batch}:"
    if r.skipped:
        print(f"{head} skipped ({r.skipped})", flush=True)
        return
    mem = "VRAM peak" if r.device.startswith("cuda") else "RSS delta (not VRAM)"
    lines = [
        f"{head} ours {r.ours_s_per_image:.3f} s/image, diffusers {r.diffusers_s_per_image:.3f}"
        f" s/image, ratio ours/diffusers {r.ratio:.3f}",
        f"      process CPU time ours {r.ours_cpu_s_per_image:.3f} s/image, diffusers "
        f"{r.diffusers_cpu_s_per_image:.3f} s/image, ratio "
        f"{r.ours_cpu_s_per_image / r.diffusers_cpu_s_per_image:.3f}",
        f"      it/s ours {r.ours_it_s:.2f}, diffusers {r.diffusers_it_s:.2f}; {mem} ours "
        f"{r.ours_peak_mb:.0f} MB, diffusers {r.diffusers_peak_mb:.0f} MB",
        f"      first preview {r.ours_first_preview_s:.3f} s (diffusers' first step "
        f"{r.diffusers_first_step_s:.3f} s); preview+channels {r.preview_pct_of_step:.2f}% of a step",
    ]
    if r.ours_syncs is not None:
        lines.append(f"      host syncs in steps 2..N: ours {r.ours_syncs}, diffusers "
                     f"{r.diffusers_syncs}; allocated at start ours {r.ours_start_mb:.0f} MB, "
                     f"diffusers {r.diffusers_start_mb:.0f} MB")
    print("\n".join(lines), flush=True)


# --- choosing a single file to the first step -----------------------------------------------
def bench_single_file(device: torch.device, small: bool, workdir: Path) -> dict[str, Any]:
    """Write an SD 1.5 single file (full size fp32, or tiny), then time Engine.load + the first
    step at 256²: page cache dropped and not hashed yet (a file just chosen), then warm with
    the background hash running, then warm and hashed."""
    from types import SimpleNamespace

    from safetensors.torch import save_file

    from sdstudio.core.models import hashing
    from sdstudio.testing.single_files import pipeline_to_original

    os.environ["SDSTUDIO_HOME"] = str(workdir / "home")  # the hash cache: never the user's
    t0 = time.perf_counter()
    config = None  # the shipped config folder, as for any file a user chooses
    if small:
        model = small_model("sd15", torch.device("cpu"), torch.float32, workdir)
        parts = SimpleNamespace(unet=model.unet, vae=model.vae, text_encoder=model.text_encoder)
        size, config = model.native_size, model.source
    else:
        built, _, _ = build_random("sd15", torch.device("cpu"), torch.float32)
        parts, size = SimpleNamespace(**built), 256
    path = workdir / "random-sd15.safetensors"
    save_file({k: v.contiguous() for k, v in pipeline_to_original(parts, "sd1").items()},
              str(path))
    del parts
    gc.collect()
    gb = path.stat().st_size / 1e9
    print(f"single-file: wrote {gb:.2f} GB SD 1.5 ({'tiny' if small else 'full size, fp32'}) in "
          f"{time.perf_counter() - t0:.0f} s; first step at {size}², torch threads "
          f"{torch.get_num_threads()}", flush=True)
    out: dict[str, Any] = {"case": SINGLE_FILE, "file_gb": round(gb, 3), "size": size, "runs": []}
    try:
        for label, cold, hashed in (("cold-ish: page cache dropped, not hashed", True, False),
                                    ("warm, hashing in the background", False, False),
                                    ("warm, hashed", False, True)):
            if cold:
                _drop_page_cache(path)
            if not hashed:
                (hashing.cache_dir() / "model_hashes.json").unlink(missing_ok=True)
            run = _first_step(path, device, size, config)
            run["label"] = label
            print(f"  {label}: load {run['load_s']:.2f} s + first step {run['step_s']:.2f} s = "
                  f"{run['total_s']:.2f} s to the first step; RSS peak delta "
                  f"{run['rss_peak_mb']:.0f} MB; hash still running at the first step: "
                  f"{run['hash_running']}", flush=True)
            out["runs"].append(run)
            for future in list(hashing._RUNNING.values()):  # the next run starts without it
                future.result()
    finally:
        path.unlink(missing_ok=True)
    return out


def _first_step(path: Path, device: torch.device, size: int, config: str | None) -> dict[str, Any]:
    from sdstudio.core.models import hashing, load_model

    gc.collect()
    reached: list[float] = []
    running: list[bool] = []
    with PeakMemory(torch.device("cpu")) as peak:
        t0 = time.perf_counter()
        engine = Engine(loader=lambda m, d, t: load_model(m, d, t, config=config))
        engine.load(str(path), device.type, "auto")
        t_load = time.perf_counter() - t0
        req = GenerationRequest(PROMPT, negative_prompt=NEGATIVE, seed=1, steps=3, width=size,
                                height=size, model=str(path), device=device.type)

        def on_step(_ev) -> None:
            _sync(device)
            reached.append(time.perf_counter() - t0)
            running.append(bool(hashing._RUNNING))

        with contextlib.suppress(GenerationCancelled):
            engine.generate(req, on_step=on_step, should_cancel=lambda: bool(reached))
    engine.unload()
    return {"load_s": t_load, "step_s": reached[0] - t_load, "total_s": reached[0],
            "rss_peak_mb": peak.peak_mb, "hash_running": running[0]}


def _drop_page_cache(path: Path) -> None:
    """Evict the file's pages from the OS cache (POSIX), so it is read from the disk again."""
    if hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --- the command ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cases", nargs="+", choices=[*CASES, SINGLE_FILE])
    p.add_argument("--modes", nargs="+", choices=MODES)
    p.add_argument("--batches", nargs="+", type=int)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scheduler", default="Euler")
    p.add_argument("--small", action="store_true", help="tiny random models: a CPU run in < 1 min")
    p.add_argument("--threads", type=int, help="torch threads (default: sdstudio's own choice)")
    p.add_argument("--progress", action="store_true", help="each run's time on stderr")
    p.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    p.add_argument("--dir", help="where the single file is written (default: a temporary folder)")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.cases = args.cases or (["sd15-512-20", "sd15-512-50", "sdxl-1024-30"] if cuda
                                else ["sd15-256-3"])
    args.modes = args.modes or (list(MODES) if cuda else ["fast"])
    args.batches = args.batches or ([1, 4] if cuda else [1])
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from sdstudio.core import threads

    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        threads.configure()
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    report: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "small": args.small,
                              "results": [], "single_file": None}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name in args.cases:
            if name == SINGLE_FILE:
                report["single_file"] = bench_single_file(device, args.small, Path(tmp))
                continue
            for r in bench_case(name, args.modes, args.batches, args.repeats, device, dtype,
                                args.small, args.scheduler, Path(tmp), args.progress):
                report["results"].append(asdict(r))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
