"""Full-size single-file check, one family at a time, with random weights (no download).

For each family: build the model from the shipped config folder (random fp16 weights), write it
as one original-layout .safetensors with diffusers' key maps, then load that file twice -- with
sdstudio's loader and with diffusers' own `<Pipeline>.from_single_file(config=<shipped folder>)`
-- and check that both give back exactly the weights that were written (per-tensor SHA-1), i.e.
that the shipped configs fit full-size checkpoints. Files are deleted after each family.

  python benchmarks/check_single_file_full_size.py [sd15 sd2-v sdxl-base ...] [--dir DIR]

Needs about 2.5x the fp16 model size in RAM (SD 1.5: ~2 GB, SDXL: ~7 GB file).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

FAMILY = {"sd15": "sd1", "sd15-inpainting": "sd1", "sd2": "sd2", "sd2-v": "sd2",
          "sdxl-base": "sdxl", "sdxl-inpainting": "sdxl", "sdxl-refiner": "sdxl-refiner"}
PIPELINE = {"sd1": "StableDiffusionPipeline", "sd2": "StableDiffusionPipeline",
            "sdxl": "StableDiffusionXLPipeline", "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline"}


def _rss_gb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def fingerprints(module) -> dict[str, str]:
    return {k: hashlib.sha1(v.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
            for k, v in module.state_dict().items() if not k.endswith("position_ids")}


def build_random(config: Path) -> SimpleNamespace:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    index = json.loads((config / "model_index.json").read_text())
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    try:
        parts = {"unet": UNet2DConditionModel.from_config(
                     json.loads((config / "unet" / "config.json").read_text())),
                 "vae": AutoencoderKL.from_config(
                     json.loads((config / "vae" / "config.json").read_text()))}
        classes = {"CLIPTextModel": CLIPTextModel,
                   "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
        for name in ("text_encoder", "text_encoder_2"):
            entry = index.get(name) or [None, None]
            if entry[1]:
                cfg = CLIPTextConfig.from_pretrained(str(config / name))
                parts[name] = classes[entry[1]](cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    for m in parts.values():
        m.to(torch.float16)
    return SimpleNamespace(**parts)


def check(name: str, workdir: Path) -> bool:
    import diffusers
    from safetensors.torch import save_file
    from transformers import CLIPTokenizer

    from sdstudio.core.models.single_file import clip_tokenizer_folder, load_single_file
    from sdstudio.core.paths import resources_dir
    from sdstudio.testing.single_files import pipeline_to_original

    config = resources_dir() / "configs" / name
    family = FAMILY[name]
    t0 = time.perf_counter()
    model = build_random(config)
    parts = [p for p in ("unet", "vae", "text_encoder", "text_encoder_2") if hasattr(model, p)]
    expected = {p: fingerprints(getattr(model, p)) for p in parts}
    params = {p: sum(t.numel() for t in getattr(model, p).parameters()) for p in parts}
    path = workdir / f"random-{name}.safetensors"
    state = pipeline_to_original(model, family)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    del model, state
    gc.collect()
    size = path.stat().st_size / 2**30
    print(f"{name}: built and wrote {size:.2f} GB ({len(expected)} parts, "
          + ", ".join(f"{p} {n / 1e6:.1f}M" for p, n in params.items())
          + f") in {time.perf_counter() - t0:.0f} s", flush=True)
    ok = True
    try:
        t0 = time.perf_counter()
        ours = load_single_file(path, torch.float16)
        got = {p: fingerprints(ours.components[p]) for p in parts}
        kind = ours.kind
        del ours
        gc.collect()
        same = all(got[p] == expected[p] for p in parts)
        ok &= same
        print(f"  sdstudio loader: detected {kind.label} ({kind.config}); weights identical: "
              f"{same} ({time.perf_counter() - t0:.0f} s)", flush=True)

        t0 = time.perf_counter()
        tok = CLIPTokenizer.from_pretrained(str(clip_tokenizer_folder()))
        tok_g = CLIPTokenizer.from_pretrained(str(clip_tokenizer_folder()), pad_token="!")
        extra = {"tokenizer": tok_g if family == "sd2" else tok}
        if family in ("sdxl", "sdxl-refiner"):
            extra["tokenizer_2"] = tok_g
        if family == "sdxl-refiner":
            extra["tokenizer"] = None
        if family in ("sd1", "sd2"):
            extra.update(safety_checker=None, requires_safety_checker=False)
        cls = getattr(diffusers, PIPELINE[family])
        ref = cls.from_single_file(str(path), config=str(config), local_files_only=True,
                                   torch_dtype=torch.float16, **extra)
        ref_fp = {p: fingerprints(getattr(ref, p)) for p in parts}
        del ref
        gc.collect()
        same = all(ref_fp[p] == expected[p] for p in parts)
        ok &= same
        print(f"  diffusers {PIPELINE[family]}.from_single_file(config=shipped): weights "
              f"identical: {same} ({time.perf_counter() - t0:.0f} s); peak RSS {_rss_gb():.1f} GB",
              flush=True)
    finally:
        path.unlink(missing_ok=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("families", nargs="*", default=["sd15", "sd2-v", "sdxl-base"])
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    results = {name: check(name, Path(args.dir)) for name in args.families}
    print("all identical" if all(results.values()) else f"MISMATCH: {results}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
