"""`sdstudio vae IMAGE --out DIR`: the course's VAE exercise (encode, look at channels, decode);
the work is in `sdstudio.core.vae_lab`, shared with the window's VAE lab."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EDIT_HELP = (
    "edit the latents before decoding (repeatable): scale:C:FACTOR, zero:C, swap:C:D, "
    "noise:C:STD, blur:C:SIGMA"
)


def register(sub: argparse._SubParsersAction) -> None:
    from sdstudio.core.defaults import DEMO_MODEL, DEVICES  # no torch import

    p = sub.add_parser("vae", help="encode an image with the VAE: 4 channel images, reconstruction, PSNR")
    p.add_argument("image")
    p.add_argument("--model", default=DEMO_MODEL)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True)
    p.add_argument("--sample", action="store_true",
                   help="encode to a sample of the latent distribution instead of its mean")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample and of noise edits")
    p.add_argument("--edit", action="append", default=[], metavar="OP:C[:V]", help=EDIT_HELP)
    p.add_argument("--channel-size", type=int, default=0, metavar="PX",
                   help="width of the channel images (default: the image's width)")
    p.set_defaults(func=run)


def parse_edit(text: str):
    from sdstudio.core.errors import UserError
    from sdstudio.core.vae_lab import EDIT_OPS, LatentEdit

    parts = text.split(":")
    op = parts[0].strip().lower()
    try:
        if op not in EDIT_OPS or len(parts) != (2 if op == "zero" else 3):
            raise ValueError
        channel = int(parts[1])
        if op == "swap":
            return LatentEdit(op, channel, other=int(parts[2]))
        return LatentEdit(op, channel, value=float(parts[2]) if len(parts) == 3 else 0.0)
    except ValueError:
        raise UserError(f"Edit {text!r} is not one of: {EDIT_HELP.split(': ', 1)[1]}.") from None


def run(args: argparse.Namespace) -> int:
    from sdstudio.core import vae_lab
    from sdstudio.core.models.loading import resolve_device

    edits = [parse_edit(e) for e in args.edit]
    image = vae_lab.open_image(args.image)
    device, _ = resolve_device(args.device, "fp32")
    vae = vae_lab.load_vae(args.model, str(device))
    result = vae_lab.round_trip(vae, image, sample=args.sample, seed=args.seed, edits=edits)
    for note in result.notes + vae_lab.vae_notes(vae, args.model):
        print(f"note: {note}", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h = result.original.size
    if args.channel_size > 0:
        w, h = args.channel_size, max(1, round(args.channel_size * h / w))
    z = result.decoded_latents[0]
    for i, st in enumerate(result.stats):
        vae_lab.channel_picture(z[i], "grey", (w, h)).save(out / f"channel_{i}.png")
        vae_lab.channel_picture(z[i], "diverging", (w, h)).save(out / f"channel_{i}_diverging.png")
        print(f"channel {i}: min {st.low:+.3f} max {st.high:+.3f} mean {st.mean:+.3f} "
              f"std {st.std:.3f}")
    result.reconstruction.save(out / "reconstruction.png")
    result.difference.save(out / "difference.png")
    for stage, shape in result.shapes:
        print(f"{stage}: {shape}")
    print(f"scaling factor: {result.scaling_factor:g}")
    print(f"latent shape: {tuple(result.latents.shape)}")
    print(f"reconstruction SSIM: {result.ssim:.4f}")
    print(f"reconstruction PSNR: {result.psnr:.2f} dB")
    print(f"wrote channel_0..3.png (+ _diverging), reconstruction.png and difference.png "
          f"({w}x{h} channel images) in {out}", file=sys.stderr)
    return 0
