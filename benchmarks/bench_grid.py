"""A small sweep on the demo model: here (one engine, cells in turn) against a local Ray
instance (N CPU actors, each with its own engine). Prints wall times and their ratio, and checks
that every Ray cell equals the local one, pixel for pixel.

    python benchmarks/bench_grid.py [--x seed=1,2] [--y cfg=2,7.5] [--steps 20] [--actors 2]

The Ray time includes starting Ray and its actors and loading the model once per actor: what a
user waits for. On a machine with few cores the actors share them with each other.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--x", default="seed=1,2")
    ap.add_argument("--y", default="cfg=2,7.5")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--actors", type=int, default=2)
    args = ap.parse_args()
    from sdstudio.cluster import ray_runner
    from sdstudio.core.engine import Engine
    from sdstudio.core.grid import Axis, Sweep
    from sdstudio.core.grid_run import run_local
    from sdstudio.core.request import GenerationRequest

    base = GenerationRequest("a small red circle in the middle on a white background",
                             steps=args.steps, model="demo")
    sweep = Sweep(base, Axis.parse(args.x), Axis.parse(args.y)).validate()
    print(f"{sweep.summary()}, {args.steps} steps, demo model; {os.cpu_count()} CPUs here, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    t0 = time.perf_counter()
    local = {r.index: r for r in run_local(Engine(), sweep)}
    t_local = time.perf_counter() - t0
    print(f"local (1 engine, model load included): {t_local:.2f} s")

    ray_runner.LOCAL_CPUS = max(ray_runner.LOCAL_CPUS, args.actors)
    t0 = time.perf_counter()
    remote = {r.index: r for r in ray_runner.run_on_ray(sweep, "local", actors=args.actors)}
    t_ray = time.perf_counter() - t0
    cells = sum(r.seconds for r in remote.values())
    print(f"ray local ({args.actors} CPU actors, Ray start + model loads included): "
          f"{t_ray:.2f} s; the actors' generate time summed: {cells:.2f} s")
    print(f"ratio ray/local: {t_ray / t_local:.2f}")
    same = all(np.array_equal(np.asarray(remote[i].image), np.asarray(local[i].image))
               for i in local)
    print(f"cells identical to local: {same}")


if __name__ == "__main__":
    main()
