"""The CUDA fast path, the dtype rules, no host synchronisation per step, and compiled mode.

There is no GPU here: what is CUDA-only is tested through the functions that decide it, and
compiled mode runs torch.compile (inductor, C++) on the CPU with the tiniest model. That one
test compiles for real and takes minutes on two cores (the UNet and VAE decoder graphs,
compiled from scratch in the test's own cache folder); the others replace torch.compile.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from sdstudio.core import fastpath, pipeline
from sdstudio.core.engine import Engine
from sdstudio.core.errors import UserError
from sdstudio.core.events import EventKind
from sdstudio.core.fastpath import choose_dtype, stored_dtype
from sdstudio.core.models import load_model, resolve_device
from sdstudio.core.request import GenerationRequest
from sdstudio.core.schedulers import SAMPLERS
from sdstudio.testing.host_reads import HostReads

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MAX_DIFF = 1  # 1/255
F16, BF16, F32 = torch.float16, torch.bfloat16, torch.float32


def _pixels(result) -> list[np.ndarray]:
    return [np.asarray(ev.image, dtype=np.int16) for ev in result.images]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.std() > 2, "degenerate image: the comparison would mean nothing"
        assert np.abs(x - y).max() <= MAX_DIFF


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), device="cpu")


def _request(model_dir, **kw) -> GenerationRequest:
    base = dict(model=str(model_dir), device="cpu", seed=5, steps=3, width=32, height=32,
                guidance=5.0)
    return GenerationRequest("a red cat on a blue background", **{**base, **kw})


# --- dtype ---------------------------------------------------------------------------------
@pytest.mark.parametrize("asked, device, stored, bf16_ok, expected", [
    ("auto", "cuda", BF16, True, BF16),  # bf16 weights on a GPU that has bf16
    ("auto", "cuda", BF16, False, F16),  # ... on one that has not
    ("auto", "cuda", F16, True, F16),
    ("auto", "cuda", F32, True, F16),
    ("auto", "cuda", None, True, F16),  # unknown (a pickle): fp16
    ("auto", "cpu", BF16, False, F32),
    ("auto", "mps", BF16, False, F32),
    ("bf16", "cpu", None, False, BF16),
    ("bf16", "cuda", None, True, BF16),
    ("fp16", "cuda", BF16, True, F16),
    ("fp32", "cuda", BF16, True, F32),
    ("fp16", "mps", None, False, F16),
])
def test_dtype_rules(asked, device, stored, bf16_ok, expected):
    assert choose_dtype(asked, device, stored, bf16_ok) == expected


@pytest.mark.parametrize("asked, device, bf16_ok, message", [
    ("fp16", "cpu", False, "fp16 needs a GPU"),
    ("bf16", "cuda", False, "This GPU has no bf16"),
    ("bf16", "mps", False, "not supported on MPS"),
    ("fp64", "cpu", False, "Dtype must be auto, fp32, fp16 or bf16"),
])
def test_dtype_refusals_are_one_sentence(asked, device, bf16_ok, message):
    with pytest.raises(UserError, match=message):
        choose_dtype(asked, device, None, bf16_ok)


def test_resolve_device_reads_the_stored_dtype_only_for_auto_on_cuda(monkeypatch):
    def never():
        raise AssertionError("the weights' dtype was read although nothing depends on it")

    assert resolve_device("cpu", "auto", stored=never) == (torch.device("cpu"), F32)
    assert resolve_device("cpu", "bf16", stored=never) == (torch.device("cpu"), BF16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_device("cuda", "auto", stored=lambda: BF16) == (torch.device("cuda"), BF16)
    assert resolve_device("auto", "auto", stored=lambda: F16) == (torch.device("cuda"), F16)
    assert resolve_device("cuda", "fp16", stored=never) == (torch.device("cuda"), F16)


def _save_safetensors(path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def test_stored_dtype_from_headers(tiny_model_dir, tmp_path):
    assert stored_dtype(tiny_model_dir) == F32
    # a folder whose UNet is stored in bf16 (most tensors; a few fp32 ones do not change it)
    folder = tmp_path / "bf16"
    (folder / "unet").mkdir(parents=True)
    _save_safetensors(folder / "unet" / "diffusion_pytorch_model.safetensors", {
        "a": torch.zeros(2, dtype=BF16), "b": torch.zeros(2, dtype=BF16),
        "c": torch.zeros(2, dtype=F32),
    })
    assert stored_dtype(folder) == BF16
    # a single file: only the UNet's keys count (the VAE and text encoder may differ)
    single = tmp_path / "model.safetensors"
    _save_safetensors(single, {
        "model.diffusion_model.x": torch.zeros(2, dtype=F16),
        "first_stage_model.a": torch.zeros(2, dtype=F32),
        "first_stage_model.b": torch.zeros(2, dtype=F32),
    })
    assert stored_dtype(single) == F16
    # what cannot be told is None, never an error
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10) + b"not json!!")
    assert stored_dtype(bad) is None
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    assert stored_dtype(huge) is None
    assert stored_dtype(tmp_path / "model.ckpt") is None
    assert stored_dtype(tmp_path / "missing") is None


def test_stored_dtype_of_a_sharded_unet(tmp_path):
    unet = tmp_path / "m" / "unet"
    unet.mkdir(parents=True)
    _save_safetensors(unet / "diffusion_pytorch_model-00001-of-00002.safetensors",
                      {"a": torch.zeros(2, dtype=BF16)})
    index = {"weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors"}}
    (unet / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    assert stored_dtype(tmp_path / "m") == BF16


def test_bf16_on_the_cpu_equals_diffusers(tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    m = load_model(str(tiny_model_dir), device="cpu", dtype="bf16")
    assert m.dtype == BF16 and m.unet.dtype == BF16 and m.vae.dtype == BF16
    req = _request(tiny_model_dir, dtype="bf16")
    ours = _pixels(pipeline.StableDiffusion(m).generate(req))
    pipe = StableDiffusionPipeline(
        vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=m.unet,
        scheduler=pipeline.fresh_scheduler(req.scheduler, m.scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(req.prompt, num_inference_steps=req.steps, guidance_scale=req.guidance,
               generator=[torch.Generator("cpu").manual_seed(req.seed)], width=32, height=32,
               output_type="np").images
    _same(ours, list(np.round(out * 255).astype(np.int16)))


def test_a_bf16_vae_that_gives_nan_is_switched_to_fp32(tiny_model_dir, monkeypatch):
    m = load_model(str(tiny_model_dir), device="cpu", dtype="bf16")
    real = type(m.vae).decode

    def decode(self, z, *a, **k):
        out = real(self, z, *a, **k)
        return (out[0] * float("nan"),) if self.dtype == BF16 else out

    monkeypatch.setattr(type(m.vae), "decode", decode)
    result = pipeline.StableDiffusion(m).generate(_request(tiny_model_dir, dtype="bf16"))
    assert "The VAE gave NaN in bf16 and was switched to fp32." in result.notices
    assert m.vae.dtype == F32 and np.asarray(result.images[0].image).std() > 2


# --- the CUDA fast path ----------------------------------------------------------------------
def test_fast_path_is_for_cuda_only(tiny_model_dir, monkeypatch):
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    m = load_model(str(tiny_model_dir), device="cpu")
    conv = m.unet.conv_in.weight
    assert all(type(p) is AttnProcessor2_0 for p in m.unet.attn_processors.values())
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    m.unet.set_attn_processor(AttnProcessor())  # as a model could come
    fastpath.prepare_for_device(m.unet, m.vae, torch.device("cpu"))
    assert all(type(p) is AttnProcessor for p in m.unet.attn_processors.values())
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    noise = []
    monkeypatch.setattr(fastpath, "pinned_sampler_noise", lambda: noise.append(1))
    fastpath.prepare_for_device(m.unet, m.vae, torch.device("cuda"))  # the modules stay here
    assert noise == [1]
    assert all(type(p) is AttnProcessor2_0 for p in m.unet.attn_processors.values())
    assert all(type(p) is AttnProcessor2_0 for p in m.vae.attn_processors.values())
    assert m.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert m.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.backends.cudnn.benchmark is True


# --- no host synchronisation per step --------------------------------------------------------
def _probe(monkeypatch, m, req, steps: int) -> HostReads:
    probe = HostReads()
    probe.mark_model(m)
    real = pipeline.fresh_scheduler

    def fresh(name, config):
        scheduler = real(name, config)
        set_timesteps = scheduler.set_timesteps

        def marking(n, *a, **k):
            set_timesteps(n, *a, **k)
            probe.mark_scheduler(scheduler, n)

        scheduler.set_timesteps = marking
        return scheduler

    monkeypatch.setattr(pipeline, "fresh_scheduler", fresh)
    seen = []

    def on_step(ev):
        seen.append(ev.step)
        probe.step_done()

    with probe, probe.python_reads():
        pipeline.StableDiffusion(m).generate(req, on_step=on_step)
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= steps
    return probe


def test_the_probe_sees_a_host_read():
    """The control: the reads the loop must not do are the ones the probe records."""
    probe = HostReads()
    t = torch.tensor([999.0, 500.0])
    table = torch.arange(1000.0)
    probe.mark(t)
    with probe, probe.python_reads():
        probe.step_done()
        float(t[0]), bool(t[1] > 3), t.tolist(), table[t.long()], t.to("cpu", copy=True)
        t * 2 + table[:2]  # arithmetic stays on the device: not a read
    assert [r.op for r in probe.per_step(2)] == [
        "_local_scalar_dense", "_local_scalar_dense", "tolist", "index", "_to_copy"]


# DDPM's `step` finds the previous timestep by searching its (device) timesteps every step:
# diffusers' own, and a 1000-step sampler nobody runs for speed.
SEARCHES_EACH_STEP = {"DDPM"}


@pytest.mark.parametrize("sampler", [s.name for s in SAMPLERS])
def test_no_host_sync_per_step(monkeypatch, tiny, tiny_model_dir, sampler):
    req = _request(tiny_model_dir, scheduler=sampler, steps=4)
    probe = _probe(monkeypatch, tiny, req, 4)
    per_step = probe.per_step(probe.phase)
    if sampler in SEARCHES_EACH_STEP:
        assert per_step and all("scheduling_ddpm.py" in r.where for r in per_step)
    else:
        assert per_step == []


@pytest.mark.parametrize("sampler", ["Euler a", "DDIM", "DPM++ 2M"])
def test_no_host_sync_per_step_img2img_and_inpaint(monkeypatch, tiny, tiny_model_dir, sampler,
                                                   tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    img2img = _request(tiny_model_dir, scheduler=sampler, steps=6, strength=0.7,
                       init_image=str(tmp_path / "i.png"))
    assert _probe(monkeypatch, tiny, img2img, 4).per_step(4) == []
    inpaint = replace(img2img, mask=str(tmp_path / "m.png"))
    assert _probe(monkeypatch, tiny, inpaint, 4).per_step(4) == []


def test_a_dropped_preview_touches_no_tensor(qtbot):
    """The worker converts latents to images only when a preview is due: a dropped one reads
    nothing (on a GPU, that read would be a copy to the host)."""
    from sdstudio.core.events import StepEvent
    from sdstudio.ui.worker import GenerationWorker

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"a dropped preview read latents.{name}")

        def __getitem__(self, key):
            raise AssertionError("a dropped preview sliced the latents")

    worker = GenerationWorker(preview_interval=3600)
    worker._last_preview = 1e18  # a preview was just sent
    ev = StepEvent(2, 10, 500.0, Untouchable(), 0.1, Untouchable())  # type: ignore[arg-type]
    assert worker.make_preview(ev) is None


# --- compiled mode ---------------------------------------------------------------------------
def _jobs(engine: Engine, *requests: GenerationRequest, cancel_after: int | None = None):
    """Each job's events (kind, payload), run through run_job as the worker runs them."""
    out = []
    for job_id, req in enumerate(requests, 1):
        events = []
        engine.run_job(job_id, req, lambda ev, events=events: events.append(ev),
                       should_cancel=lambda events=events: cancel_after is not None and sum(
                           e.kind is EventKind.PROGRESS for e in events) >= cancel_after)
        out.append(events)
    return out


