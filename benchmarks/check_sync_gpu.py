"""On a CUDA GPU: run a few samplers with `torch.cuda.set_sync_debug_mode("error")` from the end
of the first step to the last (`sdstudio.core.fastpath.SyncCheck`), eager and compiled, and
say which synchronise the host per step.

    python benchmarks/check_sync_gpu.py [--model demo] [--size 512] [--steps 6] [--compile]
"""

from __future__ import annotations

import argparse
import sys

import torch

from sdstudio.core.engine import Engine
from sdstudio.core.fastpath import SyncCheck
from sdstudio.core.request import GenerationRequest

SAMPLERS = ("Euler a", "Euler", "DPM++ 2M Karras", "DPM++ 2M SDE", "DDIM", "UniPC", "Heun")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="demo")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to check")
        return 0
    engine = Engine()
    failures = 0
    for sampler in SAMPLERS:
        req = GenerationRequest("a red circle on a blue background", model=args.model,
                                device="cuda", width=args.size, height=args.size,
                                steps=args.steps, scheduler=sampler, compile=args.compile)
        try:
            with SyncCheck("error") as check:
                engine.generate(req, on_step=check)
            print(f"{sampler}: no host sync per step")
        except RuntimeError as exc:
            failures += 1
            print(f"{sampler}: SYNC {str(exc).splitlines()[0]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
