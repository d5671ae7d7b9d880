"""The memory ladder: each rung gives diffusers' pixels with the same options, going back up gives
the fast path's pixels exactly, an out-of-memory job falls a rung and finishes (with a notice and
the rung in its record), a job no rung can run fails in one sentence, and unloading lets the
model's modules die (offload hooks and adapter caches included)."""

from __future__ import annotations

import gc
import shutil
import weakref

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from sdstudio.core import memory
from sdstudio.core.engine import Engine
from sdstudio.core.errors import describe
from sdstudio.core.events import EventKind
from sdstudio.core.models import load_model
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler
from sdstudio.core.png.io import read_png, write_png
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

SIZE = 64  # two 32-pixel VAE tiles a side: tiling really tiles
TILE = 32


def _small_tiles(vae) -> None:
    """Tiles of TILE pixels (4 latents), so a SIZE image is decoded in overlapping tiles."""
    vae.tile_sample_min_size = TILE
    vae.tile_latent_min_size = TILE // 8


def _req(model, **kw) -> GenerationRequest:
    kw = {"steps": 2, "width": SIZE, "height": SIZE, "seed": 7, **kw}
    return GenerationRequest("a red cat on a blue background", model=str(model), device="cpu",
                             dtype="fp32", **kw)


def _load(path):
    m = load_model(str(path), device="cpu")
    _small_tiles(m.vae)
    return m


def _ours(m, req) -> list[np.ndarray]:
    return [np.asarray(ev.image, dtype=np.int16) for ev in StableDiffusion(m).generate(req).images]


def _diffusers(m, req, rung: str) -> list[np.ndarray]:
    """diffusers' own pipeline on a model of its own, with the options `rung` stands for."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    parts = dict(vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=m.unet,
                 scheduler=fresh_scheduler(req.scheduler, m.scheduler_config))
    if m.text_encoder_2 is not None:
        pipe = StableDiffusionXLPipeline(
            **parts, text_encoder_2=m.text_encoder_2, tokenizer_2=m.tokenizer_2,
            add_watermarker=False,
            force_zeros_for_empty_prompt=m.pipeline_config.get("force_zeros_for_empty_prompt",
                                                               True))
    else:
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if memory.at_least(rung, "sliced"):
        pipe.enable_attention_slicing()
        pipe.vae.enable_slicing()
    if memory.at_least(rung, "tiled"):
        pipe.vae.enable_tiling()
    if rung == "offload":
        pipe.enable_model_cpu_offload(device="cpu")
    # (diffusers' enable_sequential_cpu_offload cannot run on the CPU: it offloads to "cpu:0",
    # which accelerate then fails to move parameters to; it changes no arithmetic anyway, so
    # our sequential rung is held to diffusers' tiled pipeline)
    gens = [torch.Generator("cpu").manual_seed(s) for s in req.seeds()]
    out = pipe(req.prompt, num_inference_steps=req.steps, guidance_scale=req.guidance,
               generator=gens, num_images_per_prompt=req.batch_size, output_type="np",
               height=req.height, width=req.width).images
    pipe.remove_all_hooks()
    return list(np.round(out * 255).astype(np.int16))


def _hooked(m) -> list[str]:
    return [name for mod in memory.modules(m) for name, sub in mod.named_modules()
            if hasattr(sub, "_hf_hook")]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return _load(tiny_model_dir)


@pytest.mark.parametrize("rung", ["sliced", "tiled", "offload", "sequential"])
def test_each_rung_gives_diffusers_pixels_with_the_same_options(model, tiny_model_dir, rung):
    req = _req(tiny_model_dir)
    memory.apply_rung(model, rung, execution_device="cpu")  # offload: accelerate allows the CPU
    try:
        ours = _ours(model, req)
    finally:
        memory.after_job(model)
        memory.apply_rung(model, "fast")
    theirs = _diffusers(_load(tiny_model_dir), req, rung)
    for a, b in zip(ours, theirs, strict=True):
        assert a.std() > 2 and np.abs(a - b).max() <= 1


@pytest.mark.parametrize("rung", ["offload", "sequential"])
def test_sdxl_offload_rungs_give_diffusers_pixels(tiny_sdxl_model_dir, rung):
    """Two text encoders in the offload chain, and SDXL's added conditioning through the hooks."""
    m = _load(tiny_sdxl_model_dir)
    req = _req(tiny_sdxl_model_dir, width=32, height=32)
    memory.apply_rung(m, rung, execution_device="cpu")
    assert memory.execution_device(m.text_encoder_2) == torch.device("cpu")
    ours = _ours(m, req)
    theirs = _diffusers(_load(tiny_sdxl_model_dir), req, rung)
    for a, b in zip(ours, theirs, strict=True):
        assert a.std() > 2 and np.abs(a - b).max() <= 1