def _warmups(events) -> list[str]:
    return [e.payload for e in events
            if e.kind is EventKind.NOTICE and e.payload.startswith("Compiling the UNet for")]


@pytest.fixture
def fake_compile(monkeypatch):
    """torch.compile replaced by a counted identity: the compiled path without the compiler."""
    calls = []

    def compile(fn, **kwargs):
        calls.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", compile)
    return calls


def test_warmup_notice_once_per_new_shape(tiny_model_dir, fake_compile):
    engine = Engine()
    req = _request(tiny_model_dir, compile=True)
    first, again, wide, batch, eager = _jobs(
        engine, req, req, replace(req, width=48), replace(req, batch_size=2),
        replace(req, compile=False))
    assert _warmups(first) == ["Compiling the UNet for 4×4 latents — the first run at a new size "
                               "takes a while; later runs reuse it."]
    kinds = [e.kind for e in first]
    assert kinds.index(EventKind.NOTICE, kinds.index(EventKind.LOADED)) < kinds.index(
        EventKind.PROGRESS)  # before the job's first step
    assert _warmups(again) == [] and _warmups(eager) == []
    assert _warmups(wide) == ["Compiling the UNet for 6×4 latents — the first run at a new size "
                              "takes a while; later runs reuse it."]
    assert len(_warmups(batch)) == 1
    assert all(j[-1].kind is EventKind.FINISHED for j in (first, again, wide, batch, eager))
    assert [c["mode"] for c in fake_compile] == ["default", "default"]  # UNet and VAE decoder, once
    assert all(c["dynamic"] is False for c in fake_compile)
    model = engine.model
    assert model is not None and model.unet._compiled_call_impl is None  # eager again after
    assert model.vae.decoder._compiled_call_impl is None


