"""`sdstudio grid PROMPT --x "seed=1-4" [--y ...] [--z ...] --out DIR`: an X/Y/Z sweep.

Every cell is saved as an ordinary image with its full parameters (as `sdstudio generate` saves
it), then a labelled `grid-NNNNN.png` per Z value that records the sweep (`--rerun` reads it).
`--ray` sends the cells to Ray actors; the images still come back here to be saved.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from sdstudio.commands.generate import _out_dir, add_generation_arguments, request_from_args

if TYPE_CHECKING:
    from sdstudio.core.grid import Sweep

AXIS_HELP = ('NAME=VALUES, e.g. "seed=1-4", "steps=10-30 (+10)", "cfg=2,7.5", "cfg=1-9 [5]", '
             '"sampler=Euler a,DPM++ 2M", "prompt=red,green" (search and replace the first value); '
             "axes: seed, steps, cfg, sampler, prompt, width, height, strength, model, clip_skip, "
             "hires_strength, hires_steps")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="X/Y/Z sweep: one image per cell and a labelled grid per Z value")
    p.add_argument("prompt", nargs="?", help="the prompt (not needed with --rerun)")
    add_generation_arguments(p)
    p.add_argument("--x", help=f"the X axis (columns): {AXIS_HELP}")
    p.add_argument("--y", help="the Y axis (rows)")
    p.add_argument("--z", help="the Z axis: one grid per value")
    p.add_argument("--rerun", metavar="GRID_PNG",
                   help="run the sweep a grid image records again (the other options are ignored)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help='run the cells on Ray: "local" (the default: a Ray instance on this machine), '
                   '"auto" (the cluster of RAY_ADDRESS or `ray start --head`), or an address')
    p.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="Ray actors (default: one per GPU, else one per CPU core)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and stop")
    p.add_argument("--out", required=True, help="folder for the images and grids")
    p.set_defaults(func=run)


def build_sweep(args: argparse.Namespace) -> Sweep:
    """The validated sweep of the options (or of the grid image given to --rerun)."""
    from sdstudio.core.errors import UserError
    from sdstudio.core.grid import Axis, Sweep
    from sdstudio.core.grid_image import read_sweep

    if args.rerun:
        return read_sweep(args.rerun).validate()
    if not args.prompt:
        raise UserError("Give a prompt, or --rerun GRID_PNG.")
    base, chosen = request_from_args(args)
    axes = {n: Axis.parse(getattr(args, n)) for n in "xyz" if getattr(args, n)}
    if not axes:
        raise UserError('Give at least one axis, e.g. --x "seed=1-4".')
    return Sweep(base, chosen=frozenset(chosen), **axes).validate()


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sdstudio.core.gallery.saving import PendingImage, save_to_folder
    from sdstudio.core.grid_image import save_grid
    from sdstudio.core.grid_run import GridAssembler, run_local

    sweep = build_sweep(args)
    print(f"{sweep.summary()}", file=sys.stderr)
    if args.dry_run:
        for cell in sweep.cells():
            r = cell.request
            print(f"{cell.index}\t{r.seed}\t{r.steps}\t{r.guidance:g}\t{r.scheduler}\t"
                  f"{r.width}x{r.height}\t{r.model}\t{r.prompt}")
        return 0
    out = _out_dir(args.out)
    if args.ray:
        from sdstudio.cluster.ray_runner import run_on_ray

        results = run_on_ray(sweep, args.ray, actors=args.ray_actors)
    else:
        from sdstudio.core.engine import Engine

        results = run_local(Engine(), sweep)
    assembler, code = GridAssembler(sweep), 0
    with tqdm(total=len(sweep), file=sys.stderr, unit="cell", leave=False) as bar:
        for result in results:
            name = ""
            job = PendingImage(result.image, result.request, result.seed, result.record)
            for saved in save_to_folder(out, [job]):
                if saved.message:
                    print(f"{'note' if saved.path else 'error'}: {saved.message}", file=sys.stderr)
                if saved.path:
                    name = saved.path.name
                    print(saved.path, flush=True)
                else:
                    code = 1
            for notice in result.notices:
                print(f"note: {notice}", file=sys.stderr)
            for iz in assembler.add(result.index, result.image, name):
                print(save_grid(out, assembler.grid(iz), sweep, iz, assembler.cell_files(iz)),
                      flush=True)
            bar.update(1)
    return code
