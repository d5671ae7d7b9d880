"""The models folder: sdstudio's own layout, an A1111 root and a ComfyUI root."""

from __future__ import annotations

import json

import pytest

from sdstudio.core.models.discovery import checkpoint_info, layout_of, scan, scan_models


def _touch(root, *paths):
    for p in paths:
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")


def _diffusers_folder(path, vae_only=False):
    path.mkdir(parents=True)
    if vae_only:
        (path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    else:
        (path / "model_index.json").write_text("{}")


def test_a1111_root(tmp_path):
    _touch(tmp_path, "models/Stable-diffusion/v1-5.safetensors",
           "models/Stable-diffusion/XL/juggernaut.safetensors", "models/Stable-diffusion/old.ckpt",
           "models/Stable-diffusion/notes.txt", "models/Lora/detail.safetensors",
           "models/LyCORIS/loha.safetensors", "models/VAE/vae-ft-mse.safetensors",
           "embeddings/bad-hands.pt", "models/ESRGAN/4x-UltraSharp.pth")
    found = scan(tmp_path)
    assert found.layout == "a1111"
    names = lambda ps: [p.name for p in ps]  # noqa: E731
    assert names(found.checkpoints) == ["old.ckpt", "v1-5.safetensors", "juggernaut.safetensors"]
    assert names(found.loras) == ["detail.safetensors", "loha.safetensors"]
    assert names(found.vaes) == ["vae-ft-mse.safetensors"]
    assert names(found.embeddings) == ["bad-hands.pt"]
    assert names(found.upscalers) == ["4x-UltraSharp.pth"]
    assert scan(tmp_path / "models").layout == "a1111"  # pointed at models/ itself


def test_comfyui_root(tmp_path):
    _touch(tmp_path, "models/checkpoints/sdxl.safetensors", "models/loras/style.safetensors",
           "models/vae/sdxl_vae.safetensors", "models/embeddings/easyneg.safetensors",
           "models/upscale_models/RealESRGAN_x4.pth")
    _diffusers_folder(tmp_path / "models/vae/sdxl-vae-fp16-fix", vae_only=True)
    _diffusers_folder(tmp_path / "models/checkpoints/my-diffusers-model")
    found = scan(tmp_path)
    assert found.layout == "comfyui"
    assert [p.name for p in found.checkpoints] == ["my-diffusers-model", "sdxl.safetensors"]
    assert [p.name for p in found.vaes] == ["sdxl-vae-fp16-fix", "sdxl_vae.safetensors"]
    assert [p.name for p in found.loras] == ["style.safetensors"]
    assert [p.name for p in found.embeddings] == ["easyneg.safetensors"]
    assert [p.name for p in found.upscalers] == ["RealESRGAN_x4.pth"]


def test_own_layout_keeps_the_flat_folder(tmp_path):
    _touch(tmp_path, "flat.safetensors", "checkpoints/a.safetensors", "loras/l.safetensors")
    _diffusers_folder(tmp_path / "diffusers-model")
    assert layout_of(tmp_path)[0] == "sdstudio"
    assert [p.split("/")[-1] for p in scan_models(tmp_path)] == [
        "a.safetensors", "diffusers-model", "flat.safetensors"]
    assert [p.name for p in scan(tmp_path).loras] == ["l.safetensors"]
    assert scan(tmp_path / "missing").checkpoints == []


def test_checkpoint_info(tiny_model_dir, tiny_inpaint_model_dir, tmp_path):
    assert checkpoint_info(tiny_model_dir) == (info := checkpoint_info(str(tiny_model_dir)))
    assert (info.family, info.native_size, info.error) == ("SD 1.x", 32, None)
    assert checkpoint_info(tiny_inpaint_model_dir).family == "SD 1.x inpainting"
    from sdstudio.testing.single_files import write_single_file

    f = write_single_file(tiny_model_dir, tmp_path / "t.safetensors")
    # a single file: its family's shipped config gives the native size
    assert (checkpoint_info(f).family, checkpoint_info(f).native_size) == ("SD 1.x", 512)
    bad = tmp_path / "lora.safetensors"
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(bad))
    assert "is a LoRA" in checkpoint_info(bad).error


@pytest.mark.parametrize("broken", ["no-index", "bad-json"])
def test_checkpoint_info_of_a_broken_folder(tmp_path, broken):
    f = tmp_path / "m"
    f.mkdir()
    if broken == "bad-json":
        (f / "model_index.json").write_text("{")
    assert checkpoint_info(f).error
