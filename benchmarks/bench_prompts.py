"""Benchmark: the cost of A1111 prompt handling and LoRA switching.

Prints from one run (medians of interleaved repeats, on a moderately sized random model):
  encode ratio   = our chunked, weighted encode() / diffusers' encode_prompt, plain prompt
  parse time     = schedule + emphasis parsing of a long edited prompt, per prompt
  lora load      = first use of a LoRA (read, convert, inject) in seconds
  lora reweight  = a new weight for an already loaded LoRA, in seconds (no reload)
Usage: python benchmarks/bench_prompts.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from sdstudio.core.adapters.lora import LoraSpec, lora_set_for  # noqa: E402
from sdstudio.core.conditioning import parse_prompt_attention, schedule  # noqa: E402
from sdstudio.core.conditioning.encode import encode  # noqa: E402
from sdstudio.core.models import load_model  # noqa: E402
from sdstudio.testing.tiny_models import TinySize, build_tiny_model  # noqa: E402

SIZE = TinySize(unet_channels=(64, 128, 128), text_hidden=128, text_layers=4,
                vae_channels=(16, 32, 32, 32), sample_size=8)
PROMPT = "a photo of a red cat on a blue background, painting, portrait, big sky"
LONG = ", ".join(["(a red cat:1.2)", "[blue|green] sky", "[house:tree:0.4]"] * 12)


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _lora(model_dir: Path, out: Path) -> Path:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    StableDiffusionPipeline.save_lora_weights(
        str(out), unet_lora_layers=get_peft_model_state_dict(unet), weight_name="b.safetensors")
    return out / "b.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        model_dir = build_tiny_model(Path(tmp) / "m", size=SIZE)
        m = load_model(str(model_dir), device="cpu")
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline(vae=m.vae, text_encoder=m.text_encoder,
                                       tokenizer=m.tokenizer, unet=m.unet, scheduler=None,
                                       safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
        ours = theirs = 0.0
        for _ in range(3):  # interleave
            ours += _median(lambda: encode(m.tokenizer, m.text_encoder, PROMPT), args.repeats)
            theirs += _median(lambda: pipe.encode_prompt(PROMPT, "cpu", 1, False), args.repeats)
        print(f"encode ratio   {ours / theirs:.3f}  (ours {ours / 3 * 1e3:.2f} ms, "
              f"diffusers {theirs / 3 * 1e3:.2f} ms)")
        parse = _median(lambda: [parse_prompt_attention(t) for _, t in schedule(LONG, 30)],
                        args.repeats)
        print(f"parse time     {parse * 1e3:.2f} ms ({len(schedule(LONG, 30))} texts)")
        path = _lora(model_dir, Path(tmp))
        lora_set = lora_set_for(m)
        start = time.perf_counter()
        lora_set.apply([LoraSpec(path, 1.0)])
        print(f"lora load      {time.perf_counter() - start:.3f} s")
        weights = iter([0.5, -0.5] * args.repeats)
        reweight = _median(lambda: lora_set.apply([LoraSpec(path, next(weights))]), args.repeats)
        print(f"lora reweight  {reweight:.4f} s")


if __name__ == "__main__":
    main()