def test_compiled_jobs_cancel_between_steps(tiny_model_dir, fake_compile, monkeypatch):
    import sdstudio.core.engine as engine_module

    def no_hooks(*_a, **_k):
        raise AssertionError("block hooks were put on a compiled model")

    monkeypatch.setattr(engine_module, "interruptible", no_hooks)
    (events,) = _jobs(Engine(), _request(tiny_model_dir, compile=True, steps=5), cancel_after=2)
    assert events[-1].kind is EventKind.CANCELLED
    assert sum(e.kind is EventKind.PROGRESS for e in events) == 2


def test_compile_failure_falls_back_to_eager(tiny_model_dir, monkeypatch):
    attempts = []

    def broken_compile(fn, **kwargs):
        def run(*a, **k):
            attempts.append(1)
            raise RuntimeError("Compiler: cc not found\nlong traceback follows")
        return run

    engine = Engine()
    req = _request(tiny_model_dir)
    eager = engine.generate(req)
    monkeypatch.setattr(torch, "compile", broken_compile)
    first, second = _jobs(engine, replace(req, compile=True), replace(req, compile=True))
    failed = [e.payload for e in first if e.kind is EventKind.NOTICE and "failed" in e.payload]
    assert failed == ["Compiling the UNet failed (Compiler: cc not found), so the model runs "
                      "uncompiled."]
    assert first[-1].kind is EventKind.FINISHED and second[-1].kind is EventKind.FINISHED
    assert not [e for e in second if e.kind is EventKind.NOTICE and "ompil" in e.payload]
    assert attempts == [1]  # tried once; eager from then on
    images = [e.payload for e in first if e.kind is EventKind.IMAGE]
    _same(_pixels(eager), [np.asarray(ev.image, dtype=np.int16) for ev in images])


