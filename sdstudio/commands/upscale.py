"""`sdstudio upscale IMAGE --scale 2 --upscaler lanczos --out DIR`: a bigger copy of a picture that
keeps its prompt and parameters and records the upscale (model upscalers need spandrel, which
is not installed: see `sdstudio.core.canvas.upscalers`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale a picture (Lanczos, Nearest), keeping its metadata")
    p.add_argument("image")
    p.add_argument("--scale", type=float, default=2.0, help="factor between 1 and 8")
    p.add_argument("--upscaler", default="Lanczos", help="Lanczos or Nearest")
    p.add_argument("--out", required=True, help="folder for the PNG (created if missing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sdstudio.commands.generate import _out_dir
    from sdstudio.core.canvas.upscalers import canonical_upscaler, upscale_file, upscaled_name

    source = Path(args.image)
    name = canonical_upscaler(args.upscaler)
    target = _out_dir(args.out) / upscaled_name(source, args.scale, name)
    print(upscale_file(source, target, args.scale, name), flush=True)
    return 0
