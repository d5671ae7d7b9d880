"""Fuzz the metadata readers: N inputs (default 100,000), 0 crashes and 0 inputs over 100 ms.

Inputs are mutations of real chunks (A1111 text, our record, ComfyUI and InvokeAI JSON) and
random text, fed to the one entry point the gallery and the window use (`parameters_from_info`)
and, for a share of them, to whole PNG files on disk (`read_png` + the gallery's row builder). A
crash is any exception other than MetadataError. Run:

    python stress/fuzz_metadata.py [--n 100000] [--seed 1] [--files-every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdstudio.core.gallery.store import _row_values  # noqa: E402
from sdstudio.core.png import MetadataError, io  # noqa: E402
from sdstudio.core.png.parameters import clean_text  # noqa: E402
from sdstudio.testing.hostile import bad_files, png_with_text, raw_png  # noqa: E402

A1111 = ("masterpiece, (best:1.2) quality\nNegative prompt: lowres\nSteps: 28, Sampler: DPM++ 2M, "
         "Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, Model hash: 7f96a1, "
         'Model: anything-v5, Lora hashes: "add_detail: 7c6bad76eb54, more: 0123", Version: v1.9.4')
OURS = json.dumps({"request": {"prompt": "a cat", "negative_prompt": "", "seed": 5, "steps": 20},
                   "seed": 5, "created": 1.5, "record": {"versions": {"torch": "2"}}})
COMFY = json.dumps({"3": {"class_type": "KSampler", "inputs": {
    "seed": 7, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
    "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
    "latent_image": ["5", 0]}}, "4": {"class_type": "CheckpointLoaderSimple",
    "inputs": {"ckpt_name": "v1-5.safetensors"}}, "5": {"class_type": "EmptyLatentImage",
    "inputs": {"width": 512, "height": 512}}, "6": {"class_type": "CLIPTextEncode",
    "inputs": {"text": "a dog"}}, "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "x"}}})
INVOKE = json.dumps({"positive_prompt": "a fox", "negative_prompt": "", "seed": 3, "steps": 30,
                     "cfg_scale": 6.5, "scheduler": "euler", "width": 512, "height": 512,
                     "model": {"name": "sd15"}})
SEEDS = {"parameters": A1111, "sdstudio": OURS, "prompt": COMFY, "invokeai_metadata": INVOKE}
ODD = ['"', "\\", ":", ",", "\n", "\x00", "\ud800", "\udfff", "[", "{", "]", "}", "Infinity",
       "NaN", "-1e999", str(2**64), "9" * 5000, "😀", "Negative prompt:", "Steps: ", ", Seed: ",
       '"\\"', "null", "true", "[[[[[[", "\\u0000", "\\ud800", "é" * 50]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randint(0, len(text))
        if op < 0.35:
            piece = rng.choice(ODD)
        elif op < 0.55:
            text = text[:pos] + text[pos + rng.randint(1, 20):]
            continue
        elif op < 0.7:  # a long run; now and then one past the size cap
            piece = rng.choice(ODD) * (rng.randint(10, 3000) if rng.random() < 0.05 else
                                       rng.randint(10, 200))
        elif op < 0.85 and text:
            a = rng.randint(0, len(text) - 1)
            piece = text[a:a + rng.randint(1, 200)]
        else:
            piece = "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 10)))
        text = text[:pos] + piece + text[pos:]
    return text


def one_input(rng: random.Random) -> dict[str, str]:
    r = rng.random()
    if r < 0.1:  # pure noise
        return {rng.choice(list(SEEDS)): "".join(rng.choice(ODD + ["a", " ", "b"])
                                                 for _ in range(rng.randint(0, 400)))}
    key = rng.choice(list(SEEDS))
    info = {key: mutate(SEEDS[key], rng)}
    if rng.random() < 0.3:  # two chunks at once: ours beside a mutated A1111 text
        info["parameters"] = mutate(A1111, rng)
    return info


def latin1(info: dict[str, str]) -> dict[str, bytes]:
    return {k: v.encode("latin-1", "replace") for k, v in info.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files-every", type=int, default=20, help="every k-th input also as a file")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    crashes: list[str] = []
    slow: list[tuple[float, str]] = []
    worst = 0.0
    errors = parsed = 0
    tmp = Path(tempfile.mkdtemp(prefix="sdstudio-fuzz-"))
    kinds = list(bad_files().values())
    start = time.perf_counter()
    for i in range(args.n):
        info = one_input(rng)
        path = tmp / "f.png" if i % args.files_every == 0 else None
        if path is not None:  # made before the clock starts: only reading is timed
            if rng.random() < 0.5:
                path.write_bytes(raw_png(8, 8, latin1(info)))
            else:
                data = rng.choice(kinds) if rng.random() < 0.2 else png_with_text(**{
                    k: clean_text(v) for k, v in info.items()})
                path.write_bytes(data if rng.random() < 0.7 else data[: rng.randint(0, len(data))])
        t = time.perf_counter()
        try:
            io.parameters_from_info(info)
            if path is not None:
                _row_values(path, "f.png", path.stat())
            parsed += 1
        except MetadataError:
            errors += 1
        except Exception as exc:  # noqa: BLE001 - this is what we count
            crashes.append(f"{type(exc).__name__}: {exc} <- {json.dumps(info)[:300]}")
        dt = time.perf_counter() - t
        worst = max(worst, dt)
        if dt > 0.1:
            slow.append((dt, json.dumps(info)[:200]))
    total = time.perf_counter() - start
    print(f"inputs {args.n}  parsed {parsed}  MetadataError {errors}  crashes {len(crashes)}  "
          f"over 100 ms {len(slow)}  slowest {worst * 1000:.1f} ms  total {total:.1f} s")
    for c in crashes[:10]:
        print("CRASH", c)
    for dt, s in sorted(slow, reverse=True)[:5]:
        print(f"SLOW {dt * 1000:.0f} ms", s)
    os.remove(tmp / "f.png") if (tmp / "f.png").exists() else None
    tmp.rmdir()
    return 1 if crashes or slow else 0


if __name__ == "__main__":
    sys.exit(main())
