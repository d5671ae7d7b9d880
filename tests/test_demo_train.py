"""The demo model's training script: the latent normalisation fold, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sdstudio.core.model_settings import recommended_guidance
from sdstudio.demo import train

TINY = dict(vae_channels=(8, 16, 16, 16), vae_layers=1, n_images=48, vae_images=16, vae_steps=3,
            vae_batch=4, vae_crop=64, unet_steps=3, unet_batch=4, unet_channels=(16, 32, 32),
            text_width=32, workers=1, log_every=1, ckpt_every=2, captions_per_image=2)


def test_fold_latent_norm_normalises_latents_and_keeps_decoding() -> None:
    torch.manual_seed(0)
    cfg = train.TrainConfig(out=Path("unused"), work=Path("unused"), vae_channels=(8, 16, 16, 16),
                            vae_layers=1)
    vae = train.make_vae(cfg).eval()
    x = torch.rand(6, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        post = vae.encode(x).latent_dist
        before, std_before = post.mean, post.std
        decoded = vae.decode(before).sample
        mean, std = before.mean(dim=(0, 2, 3)), before.std(dim=(0, 2, 3))
        train.fold_latent_norm(vae, mean, std)
        post = vae.encode(x).latent_dist
        after = post.mean
        torch.testing.assert_close(after, (before - mean.view(1, 4, 1, 1)) / std.view(1, 4, 1, 1),
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(post.std, std_before / std.view(1, 4, 1, 1), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after.std(dim=(0, 2, 3)), torch.ones(4), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(vae.decode(after).sample, decoded, rtol=1e-4, atol=1e-4)


def test_lr_factor_warms_up_then_decays_to_a_tenth() -> None:
    assert train.lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert train.lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert train.lr_factor(100, 100, 10) == pytest.approx(0.1)
    values = [train.lr_factor(s, 100, 10) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)


@pytest.mark.timeout(300)
def test_tiny_training_run_exports_a_model_that_generates_and_resumes(tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    out, work = tmp_path / "model", tmp_path / "work"
    cfg = train.TrainConfig(out=out, work=work, device="cpu", threads=1, **TINY)
    train.run(cfg)
    pipe = StableDiffusionPipeline.from_pretrained(str(out))
    image = pipe("a red circle on a blue background", num_inference_steps=2, height=64, width=64,
                 output_type="pil").images[0]
    assert image.size == (64, 64)
    assert pipe.vae.config.scaling_factor == 1.0
    record = json.loads((out / "training_config.json").read_text())
    assert record["unet_steps_done"] == 3 and len(record["latent_std"]) == 4
    assert recommended_guidance(out) == cfg.guidance

    # resume: the same work folder with more steps continues from step 3, not from scratch
    train.run(train.TrainConfig(out=out, work=work, device="cpu", **{**TINY, "unet_steps": 5}), ("unet",))
    assert train.load_ckpt(work / "unet.pt")["step"] == 5
    lines = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines if ln["stage"] == "unet" and "step" in ln][-2:] == [4, 5]
