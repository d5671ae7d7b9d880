"""Evaluate the demo model: held-out prompts, fixed seeds, the programmatic analyser.

    python benchmarks/eval_demo_model.py [--model resources/models/demo] [--n 60] [--grid grid.png]

Prompts are drawn (seeded) from the generator's scenes in the plain wording of
`dataset.canonical_caption`; half of them use colour x shape pairs never seen in training
(`dataset.HELD_OUT`). Each image is generated with our own pipeline (`sdstudio.core`), Euler a by default,
128x128, and analysed: colour, shape, position, size, background of the largest object. Also:
two-object prompts (both colours found, relation right), VAE PSNR on held-out images, seconds
per image at 20 steps.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sdstudio.demo import dataset
from sdstudio.demo.analyse import Analysis, analyse

TARGETS = {"colour": 0.90, "shape": 0.85, "position": 0.85, "background": 0.90}


@dataclass(frozen=True)
class Case:
    prompt: str
    scene: dataset.Scene
    seed: int
    held_out: bool


def single_cases(n: int, seed: int = 2024) -> list[Case]:
    rng = random.Random(seed)
    held = sorted(dataset.HELD_OUT)
    cases = []
    for i in range(n):
        unseen = i % 2 == 0
        while True:
            scene = dataset.random_scene(rng, two_objects=False, allow_held_out=True)
            obj = scene.objects[0]
            if unseen:
                colour, shape = held[(i // 2) % len(held)]
                obj = dataset.Obj(colour, shape, obj.size, obj.position)
                scene = dataset.Scene(scene.background, (obj,))
            if ((obj.colour, obj.shape) in dataset.HELD_OUT) == unseen and not (
                    scene.background == "navy" and obj.colour == "blue"):
                break
        cases.append(Case(dataset.canonical_caption(scene), scene, 1000 + i, unseen))
    return cases


def pair_cases(n: int, seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        scene = dataset.random_scene(rng, two_objects=True)
        a, b = scene.objects
        bg = dataset.BACKGROUND_WORDS[scene.background][0]
        out.append(Case(f"a {a.colour} {a.shape} {scene.relation} a {b.colour} {b.shape} "
                        f"on a {bg} background", scene, 5000 + i, False))
    return out


# ---------------------------------------------------------------- generation
class Generator:
    """Our pipeline on the model folder, the chosen sampler, 128x128."""

    def __init__(self, model: Path, steps: int, guidance: float, sampler: str,
                 device: str = "cpu") -> None:
        from sdstudio.core.models import load_model
        from sdstudio.core.pipeline import StableDiffusion

        self.pipe = StableDiffusion(load_model(str(model), device=device))
        self.model, self.steps, self.guidance, self.sampler = str(model), steps, guidance, sampler
        self.device = device

    def __call__(self, prompt: str, seed: int) -> Image.Image:
        from sdstudio.core.request import GenerationRequest

        req = GenerationRequest(prompt=prompt, seed=seed, steps=self.steps, guidance=self.guidance,
                                scheduler=self.sampler, width=128, height=128, model=self.model,
                                device=self.device)
        return self.pipe.generate(req).images[0].image


# ---------------------------------------------------------------- scoring
def score_single(case: Case, a: Analysis) -> dict[str, bool]:
    obj, found = case.scene.objects[0], a.main
    res = {"found": found is not None, "background": a.background == case.scene.background}
    for key in ("colour", "shape", "position", "size"):
        res[key] = found is not None and getattr(found, key) == getattr(obj, key)
    return res


def score_pair(case: Case, a: Analysis) -> dict[str, bool]:
    want_a, want_b = case.scene.objects
    objs = list(a.objects[:3])
    fa = next((o for o in objs if o.colour == want_a.colour), None)
    fb = next((o for o in objs if o.colour == want_b.colour and o is not fa), None)
    both = fa is not None and fb is not None
    rel = False
    if both:
        dx, dy = fb.centroid[0] - fa.centroid[0], fb.centroid[1] - fa.centroid[1]
        rel = dx > 10 if case.scene.relation == "left of" else dy > 10
    shapes = both and fa.shape == want_a.shape and fb.shape == want_b.shape
    return {"both colours": both, "relation": rel, "both shapes": bool(shapes),
            "background": a.background == case.scene.background}


def rates(rows: list[dict[str, bool]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


# ---------------------------------------------------------------- VAE
def _reconstruct(vae, img: Image.Image) -> np.ndarray:
    x = torch.from_numpy(dataset.to_tensor_array(img))[None]
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample[0]
    return ((rec.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()


def vae_check(model: Path, n: int = 48, n_shapes: int = 80) -> tuple[float, dict[str, float]]:
    """PSNR on held-out images, and how often the analyser still reads the right shape in the
    VAE's reconstruction of a one-object scene, by size: a ceiling on the UNet's shape score."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(model / "vae").eval()
    errs, shape_ok = [], {"small": [], "large": []}
    with torch.no_grad():
        for i in range(n):
            img = dataset.make_sample(777_777, i).image
            errs.append(float(np.mean((_reconstruct(vae, img) - np.asarray(img, np.float32)) ** 2)))
        for i in range(n_shapes):
            rng = random.Random(888_888 + i)
            sample = dataset.draw_scene(dataset.random_scene(rng, False, allow_held_out=True), rng)
            obj = sample.scene.objects[0]
            found = analyse(Image.fromarray(_reconstruct(vae, sample.image).astype(np.uint8))).main
            shape_ok[obj.size].append(found is not None and found.shape == obj.shape)
    psnr = 10 * math.log10(255.0**2 / max(float(np.mean(errs)), 1e-10))
    return psnr, {size: float(np.mean(v)) for size, v in shape_ok.items() if v}


