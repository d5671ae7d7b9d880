"""`sdstudio vae IMAGE --out DIR`: the course's VAE exercise (encode, look at channels, decode)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from sdstudio.core.defaults import DEMO_MODEL, DEVICES  # no torch import

    p = sub.add_parser("vae", help="encode an image with the VAE: 4 channel images, reconstruction, PSNR")
    p.add_argument("image")
    p.add_argument("--model", default=DEMO_MODEL)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from sdstudio.core.errors import UserError
    from sdstudio.core.latents import channel_images, latents_to_pil, pil_to_latent
    from sdstudio.core.models import load_model

    try:
        with Image.open(args.image) as im:
            image = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"Image {args.image} cannot be opened ({exc}).") from None
    f = 8
    w, h = image.width // f * f, image.height // f * f
    if w == 0 or h == 0:
        raise UserError(f"Image {args.image} is smaller than 8x8 pixels.")
    if (w, h) != image.size:
        print(f"note: image cropped from {image.width}x{image.height} to {w}x{h}.", file=sys.stderr)
        image = image.crop((0, 0, w, h))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, args.device, "fp32")
    latents = pil_to_latent(model.vae, image)
    recon = latents_to_pil(model.vae, latents)[0]
    for i, (channel, lo, hi) in enumerate(channel_images(latents)):
        channel.save(out / f"channel_{i}.png")
        print(f"channel {i}: min {lo:.3f} max {hi:.3f}", file=sys.stderr)
    recon.save(out / "reconstruction.png")
    print(f"latent shape: {tuple(latents.shape)}")
    print(f"reconstruction PSNR: {psnr(np.asarray(image), np.asarray(recon)):.2f} dB")
    print(f"wrote channel_0..3.png and reconstruction.png in {out}", file=sys.stderr)
    return 0


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
