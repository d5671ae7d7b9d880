"""Step time of a model eager vs compiled (torch.compile of the UNet and VAE decoder), on the
device the engine picks (or --device), with the compile's warm-up timed apart.

    python benchmarks/bench_compile.py [--model demo] [--size 256] [--steps 20] [--device cpu]

Prints the first compiled run (the warm-up: tracing, and inductor's compile unless its cache in
sdstudio's cache folder already has the graphs), then the median seconds per step over
`--repeats` runs of each mode and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from sdstudio.core.engine import Engine
from sdstudio.core.request import GenerationRequest


def seconds_per_step(engine: Engine, request: GenerationRequest) -> float:
    last: list[float] = []
    engine.generate(request, on_step=lambda ev: last.append(ev.elapsed))
    return last[-1] / len(last)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    engine = Engine()
    req = GenerationRequest("a red circle on a blue background", model=args.model,
                            device=args.device, width=args.size, height=args.size,
                            steps=args.steps, seed=1)
    engine.load(req.model, req.device)
    print(f"{engine.info}")
    seconds_per_step(engine, req)  # warm both paths' allocator and threads
    t0 = time.perf_counter()
    engine.generate(replace(req, compile=True))
    print(f"first compiled run (warm-up included): {time.perf_counter() - t0:.1f} s")
    eager = [seconds_per_step(engine, req) for _ in range(args.repeats)]
    compiled = [seconds_per_step(engine, replace(req, compile=True)) for _ in range(args.repeats)]
    e, c = statistics.median(eager), statistics.median(compiled)
    print(f"{args.size}² {args.steps} steps: eager {e * 1000:.1f} ms/step, compiled "
          f"{c * 1000:.1f} ms/step, compiled/eager {c / e:.2f}×")


if __name__ == "__main__":
    main()