def test_a_model_error_under_compile_is_not_taken_for_a_compile_failure(tiny_model_dir,
                                                                        monkeypatch):
    """A call that fails eager too raises its own error; compile stays on for the model."""
    engine = Engine()
    engine.load(str(tiny_model_dir), "cpu")
    loaded = engine.model
    compiler = fastpath.Compiler(loaded)
    monkeypatch.setattr(torch, "compile", lambda fn, **k: fn)
    with compiler.active(lambda _t: None, []), pytest.raises(RuntimeError):
        loaded.unet(torch.zeros(1, 3, 4, 4), torch.tensor(1.0), encoder_hidden_states=None)
    assert not compiler.failed


@pytest.mark.timeout(1200)
def test_compiled_equals_eager_and_the_cache_is_sdstudios(tiny_model_dir, monkeypatch):
    """torch.compile for real (inductor on the CPU): the same pixels as eager, in the graphs
    it made once; its caches in sdstudio's cache folder."""
    from torch._dynamo.utils import counters

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    engine = Engine()
    req = _request(tiny_model_dir, batch_size=2)
    eager = engine.generate(req)
    graphs = counters["stats"]["unique_graphs"]
    compiled = engine.generate(replace(req, compile=True))
    made = counters["stats"]["unique_graphs"]
    assert made > graphs  # it really compiled
    assert compiled.notices[0].startswith("Compiling the UNet for 4×4 latents")
    _same(_pixels(compiled), _pixels(eager))
    again = engine.generate(replace(req, compile=True, seed=9))
    assert not [n for n in again.notices if "ompil" in n]
    assert counters["stats"]["unique_graphs"] == made  # reused, not compiled again
    _same(_pixels(again), _pixels(engine.generate(replace(req, seed=9))))
    cache = fastpath.compile_cache_dir()
    assert str(cache) == __import__("os").environ["TORCHINDUCTOR_CACHE_DIR"]
    assert any(p.is_file() for p in cache.rglob("*")), "inductor wrote nothing to the cache"


