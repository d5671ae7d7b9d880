"""`sdstudio outpaint IMAGE PROMPT --right 64 ... --out DIR`: extend the picture and inpaint the
new border (the extended image and its mask are written to DIR beside the result, so the PNG's
request points at them and regenerates)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdstudio.commands.generate import _out_dir, add_generation_arguments
from sdstudio.commands.generate import run as run_generate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("outpaint", help="extend a picture on any side and inpaint the new area")
    p.add_argument("image", help="the picture to extend")
    p.add_argument("prompt")
    for side in ("left", "top", "right", "bottom"):
        p.add_argument(f"--{side}", type=int, default=0, help=f"pixels to add on the {side}")
    p.add_argument("--overlap", type=int, default=16,
                   help="pixels of the picture repainted along the seam (blended by the blur)")
    p.add_argument("--fill", choices=("edge", "blur"), default="edge",
                   help="what the new area starts from: the edge stretched out, or blurred colours")
    add_generation_arguments(p, strength=0.9, mask_blur=8, inpaint_area="only-masked")
    p.add_argument("--out", required=True, help="folder for the PNGs (created if missing)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sdstudio.core.canvas.outpaint import Extension, prepare

    out = _out_dir(args.out)
    ext = Extension(args.left, args.top, args.right, args.bottom).validate()
    args.init_image, args.mask = prepare(Path(args.image), ext, out, args.fill, args.overlap)
    return run_generate(args)
