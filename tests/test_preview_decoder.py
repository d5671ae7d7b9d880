"""The tiny learned x0 preview decoder (TAESD / AutoencoderTiny): loading, lookup, the worker's choice."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

from sdstudio.core.events import EngineEvent, EventKind, StepEvent
from sdstudio.core.models.discovery import tiny_decoder
from sdstudio.core.preview_decoder import (
    PreviewDecoder,
    find_tiny_decoder,
    load_tiny,
    preview_decoder_for,
)
from sdstudio.ui.worker import GenerationWorker

DEMO = Path(__file__).resolve().parents[1] / "resources" / "models" / "demo"


def _tiny(**kw) -> AutoencoderTiny:
    torch.manual_seed(0)
    small = dict(encoder_block_out_channels=(8, 8, 8, 8), num_encoder_blocks=(1, 1, 1, 1),
                 decoder_block_out_channels=(8, 8, 8, 8), num_decoder_blocks=(1, 1, 1, 1))
    return AutoencoderTiny(**(small | kw)).eval()


@pytest.fixture
def tiny_model_folder(tmp_path) -> Path:
    """A diffusers model folder with only a random tiny decoder in `vae_tiny/`."""
    folder = tmp_path / "model"
    _tiny(scaling_factor=0.5).save_pretrained(folder / "vae_tiny", safe_serialization=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return folder


def test_the_decoder_loads_and_decodes_a_latent_to_an_image_8x_its_size(tiny_model_folder):
    tiny = load_tiny(tiny_model_folder / "vae_tiny")
    z = torch.randn(2, 4, 6, 10)
    image = PreviewDecoder(tiny).decode(z)
    assert image.size == (80, 48) and image.mode == "RGB"
    with torch.no_grad():  # the UNet's latents are divided by the decoder's scaling factor
        want = tiny.decode(z[:1] / 0.5).sample[0].clamp(-1, 1)
    want = ((want + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert (np.asarray(image) == want).all()


def test_an_original_taesd_decoder_file_loads_with_its_sequential_keys(tmp_path):
    ref = AutoencoderTiny().eval()  # the TAESD release's architecture
    # TAESD's nn.Sequential starts with its Clamp (no weights): every index is one higher.
    state = {f"{int(k.split('.')[1]) + 1}.{k.split('.', 2)[2]}": v.contiguous()
             for k, v in ref.decoder.state_dict().items()}
    save_file(state, tmp_path / "taesd_decoder.safetensors")
    tiny = load_tiny(tmp_path / "taesd_decoder.safetensors")
    z = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        assert torch.equal(tiny.decode(z).sample, ref.decode(z).sample)


def test_taesd_files_and_folders_are_found_in_the_vae_folders_per_family(tmp_path):
    a1111 = tmp_path / "a1111"
    (a1111 / "models" / "Stable-diffusion").mkdir(parents=True)
    (a1111 / "models" / "VAE").mkdir()
    (a1111 / "models" / "VAE" / "taesd_decoder.pth").write_bytes(b"")
    comfy = tmp_path / "comfy"
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    _tiny().save_pretrained(comfy / "models" / "vae" / "taesdxl")
    assert tiny_decoder(a1111, "sd1") == a1111 / "models" / "VAE" / "taesd_decoder.pth"
    assert tiny_decoder(a1111, "sd2") == a1111 / "models" / "VAE" / "taesd_decoder.pth"
    assert tiny_decoder(a1111, "sdxl") is None
    assert tiny_decoder(comfy, "sdxl") == comfy / "models" / "vae" / "taesdxl"
    assert tiny_decoder(tmp_path / "missing", "sd1") is None
    # a checkpoint inside the tree finds the tree's decoder; elsewhere none
    ckpt = a1111 / "models" / "Stable-diffusion" / "sub" / "model.safetensors"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    assert find_tiny_decoder(ckpt, "sd1") == a1111 / "models" / "VAE" / "taesd_decoder.pth"
    assert find_tiny_decoder(ckpt, "sdxl", models_root=comfy) == comfy / "models" / "vae" / "taesdxl"
    assert find_tiny_decoder(tmp_path / "elsewhere.safetensors", "sd1") is None


def test_decodes_stay_within_the_time_budget_and_the_last_step_always_decodes(tiny_model_folder):
    decoder = PreviewDecoder(load_tiny(tiny_model_folder / "vae_tiny"), budget=0.0)
    z = torch.randn(1, 4, 4, 4)
    first = decoder.preview(z)
    assert first is not None
    # over budget: None, so the worker shows the cheap projection and the preview keeps moving
    assert decoder.preview(z) is None and decoder.decodes == 1
    assert decoder.preview(z, last=True) is not None and decoder.decodes == 2
    decoder.reset()
    assert decoder.preview(z) is not None and decoder.decodes == 3


def _fake_loaded(source: Path) -> SimpleNamespace:
    return SimpleNamespace(source=str(source), family=None, device=torch.device("cpu"),
                           dtype=torch.float32, latent_rgb=None)


@pytest.mark.parametrize("has_decoder", [True, False])
def test_the_worker_previews_x0_with_the_tiny_decoder_when_present(
        qtbot, tiny_model_folder, tmp_path, has_decoder):
    source = tiny_model_folder if has_decoder else tmp_path / "plain"
    worker = GenerationWorker(preview_interval=0.0)
    worker.engine._loaded = _fake_loaded(source)
    sent: list[EngineEvent] = []
    worker.engineEvent.connect(sent.append)
    forward = worker._forward(job_id=1)
    lat = torch.randn(1, 4, 8, 8)
    for i in (1, 2):
        forward(EngineEvent(EventKind.PROGRESS, 1, StepEvent(i, 2, 1.0, lat, 0.1, denoised=lat)))
    side = 64 if has_decoder else 8  # decoded 8x, or the latent-sized projection
    for ev in sent:
        assert (ev.payload.denoised.width(), ev.payload.denoised.height()) == (side, side)
        assert (ev.payload.preview.width(), ev.payload.preview.height()) == (8, 8)
    assert (preview_decoder_for(worker.engine._loaded) is not None) == has_decoder


def test_the_demo_model_ships_a_small_tiny_decoder():
    folder = DEMO / "vae_tiny"
    assert (folder / "diffusion_pytorch_model.safetensors").stat().st_size <= 2 * 1024 * 1024
    assert find_tiny_decoder(DEMO, "sd1") == folder
    tiny = AutoencoderTiny.from_pretrained(folder)
    image = PreviewDecoder(tiny).decode(torch.zeros(1, 4, 16, 16))
    assert image.size == (128, 128)


@pytest.mark.timeout(300)
def test_the_preview_stage_trains_and_writes_a_loadable_vae_tiny(tmp_path):
    from diffusers import AutoencoderKL

    from sdstudio.demo import train

    out = tmp_path / "model"
    AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=8, latent_channels=4,
                  down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4).save_pretrained(out / "vae")
    cfg = train.TrainConfig(out=out, work=tmp_path / "work", device="cpu", workers=1,
                            preview_images=8, preview_steps=3, preview_batch=2,
                            preview_channels=(8, 8, 8, 8), preview_blocks=(1, 1, 1, 1))
    train.run(cfg, ("preview",))
    assert train.load_ckpt(tmp_path / "work" / "preview.pt")["step"] == 3
    tiny = AutoencoderTiny.from_pretrained(out / "vae_tiny")
    assert tiny.config.decoder_block_out_channels == [8, 8, 8, 8]
    assert PreviewDecoder(tiny).decode(torch.zeros(1, 4, 16, 16)).size == (128, 128)