def test_an_offloaded_model_runs_eager(tiny_model_dir, fake_compile):
    engine = Engine()
    engine.load(str(tiny_model_dir), "cpu")
    assert engine.model is not None
    engine.model.unet._hf_hook = object()  # as accelerate's CPU offload leaves it
    try:
        (events,) = _jobs(engine, _request(tiny_model_dir, compile=True))
    finally:
        del engine.model.unet._hf_hook
    notices = [e.payload for e in events if e.kind is EventKind.NOTICE]
    assert "Compile is off for this job: the model is offloaded to the CPU." in notices
    assert _warmups(events) == [] and fake_compile == [] and events[-1].kind is EventKind.FINISHED


def test_sampler_noise_draws_the_same_numbers(monkeypatch):
    import sys

    import diffusers
    from diffusers.utils import torch_utils

    module = sys.modules[diffusers.EulerAncestralDiscreteScheduler.__module__]
    monkeypatch.setattr(module, "randn_tensor", torch_utils.randn_tensor)
    fastpath.pinned_sampler_noise()
    assert module.randn_tensor is fastpath.randn_pinned
    gens = [torch.Generator("cpu").manual_seed(s) for s in (1, 2)]
    ours = fastpath.randn_pinned((2, 4, 3, 3), generator=gens, device=torch.device("cpu"))
    gens = [torch.Generator("cpu").manual_seed(s) for s in (1, 2)]
    assert torch.equal(ours, torch_utils.randn_tensor((2, 4, 3, 3), generator=gens,
                                                      device=torch.device("cpu")))


def test_sync_check_forwards_steps_and_restores(monkeypatch):
    modes = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    from sdstudio.core.events import StepEvent

    seen = []
    with fastpath.SyncCheck("error", on_step=lambda ev: seen.append(ev.step)) as check:
        for step in (1, 2, 3):
            check(StepEvent(step, 3, 0.0, torch.zeros(1), 0.0))
    assert seen == [1, 2, 3]
    # off around each callback, on between steps, off from the last step on
    assert modes == [0, "error", 0, "error", 0, 0]


def test_the_failure_notice_names_the_innermost_error():
    try:
        try:
            raise FileNotFoundError("cc: not found")
        except FileNotFoundError as inner:
            raise RuntimeError("backend='inductor' raised:\n") from inner
    except RuntimeError as exc:
        assert fastpath._reason(exc) == "cc: not found"