# ---------------------------------------------------------------- report
def table(single: dict[str, float], unseen: dict[str, float], pair: dict[str, float],
          psnr: float, shapes: dict[str, tuple[float, float]], s_per_image: float,
          args: argparse.Namespace) -> str:
    lines = [f"Demo model evaluation: {args.n} single-object prompts (half with unseen colour x shape "
             f"pairs), {args.pairs} two-object prompts; {args.steps} steps {args.sampler}, CFG "
             f"{args.guidance}, 128x128, fixed seeds.", "",
             "| metric | all | unseen pairs | target | met |", "|---|---|---|---|---|"]
    for key in ("colour", "shape", "position", "background", "size", "found"):
        target = TARGETS.get(key)
        met = "" if target is None else ("yes" if single[key] >= target else "NO")
        lines.append(f"| {key} | {single[key]:.0%} | {unseen[key]:.0%} | "
                     f"{'' if target is None else f'>= {target:.0%}'} | {met} |")
    for key, v in pair.items():
        lines.append(f"| two objects: {key} | {v:.0%} | | | |")
    lines.append(f"| VAE PSNR (held-out 128x128) | {psnr:.1f} dB | | >= 30 dB | "
                 f"{'yes' if psnr >= 30 else 'NO'} |")
    for size, (generated, vae) in shapes.items():
        lines.append(f"| shape, {size} objects: generated / VAE reconstruction of a drawn one | "
                     f"{generated:.0%} / {vae:.0%} | | | |")
    lines.append(f"| seconds per image ({args.steps} steps, CFG, 128x128, our pipeline) | "
                 f"{s_per_image:.2f} s | | <= 1 s | {'yes' if s_per_image <= 1 else 'NO'} |")
    return "\n".join(lines)


def save_grid(images: list[Image.Image], path: Path, cols: int = 10) -> None:
    rows = math.ceil(len(images) / cols)
    grid = Image.new("RGB", (cols * 128, rows * 128), "white")
    for i, im in enumerate(images):
        grid.paste(im.resize((128, 128)), ((i % cols) * 128, (i // cols) * 128))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def main(argv: list[str] | None = None) -> int:
    from sdstudio.core.paths import demo_model_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=demo_model_dir())
    p.add_argument("--n", type=int, default=60, help="single-object prompts")
    p.add_argument("--pairs", type=int, default=20, help="two-object prompts")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=None,
                   help="CFG scale (default: the model's recommended one, sdstudio.json)")
    p.add_argument("--sampler", default="Euler a")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu (the figure the target is for) or cuda")
    p.add_argument("--grid", type=Path, default=None, help="save the generated images as a grid")
    p.add_argument("--verbose", action="store_true", help="print every prompt and what was found")
    args = p.parse_args(argv)
    if args.guidance is None:
        from sdstudio.core.model_settings import recommended_guidance

        args.guidance = recommended_guidance(args.model)
    torch.set_num_threads(args.threads)
    gen = Generator(args.model, args.steps, args.guidance, args.sampler, args.device)
    gen("warm up", 0)
    images, singles, unseen, pairs, seconds = [], [], [], [], []
    shape_by_size: dict[str, list[bool]] = {"small": [], "large": []}
    for case in single_cases(args.n) + pair_cases(args.pairs):
        t = time.perf_counter()
        img = gen(case.prompt, case.seed)
        seconds.append(time.perf_counter() - t)
        images.append(img)
        a = analyse(img)
        if len(case.scene.objects) == 1:
            res = score_single(case, a)
            singles.append(res)
            shape_by_size[case.scene.objects[0].size].append(res["shape"])
            if case.held_out:
                unseen.append(res)
        else:
            res = score_pair(case, a)
            pairs.append(res)
        if args.verbose:
            print(case.prompt, "->", a.background, [(o.colour, o.shape, o.position, o.size)
                                                    for o in a.objects[:2]], res, flush=True)
    if args.grid:
        save_grid(images, args.grid)
    psnr, vae_shapes = vae_check(args.model)
    shapes = {size: (float(np.mean(v)), vae_shapes.get(size, float("nan")))
              for size, v in shape_by_size.items() if v}
    print(table(rates(singles), rates(unseen), rates(pairs), psnr, shapes,
                float(np.median(seconds)), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
