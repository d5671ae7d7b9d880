"""The demo model's tiny preview decoder (resources/models/demo/vae_tiny): cost and fidelity.

    python benchmarks/bench_preview_decoder.py [--threads 1] [--steps 20] [--out DIR]

1. Cost: one tiny decode of a 16x16 latent against one UNet step of the demo model (CFG: a
   batch of 2), and over a real 20-step generation, the time the worker's preview path spends
   in tiny decodes (throttled as in ui/worker.py, then by `PreviewDecoder`'s time budget) per
   step, against the UNet step. Target: <= 1% of a UNet step per step.
2. Fidelity: PSNR of the tiny decode, and of the latent->RGB projection (upsampled 8x), against
   the full VAE decode of held-out data-set latents (a seed no training stage drew).
3. With --out: side-by-side PNGs (image | full VAE | tiny | projection) of held-out latents, and
   of x0 estimates at a few steps of one generation (full VAE of x0 | tiny of x0).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sdstudio.core.latents import preview_rgb  # noqa: E402
from sdstudio.core.models import load_model  # noqa: E402
from sdstudio.core.pipeline import StableDiffusion  # noqa: E402
from sdstudio.core.preview_decoder import preview_decoder_for  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402
from sdstudio.demo import dataset  # noqa: E402

HELD_OUT_SEED = 4242  # training drew seeds 0..6
PREVIEW_INTERVAL_S = 0.03  # ui/worker.py's throttle (not imported: no Qt here)
PROMPTS = ("a large red circle in the centre on a white background",
           "a small green triangle in the top left on a navy background",
           "a yellow square left of a blue star on a beige background")


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[3, h, w] in [-1, 1] -> uint8 [h, w, 3]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))


def side_by_side(images: list[Image.Image]) -> Image.Image:
    w, h = images[0].size
    out = Image.new("RGB", (w * len(images) + 4 * (len(images) - 1), h), "white")
    for i, img in enumerate(images):
        out.paste(img.resize((w, h), Image.NEAREST), (i * (w + 4), 0))
    return out


def cost(model, decoder, steps: int) -> None:
    unet = model.unet
    z = torch.randn(2, 4, 16, 16)
    emb = torch.randn(2, 32, unet.config.cross_attention_dim)
    with torch.no_grad():
        unet_s = timed(lambda: unet(z, torch.tensor(500), encoder_hidden_states=emb), 10)
    decode_s = timed(lambda: decoder.decode(z[:1]), 10)
    print(f"UNet step (batch 2, CFG): {unet_s * 1e3:.1f} ms; one tiny decode: {decode_s * 1e3:.1f} ms"
          f" = {decode_s / unet_s:.0%} of a UNet step")

    pipe = StableDiffusion(model)
    spent, last = [0.0], [0.0]
    decoder.reset()

    def on_step(ev) -> None:  # the worker's preview path, minus Qt
        now = time.monotonic()
        if ev.step < ev.total and now - last[0] < PREVIEW_INTERVAL_S:
            return
        last[0] = now
        t0 = time.perf_counter()
        decoder.preview(ev.denoised, last=ev.step >= ev.total)
        spent[0] += time.perf_counter() - t0

    t0 = time.perf_counter()
    pipe.generate(GenerationRequest(PROMPTS[0], seed=1, steps=steps, guidance=3.0, width=128,
                                    height=128, model="demo", device="cpu", dtype="fp32"),
                  on_step=on_step)
    total = time.perf_counter() - t0
    per_step = spent[0] / steps
    print(f"{steps}-step generation: {total:.2f} s, {decoder.decodes} tiny decodes taking "
          f"{spent[0] * 1e3:.0f} ms in all (budget {decoder.budget:.0%} of the wall time)")
    print(f"preview decode cost per step: {per_step * 1e3:.2f} ms = {per_step / unet_s:.1%} of a "
          f"UNet step (target <= 1%)")


@torch.no_grad()
def fidelity(model, decoder, n: int, out: Path | None) -> None:
    vae = model.vae
    images = [dataset.make_sample(HELD_OUT_SEED, i).image for i in range(n)]
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)
    x = x.float() / 127.5 - 1
    tiny_psnr, proj_psnr, vs_image = [], [], []
    for i in range(n):
        lat = vae.encode(x[i:i + 1]).latent_dist.mean * vae.config.scaling_factor
        full = to_uint8(vae.decode(lat / vae.config.scaling_factor).sample[0])
        tiny = np.asarray(decoder.decode(lat))
        proj = np.asarray(preview_rgb(lat, model.latent_rgb).resize((128, 128), Image.BILINEAR))
        tiny_psnr.append(psnr(tiny, full))
        proj_psnr.append(psnr(proj, full))
        vs_image.append(psnr(full, np.asarray(images[i])))
        if out is not None and i < 8:
            side_by_side([images[i], Image.fromarray(full), Image.fromarray(tiny),
                          Image.fromarray(proj)]).save(out / f"heldout_{i}.png")
    print(f"PSNR vs the full VAE decode, {n} held-out latents: tiny decoder "
          f"{statistics.mean(tiny_psnr):.1f} dB (min {min(tiny_psnr):.1f}), projection "
          f"{statistics.mean(proj_psnr):.1f} dB; full VAE vs the image itself "
          f"{statistics.mean(vs_image):.1f} dB")


@torch.no_grad()
def x0_strips(model, decoder, steps: int, out: Path) -> None:
    vae, pipe = model.vae, StableDiffusion(model)
    for k, prompt in enumerate(PROMPTS):
        rows = []
        keep = {2, steps // 4, steps // 2, steps}

        def on_step(ev, rows=rows, keep=keep) -> None:
            if ev.step in keep and ev.denoised is not None:
                full = to_uint8(vae.decode(ev.denoised[:1] / vae.config.scaling_factor).sample[0])
                rows.append(side_by_side([Image.fromarray(full), decoder.decode(ev.denoised)]))

        pipe.generate(GenerationRequest(prompt, seed=k, steps=steps, guidance=3.0, width=128,
                                        height=128, model="demo", device="cpu", dtype="fp32"),
                      on_step=on_step)
        sheet = Image.new("RGB", (rows[0].width, sum(r.height + 4 for r in rows)), "white")
        for j, r in enumerate(rows):
            sheet.paste(r, (0, j * (r.height + 4)))
        sheet.save(out / f"x0_{k}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--held-out", type=int, default=64)
    ap.add_argument("--out", type=Path, default=None, help="folder for side-by-side PNGs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("demo", device="cpu", dtype="fp32")
    decoder = preview_decoder_for(model)
    if decoder is None:
        raise SystemExit("the demo model has no vae_tiny/ (run train-demo --stages preview)")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    cost(model, decoder, args.steps)
    fidelity(model, decoder, args.held_out, args.out)
    if args.out is not None:
        x0_strips(model, decoder, args.steps, args.out)
        print(f"side-by-side PNGs in {args.out}")


if __name__ == "__main__":
    main()