def test_inpainting_under_sequential_offload_is_the_tiled_rung_s_pixels(model, tiny_model_dir,
                                                                         tmp_path):
    """The VAE encodes (init image, masked image) where the hooks run it, not on "meta"."""
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[16:48, 8:40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    req = _req(tiny_model_dir, init_image=str(tmp_path / "i.png"), mask=str(tmp_path / "m.png"),
               strength=0.7)
    memory.apply_rung(model, "tiled")
    tiled = _ours(model, req)
    memory.apply_rung(model, "sequential", execution_device="cpu")
    try:
        sequential = _ours(model, req)
    finally:
        memory.apply_rung(model, "fast")
    for a, b in zip(sequential, tiled, strict=True):
        assert a.std() > 2 and np.array_equal(a, b)


def test_tiling_really_tiles_and_going_back_up_restores_the_fast_path_exactly(model,
                                                                              tiny_model_dir):
    req = _req(tiny_model_dir)
    fast = _ours(model, req)
    memory.apply_rung(model, "sequential", execution_device="cpu")
    assert _hooked(model) and model.unet.conv_in.weight.device.type == "meta"
    memory.apply_rung(model, "tiled")  # up two rungs: the hooks go, the weights come back
    assert not _hooked(model) and model.unet.conv_in.weight.device.type == "cpu"
    tiled = _ours(model, req)
    assert max(np.abs(a - b).max() for a, b in zip(tiled, fast, strict=True)) > 1
    memory.apply_rung(model, "fast")
    memory.apply_rung(model, "fast")  # idempotent
    processors = model.unet.attn_processors.values()
    assert all(isinstance(p, AttnProcessor2_0) for p in processors)
    assert not model.vae.use_tiling and not model.vae.use_slicing
    for a, b in zip(_ours(model, req), fast, strict=True):
        assert np.array_equal(a, b)


def test_a_climb_that_runs_out_of_memory_is_redone_in_full_by_the_next_call(model):
    memory.apply_rung(model, "offload", execution_device="cpu")

    def out_of_memory(*_args, **_kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(torch.OutOfMemoryError):
        patch.setattr(type(model.vae), "to", out_of_memory)  # the VAE's move back fails
        memory.apply_rung(model, "fast")
    assert not _hooked(model)
    memory.apply_rung(model, "offload", execution_device="cpu")  # not "already there"
    assert _hooked(model)
    memory.apply_rung(model, "fast")
    assert not _hooked(model)


def test_the_cpu_ladder_ends_at_tiling():
    assert memory.ladder("cpu") == ("fast", "sliced", "tiled")
    assert memory.ladder(torch.device("cuda"))[-1] == "sequential"
    assert memory.next_rung("tiled", "cpu") is None and memory.clamp("offload", "cpu") == "tiled"
    assert memory.next_rung("tiled", "cuda") == "offload"


# --- the engine: falling back ----------------------------------------------------------------
class _OutOfMemoryUnlessLifted:
    """Raises torch.OutOfMemoryError where the real rung's saving is missing: an attention layer
    on its unsliced processor, or a VAE decode of the whole image in one go (not tiled)."""

    def __init__(self, loaded, attention: bool = True, vae: bool = True,
                 always: bool = False) -> None:
        self.handles = []
        self.raised = 0
        unet, decoder = loaded.unet, loaded.vae.decoder
        attn = next(m for m in unet.modules() if type(m).__name__ == "Attention")
        tile_latents = loaded.vae.tile_latent_min_size
        if attention or always:
            self.handles.append(attn.register_forward_pre_hook(
                lambda mod, _a: self._raise(always or isinstance(mod.processor, AttnProcessor2_0))))
        if vae:
            self.handles.append(decoder.register_forward_pre_hook(
                lambda _m, args: self._raise(args[0].shape[-1] > tile_latents)))

    def _raise(self, condition: bool) -> None:
        if condition:
            self.raised += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@pytest.fixture
def engine(tiny_model_dir):
    e = Engine()
    e.load(str(tiny_model_dir), "cpu", "fp32")
    _small_tiles(e.model.vae)
    return e


def _job(engine, req):
    events = []
    engine.run_job(1, req, events.append)
    by_kind: dict = {}
    for ev in events:
        by_kind.setdefault(ev.kind, []).append(ev.payload)
    return by_kind


def test_an_out_of_memory_job_falls_back_a_rung_at_a_time_and_finishes(engine, tiny_model_dir,
                                                                       tmp_path):
    oom = _OutOfMemoryUnlessLifted(engine.model)
    try:
        got = _job(engine, _req(tiny_model_dir, batch_size=2))
    finally:
        oom.remove()
    assert EventKind.FINISHED in got, got.get(EventKind.FAILED)
    assert oom.raised == 2  # the attention at "fast", the whole-image decode at "sliced"
    assert got[EventKind.NOTICE] == [
        f"Out of memory at {SIZE}×{SIZE} with the fast path: retried with attention slicing "
        "(slower, uses less memory).",
        f"Out of memory at {SIZE}×{SIZE} with attention slicing: retried with VAE tiling "
        "(slower, uses less memory).",
    ]
    images = got[EventKind.IMAGE]
    assert [ev.index for ev in images] == [0, 1]
    assert all(ev.record["memory"] == "tiled" for ev in images)
    # the rung reaches the PNG and comes back
    ev = images[0]
    path = write_png(tmp_path / "a.png", ev.image, ev.request, ev.seed, ev.record)
    assert read_png(path).record["memory"] == "tiled"
    # the engine has learned: the next job of this size starts at "tiled", without a notice
    again = _job(engine, _req(tiny_model_dir, batch_size=2))
    assert EventKind.FINISHED in again and EventKind.NOTICE not in again
    assert again[EventKind.IMAGE][0].record["memory"] == "tiled"
    # a rung asked for explicitly is used as asked, and "fast" leaves no trace in the record
    fast = _job(engine, _req(tiny_model_dir, memory="fast"))
    assert "memory" not in fast[EventKind.IMAGE][0].record


def test_an_image_shown_before_a_retry_is_not_shown_again(engine, tiny_model_dir):
    calls = {"n": 0}

    def second_decode_fails(_m, _args):
        calls["n"] += 1
        if calls["n"] == 2:  # the second image of the first try
            raise torch.OutOfMemoryError("out of memory")

    handle = engine.model.vae.decoder.register_forward_pre_hook(second_decode_fails)
    try:
        got = _job(engine, _req(tiny_model_dir, batch_size=2, width=32, height=32))
    finally:
        handle.remove()
    assert EventKind.FINISHED in got
    assert sorted(ev.index for ev in got[EventKind.IMAGE]) == [0, 1]


def test_when_every_rung_runs_out_the_job_fails_in_one_sentence_and_the_model_is_unloaded(
        engine, tiny_model_dir):
    unet = weakref.ref(engine.model.unet)
    oom = _OutOfMemoryUnlessLifted(engine.model, vae=False, always=True)
    try:
        got = _job(engine, _req(tiny_model_dir))
    finally:
        oom.remove()
    assert oom.raised == 3  # fast, sliced, tiled: the CPU's ladder
    assert got[EventKind.FAILED] == [describe(torch.OutOfMemoryError("x"), SIZE, SIZE)]
    assert EventKind.FINISHED not in got and engine.model is None
    del oom
    gc.collect()
    assert unet() is None


def test_a_job_no_rung_fits_is_refused_and_one_a_lower_rung_fits_runs_there(engine,
                                                                           tiny_model_dir,
                                                                           monkeypatch):
    from sdstudio.core import engine as engine_module
    from sdstudio.core.engine import estimate_working_memory

    big = _req(tiny_model_dir, width=2048, height=2048)
    fast = estimate_working_memory(engine.model, big)
    tiled = estimate_working_memory(engine.model, big, "tiled")
    assert tiled < fast / 4  # a 32-pixel tile instead of the whole 2048² image
    monkeypatch.setattr(engine_module, "free_device_memory", lambda _d: int(tiled * 2))
    assert engine.check_fits(big) == "tiled"
    monkeypatch.setattr(engine_module, "free_device_memory", lambda _d: int(tiled / 2))
    with pytest.raises(engine_module.UserError, match="2048×2048 .* even with VAE tiling"):
        engine.check_fits(big)


def test_offload_asked_for_on_the_cpu_is_tiling_with_a_notice(engine, tiny_model_dir):
    got = _job(engine, _req(tiny_model_dir, memory="offload", width=32, height=32))
    assert EventKind.FINISHED in got
    assert got[EventKind.NOTICE] == [
        "Model CPU offload does nothing on the cpu: used VAE tiling instead."]
    assert got[EventKind.IMAGE][0].record["memory"] == "tiled"


# --- memory given back -------------------------------------------------------------------------
def test_unload_and_switching_models_let_the_modules_die(engine, tiny_model_dir, tmp_path):
    # an embeddings folder builds the adapter host pipeline, which holds the UNet
    (tmp_path / "emb").mkdir()
    assert _job(engine, _req(tiny_model_dir, width=32, height=32,
                             embeddings_dir=str(tmp_path / "emb"))).get(EventKind.FINISHED)
    memory.apply_rung(engine.model, "sequential", execution_device="cpu")
    conv = engine.model.unet.conv_in  # a layer kept alive: its hook must still go
    unet = weakref.ref(engine.model.unet)
    engine.unload()
    assert unet() is None and not hasattr(conv, "_hf_hook")
    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    engine.load(str(tiny_model_dir), "cpu", "fp32")
    memory.apply_rung(engine.model, "offload", execution_device="cpu")
    unet = weakref.ref(engine.model.unet)
    engine.load(str(other), "cpu", "fp32")  # switching frees the old one first
    gc.collect()
    assert unet() is None and engine.model is not None
