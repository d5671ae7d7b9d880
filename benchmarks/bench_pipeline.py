"""Benchmark: our hand-assembled loop vs diffusers' StableDiffusion(XL)Pipeline, and preview cost.

Prints ratios from one run:
  loop ratio     = our generate() wall time / diffusers pipeline wall time   (target <= 1.02)
  preview ratio  = preview_rgb + channel_images per step / one UNet step     (target <= 1%)

Same random-weight model (moderately sized so timings mean something), same settings and seed;
runs are interleaved and medians taken.
Usage: python benchmarks/bench_pipeline.py [--repeats N] [--family sd1|sdxl]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from sdstudio.core.latents import channel_images, preview_rgb  # noqa: E402
from sdstudio.core.models import load_model  # noqa: E402
from sdstudio.core.pipeline import StableDiffusion, fresh_scheduler  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402
from sdstudio.testing.tiny_models import (  # noqa: E402
    TinySize,
    build_tiny_model,
    build_tiny_sdxl_model,
)

BENCH_SIZE = TinySize(
    unet_channels=(64, 128, 128), unet_layers=1, text_hidden=128, text_layers=2,
    vae_channels=(16, 32, 32, 32), sample_size=8,
)


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(fns, repeats: int, before=None) -> list[list[float]]:
    """Each of `fns` once to warm up, then `repeats` rounds of each in turn, so load changes on
    the machine hit all alike; the times (s) of each. `before` runs ahead of every call, untimed."""
    def timed(fn) -> float:
        if before is not None:
            before()
        return _time(fn)

    for fn in fns:
        timed(fn)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            out.append(timed(fn))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest on a shared CPU)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--scheduler", default="Euler a")
    parser.add_argument("--family", default="sd1", choices=["sd1", "sdxl"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    build = build_tiny_sdxl_model if args.family == "sdxl" else build_tiny_model
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(str(build(f"{tmp}/bench", size=BENCH_SIZE)), device="cpu")
    size = model.native_size
    req = GenerationRequest(
        "a photo of a red circle on a blue background", negative_prompt="blurry", seed=1,
        steps=args.steps, guidance=7.5, scheduler=args.scheduler, width=size, height=size,
    )
    ours = StableDiffusion(model)
    pipe = diffusers_pipeline(model, fresh_scheduler(req.scheduler, model.scheduler_config))

    def run_ours():
        ours.generate(req)

    def run_theirs():
        run_diffusers(pipe, model, req)

    t_ours, t_theirs = interleaved([run_ours, run_theirs], args.repeats)
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)

    # One UNet step (CFG: batch 2) vs the per-step preview work on the same latents.
    f = model.vae_scale_factor
    latents = torch.randn(1, 4, size // f, size // f)
    with torch.no_grad():
        cond = model.family.conditioning(model, req, True, [])

    def unet_step():
        with torch.no_grad():
            model.unet(
                torch.cat([latents] * 2), 500, encoder_hidden_states=cond.embeds,
                added_cond_kwargs=cond.added,
            )

    def preview():
        preview_rgb(latents)
        channel_images(latents)

    unet_step(), preview()
    t_unet = statistics.median(_time(unet_step) for _ in range(max(5, args.repeats)))
    t_prev = statistics.median(_time(preview) for _ in range(200))

    print(f"model: random {model.family.label}-shaped, UNet {BENCH_SIZE.unet_channels}, {size}x{size} px, "
          f"{req.scheduler}, {req.steps} steps, CFG {req.guidance}, torch threads {torch.get_num_threads()}")
    print(f"ours median {m_ours:.3f} s, diffusers median {m_theirs:.3f} s ({args.repeats} interleaved repeats)")
    print(f"loop ratio (ours / diffusers): {m_ours / m_theirs:.3f}   (target <= 1.02)")
    print(f"UNet step {t_unet * 1e3:.2f} ms, preview_rgb + channel_images {t_prev * 1e3:.3f} ms")
    print(f"preview ratio (preview / UNet step): {100 * t_prev / t_unet:.2f}%   (target <= 1%)")


def run_diffusers(pipe, model, req: GenerationRequest, **extra):
    """diffusers' pipeline on `req` as sdstudio runs it: a fresh scheduler, one CPU generator per
    image seeded as `req.seeds()`."""
    pipe.scheduler = fresh_scheduler(req.scheduler, model.scheduler_config)
    return pipe(req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                guidance_scale=req.guidance, width=req.width, height=req.height,
                num_images_per_prompt=req.batch_size,
                generator=[torch.Generator().manual_seed(s) for s in req.seeds()], **extra)


def diffusers_pipeline(model, scheduler):
    """diffusers' own pipeline on `model`'s components (the same module objects)."""
    import diffusers

    if model.family.name == "sdxl":
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=model.vae, text_encoder=model.text_encoder, text_encoder_2=model.text_encoder_2,
            tokenizer=model.tokenizer, tokenizer_2=model.tokenizer_2, unet=model.unet,
            scheduler=scheduler, add_watermarker=False,
        )
    else:
        pipe = diffusers.StableDiffusionPipeline(
            vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
            unet=model.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


if __name__ == "__main__":
    main()
